"""The parts of `nbflow ci deploy` that touch credentials and the job summary.

- :func:`mask_commands`: the `::add-mask::` commands that hide every credential of a
  kubeconfig (from an environment secret) in the job's log, printed before anything else;
- :func:`private_kubeconfig`: the kubeconfig written to a 0600 file in a 0700 folder, removed
  on leaving whatever happens, never printed;
- :func:`log_lines` and :func:`summary`: what `nbflow apply` did, per resource for the log and
  per project as Markdown for $GITHUB_STEP_SUMMARY. Names and messages come from manifests and
  the cluster: literal text, one line, through `nbflow.escape`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbflow.escape import markdown, markdown_code, workflow_data

__all__ = ["log_lines", "mask_commands", "private_kubeconfig", "summary", "write_kubeconfig"]

JSON = dict[str, Any]


def mask_commands(kubeconfig: str) -> list[str]:
    """`::add-mask::VALUE` for every credential of the kubeconfig.

    The kubeconfig is parsed as YAML (so JSON and flow style too): tokens, client keys and
    certificates, passwords, exec plugin `env` values, auth-provider secrets; a multi-line value
    line by line (a command is one line: the rest of a multi-line value would be printed, not
    masked), each escaped as the runner unescapes a command's data."""
    from nbflow.deploy.redact import read_kubeconfig_secrets

    return [
        f"::add-mask::{workflow_data(value)}"
        for value in read_kubeconfig_secrets(kubeconfig)
        if "\n" not in value and "\r" not in value
    ]


def write_kubeconfig(data: str, temp: Path) -> Path:
    """`data` in a new 0600 file `config` of a new 0700 folder under `temp`."""
    folder = Path(tempfile.mkdtemp(prefix="nbflow-kube-", dir=temp))  # mode 0700
    path = folder / "config"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    return path


@contextmanager
def private_kubeconfig(data: str, temp: Path) -> Iterator[Path]:
    """:func:`write_kubeconfig`, and its folder removed on leaving."""
    path = write_kubeconfig(data, temp)
    try:
        yield path
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def log_lines(results: list[JSON]) -> list[str]:
    """One line per resource (to be escaped for a terminal by the caller)."""
    lines = []
    for project in results:
        for c in project.get("changes", []):
            where = f" in {c['namespace']}" if c.get("namespace") else ""
            lines.append(f"{c['action']} {c['kind']} {c['name']}{where}")
        for s in project.get("skipped", []):
            lines.append(f"skipped {s['kind']} {s['name']} ({s['reason']})")
    return lines


def summary(results: list[JSON], failed: bool, dry_run: bool) -> str:
    """The job summary of `nbflow apply --json`'s results."""
    out = ["## nbflow apply" + (" (dry run: nothing was written)" if dry_run else ""), ""]
    if not results:
        out.append(
            "Nothing was applied: see the job's log for why." if failed else "No project found."
        )
    for project in results:
        head = f"### {_code(project.get('manifest'))}"
        if project.get("version"):
            head += f": {_cell(project['version'])}"
        out += [head, ""]
        facts = [
            f"{name} {_code(project[name])}"
            for name in ("snapshot", "namespace", "mode")
            if project.get(name)
        ]
        if facts:
            out += [", ".join(facts), ""]
        rows = [
            (c["action"], c["kind"], c["name"], c.get("namespace", ""))
            for c in project.get("changes", [])
        ]
        rows += [
            ("skipped", s["kind"], s["name"], s.get("namespace", ""))
            for s in project.get("skipped", [])
        ]
        if rows:
            out += ["| change | kind | name | namespace |", "|---|---|---|---|"]
            out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
            out.append("")
        errors = [d for d in project.get("diagnostics", []) if d.get("severity") == "error"]
        if errors:
            out += [
                f"**not applied:** {len(errors)} error(s) in the manifest; run `nbflow validate`",
                "",
            ]
        if project.get("error"):
            out += [f"**error:** {_cell(project['error'])}", ""]
    return "\n".join(out).rstrip() + "\n"


def _cell(value: object) -> str:
    """Literal Markdown text on one line: no link, image, HTML or table break can form."""
    return markdown(" ".join(str(value or "").split()))


def _code(value: object) -> str:
    return markdown_code(str(value or ""))
