"""The Markdown of `nbflow ci validate`'s job summary ($GITHUB_STEP_SUMMARY): a table of the
manifests with their result, then per manifest its diagnostics, what changes against the base
revision's build, its DAG and what would change on the cluster.

Everything a user wrote (paths, names, messages quoting keys) goes through `nbflow.escape`: as
literal Markdown text or as a code span, never as a link, image or HTML. The command
(nbflow/cli/commands/ci.py) gathers the parts; this module only writes them down.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nbflow.deploy.build_diff import BuildChange, ProjectChanges
from nbflow.diagnostics import Report
from nbflow.escape import markdown, markdown_code

__all__ = [
    "MAX_DIAGNOSTICS",
    "NO_CREDENTIALS",
    "NO_KUBECONFIG",
    "Section",
    "base_lines",
    "changes_table",
    "cluster_lines",
    "diagnostics_lines",
    "graph_lines",
    "no_manifest",
    "not_validated",
    "summary",
]

NO_CREDENTIALS = "cluster diff skipped: no credentials on pull requests"
NO_KUBECONFIG = "cluster diff skipped: no kubeconfig given"
MAX_DIAGNOSTICS = 20  # per manifest in the summary; the annotations carry them all
TITLE = "## nbflow validate"


@dataclass(frozen=True)
class Section:
    """One manifest's part of the summary."""

    manifest: str
    ok: bool
    lines: tuple[str, ...]


def summary(sections: Sequence[Section]) -> str:
    table = ["| manifest | result |", "|---|---|"]
    body: list[str] = []
    for s in sections:
        result = "ok" if s.ok else "failed"
        mark = "✅" if s.ok else "❌"
        table.append(f"| {markdown_code(s.manifest, table=True)} | {mark} {result} |")
        body += [f"### {markdown_code(s.manifest)}: {result}", "", *s.lines]
    return _text([TITLE, "", *table, "", *body])


def no_manifest(paths: Sequence[str]) -> str:
    shown = markdown_code(" ".join(paths))
    return _text([TITLE, "", f"No nbflow.yaml under {shown}: nothing to validate."])


def not_validated(message: str) -> str:
    return _text([TITLE, "", f"nbflow could not validate: {markdown(message)}"])


def diagnostics_lines(report: Report) -> list[str]:
    """The counts, then the first MAX_DIAGNOSTICS diagnostics, one per line."""
    errors, warnings = len(report.errors), len(report.warnings)
    lines = [
        f"{errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}",
        "",
    ]
    diagnostics = report.sorted()
    for d in diagnostics[:MAX_DIAGNOSTICS]:
        loc = d.location
        where = ":".join(str(v) for v in (loc.file, loc.line, loc.column) if v is not None)
        lines.append(
            f"- **{markdown(d.severity.value)}** {markdown_code(where)} "
            f"{markdown(d.code)}: {markdown(d.message)}"
        )
    if len(diagnostics) > MAX_DIAGNOSTICS:
        lines.append(f"- ... and {len(diagnostics) - MAX_DIAGNOSTICS} more (see the annotations)")
    if diagnostics:
        lines.append("")
    return lines


def base_lines(ref: str, result: ProjectChanges | None, problem: str | None = None) -> list[str]:
    """What the pull request changes in the pipeline, against the base revision's build;
    without a `result`, why the base was skipped (`problem`)."""
    lines = [f"**Against {markdown_code(ref)}:**", ""]
    if result is None:
        return [*lines, f"base build skipped: {markdown(problem or 'no base')}", ""]
    if result.status == "untouched":
        return [*lines, "no change in this project's folder", ""]
    if result.status == "new":
        return [*lines, "a new pipeline: nothing to compare with", ""]
    if not result.ok:
        return [*lines, f"build failed: {markdown(result.error or 'errors in the manifest')}", ""]
    if not result.changes:
        return [*lines, "no change to steps, parameters, images or resources", ""]
    return [*lines, *changes_table(result.changes), ""]


def changes_table(
    changes: Iterable[BuildChange], old: str = "base", new: str = "this pull request"
) -> list[str]:
    lines = [f"| | name | what | {old} | {new} |", "|---|---|---|---|---|"]
    for c in changes:
        lines.append(
            f"| {c.kind} | {markdown_code(c.name, table=True)} | {markdown(c.what)} | "
            f"{_shown(c.old)} | {_shown(c.new)} |"
        )
    return lines


def graph_lines(mermaid: str | None, problem: str | None = None) -> list[str]:
    if mermaid is None or not mermaid.strip():
        return [f"graph unavailable: {markdown(problem or 'no graph')}", ""]
    # the diagram's labels are escaped by `nbflow graph`; a fence inside them would end it
    return ["```mermaid", mermaid.strip().replace("```", "'''"), "```", ""]


def cluster_lines(changes_markdown: str, problem: str | None = None) -> list[str]:
    lines: list[str] = []
    if changes_markdown.strip():
        lines += ["**On the cluster:**", "", changes_markdown.strip(), ""]
    if problem is not None:
        lines += [f"cluster diff failed: {markdown(problem)}", ""]
    return lines


def _shown(value: Any) -> str:
    return "–" if value is None else markdown_code(json.dumps(value, sort_keys=True), table=True)


def _text(lines: list[str]) -> str:
    return "\n".join(lines).rstrip() + "\n"
