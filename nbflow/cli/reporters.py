"""Render a Report as text (with a code frame), json, GitHub annotations or SARIF.

Messages, hints, paths and source lines hold what the user wrote (keys, names, file names):
each reporter escapes them for its medium with `nbflow.escape` (JSON needs nothing more)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbflow import __version__
from nbflow.codes import REGISTRY, REPOSITORY_URL
from nbflow.diagnostics import Diagnostic, Location, Report, Severity
from nbflow.escape import terminal, uri, workflow_data, workflow_property


def _where(loc: Location) -> str:
    out = terminal(loc.file)
    if loc.line is not None:
        out += f":{loc.line}"
        if loc.column is not None:
            out += f":{loc.column}"
    if loc.cell is not None:
        out += f" (cell {loc.cell}" + (f", line {loc.cell_line}" if loc.cell_line else "") + ")"
    return out


def _frame(source: str | None, loc: Location) -> list[str]:
    if source is None or loc.line is None:
        return []
    lines = source.splitlines()
    if not 0 < loc.line <= len(lines):
        return []
    raw = lines[loc.line - 1].rstrip()
    gutter = " " * len(str(loc.line))
    col = min(loc.column or 1, len(raw) + 1)
    end = min(loc.end_column, len(raw) + 1) if loc.end_column else len(raw) + 1
    # the line as the terminal shows it: the caret moves by the width of the escapes before it
    text = terminal(raw)
    start = len(terminal(raw[: col - 1]))
    width = (
        max(1, len(terminal(raw[col - 1 : end - 1])))
        if loc.end_column
        else max(1, len(text) - start)
    )
    return [
        f" {gutter} |",
        f" {loc.line} | {text}",
        f" {gutter} | {' ' * start}{'^' * width}",
    ]


def render_text(report: Report, *, color: bool = False) -> str:
    def paint(s: str, code: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if color else s

    out: list[str] = []
    for d in report.sorted():
        sev = paint(d.severity.value, "1;31" if d.severity is Severity.ERROR else "1;33")
        out.append(f"{sev}[{d.code}]: {terminal(d.message)}")
        out.append(f"  --> {_where(d.location)}")
        out.extend(_frame(report.sources.get(d.location.file), d.location))
        for rel in d.related:
            out.append(f"   = see {_where(rel)}")
        if d.hint:
            out.append(f"   = hint: {terminal(d.hint)}")
        out.append("")
    if report.diagnostics:
        out.append(f"more on a code: `nbflow explain {report.sorted()[0].code}`")
    out.append(summary(report))
    return "\n".join(out) + "\n"


def summary(report: Report) -> str:
    n_err, n_warn = len(report.errors), len(report.warnings)
    files = len(report.manifests)
    bad = len({d.location.file for d in report.errors})
    noun = "manifest" if files == 1 else "manifests"
    parts = [
        f"{n_err} error{'s' if n_err != 1 else ''}",
        f"{n_warn} warning{'s' if n_warn != 1 else ''}",
    ]
    state = "ok" if report.ok else "failed"
    return f"{state}: checked {files} {noun}, {', '.join(parts)}" + (
        f" (in {bad} file{'s' if bad != 1 else ''})" if bad else ""
    )


def _as_dict(d: Diagnostic) -> dict[str, Any]:
    def loc(lo: Location) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("file", lo.file),
                ("line", lo.line),
                ("column", lo.column),
                ("endLine", lo.end_line),
                ("endColumn", lo.end_column),
                ("cell", lo.cell),
                ("cellLine", lo.cell_line),
            )
            if v is not None
        }

    out: dict[str, Any] = {
        "code": d.code,
        "title": d.title,
        "severity": d.severity.value,
        "message": d.message,
        "location": loc(d.location),
    }
    if d.hint:
        out["hint"] = d.hint
    if d.related:
        out["related"] = [loc(r) for r in d.related]
    return out


def render_json(report: Report) -> str:
    doc = {
        "ok": report.ok,
        "manifests": report.manifests,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "diagnostics": [_as_dict(d) for d in report.sorted()],
    }
    return json.dumps(doc, indent=2) + "\n"


def _repository_root(start: str) -> Path | None:
    """The checkout holding `start`: $GITHUB_WORKSPACE when it does, else the nearest folder
    above with a `.git` (a folder, or a file in a worktree or submodule)."""
    here = Path(start)
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and here.is_relative_to(Path(workspace).resolve()):
        return Path(workspace).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def repository_path(file: str) -> str:
    """A diagnostic's file relative to the repository root, as GitHub and code scanning resolve
    it (whatever folder nbflow ran in); unchanged outside a repository."""
    if not file:
        return file
    path = Path(file).resolve()
    root = _repository_root(str(path.parent))
    if root is None or not path.is_relative_to(root):
        return file
    return path.relative_to(root).as_posix()


def render_github(report: Report) -> str:
    """GitHub workflow commands: one annotation per diagnostic, on the exact line."""
    out = []
    for d in report.sorted():
        level = "error" if d.severity is Severity.ERROR else "warning"
        props = [f"file={workflow_property(terminal(repository_path(d.location.file)))}"]
        if d.location.line is not None:
            props.append(f"line={d.location.line}")
        if d.location.column is not None:
            props.append(f"col={d.location.column}")
        if d.location.end_column is not None and d.location.line is not None:
            props.append(f"endColumn={d.location.end_column}")
        props.append(f"title={workflow_property(f'{d.code} {d.title}')}")
        # line breaks travel as `%0A` (the annotation shows them); other control characters,
        # ESC and CR among them, as visible escapes
        text = d.message + (f"\n{d.hint}" if d.hint else "")
        message = "\n".join(terminal(line) for line in text.split("\n"))
        out.append(f"::{level} {','.join(props)}::{workflow_data(message)}")
    out.append(summary(report))
    return "\n".join(out) + "\n"


def _sarif_rule(code: str) -> dict[str, Any]:
    """A SARIF reportingDescriptor from the registry: what code scanning shows beside a result."""
    known = REGISTRY.get(code)
    if known is None:  # not registered: still a valid rule, only without descriptions
        return {"id": code, "name": code, "shortDescription": {"text": code}}
    wrong, right = known.wrong, known.right
    markdown = (
        f"{known.explanation}\n\nWrong:\n\n```{wrong.lang}\n{wrong.text}\n```\n\n"
        f"Right:\n\n```{right.lang}\n{right.text}\n```\n"
    )
    return {
        "id": known.id,
        "name": known.name,
        "shortDescription": {"text": known.summary},
        "fullDescription": {"text": known.explanation},
        "help": {"text": f"{known.explanation} See {known.help_uri}", "markdown": markdown},
        "helpUri": known.help_uri,
        "defaultConfiguration": {"level": known.severities[0].value},
    }


def render_sarif(report: Report) -> str:
    used = sorted({d.code for d in report.diagnostics})
    rules = [_sarif_rule(code) for code in used]
    results = []
    for d in report.sorted():
        region: dict[str, Any] = {}
        if d.location.line is not None:
            region["startLine"] = d.location.line
        if d.location.column is not None:
            region["startColumn"] = d.location.column
        if d.location.end_column is not None:
            region["endColumn"] = d.location.end_column
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": uri(repository_path(d.location.file))}
        }
        if region:
            physical["region"] = region
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": used.index(d.code),
                "level": "error" if d.severity is Severity.ERROR else "warning",
                "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
                "locations": [{"physicalLocation": physical}],
            }
        )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nbflow",
                        "version": __version__,
                        "informationUri": REPOSITORY_URL,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


REPORTER_BY_NAME: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
    "sarif": render_sarif,
}
