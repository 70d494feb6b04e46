"""The nbflow validate action's work, runnable on its own as a GitHub runner would run it.

- `nbflow validate --format github PATHS` prints the annotations (`::error file=,line=,col=::`)
  on stdout, where the runner turns them into notes on the pull request's lines;
- the job summary (`$GITHUB_STEP_SUMMARY`, Markdown) gets, per manifest: the result and its
  diagnostics, the DAG (`nbflow graph --format mermaid`) and what would change on the cluster
  (`nbflow diff --format markdown`) when a kubeconfig is at hand; pull requests have none.

Environment: GITHUB_WORKSPACE (the checkout; the working directory), NBFLOW_PATHS (files or
folders, separated by whitespace; default "."), NBFLOW_STRICT ("true" fails on warnings),
NBFLOW_KUBECONFIG (a kubeconfig path, optional), KUBECONFIG, GITHUB_STEP_SUMMARY,
GITHUB_EVENT_NAME. Standard library and nbflow only; nbflow runs as `python -m nbflow` with this
Python, paths always after `--` (a folder may be called `-weird`).

Everything a user wrote (paths, names, messages quoting keys) reaches the summary through
`nbflow.escape`: as literal Markdown text or as a code span, never as a link, image or HTML.

Exit status: that of `nbflow validate` (0 ok, 1 errors, 2 usage); 0 when no nbflow.yaml is
found under the paths (a pull request may touch notebooks that no pipeline uses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nbflow.escape import markdown, markdown_code

NO_CREDENTIALS = "cluster diff skipped: no credentials on pull requests"
NO_KUBECONFIG = "cluster diff skipped: no kubeconfig given"
MAX_DIAGNOSTICS = 20  # per manifest in the summary; the annotations carry them all


def nbflow(*args: str, stdout_to_log: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the nbflow CLI with this Python; capture its output (or pass stdout to the log)."""
    return subprocess.run(
        [sys.executable, "-m", "nbflow", *args],
        stdout=None if stdout_to_log else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


def kubeconfig() -> str | None:
    explicit = os.environ.get("NBFLOW_KUBECONFIG", "").strip()
    if explicit:
        return explicit if Path(explicit).is_file() else None
    env = os.environ.get("KUBECONFIG", "").strip()
    return env or None


def first_line(text: str) -> str:
    """The message of nbflow's error output (`nbflow: ...`), else its last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("nbflow:")]
    return said[0] if said else lines[-1] if lines else "(no message)"


def manifest_section(manifest: str, cluster: str | None, event: str) -> tuple[str, list[str]]:
    """(result word, Markdown lines) for one manifest."""
    checked = nbflow("validate", "--format", "json", "--", manifest)
    try:
        doc = json.loads(checked.stdout)
    except ValueError:
        return "failed", [f"nbflow validate failed: {markdown(first_line(checked.stderr))}", ""]
    errors, warnings = int(doc.get("errors", 0)), int(doc.get("warnings", 0))
    result = "ok" if doc.get("ok") else "failed"
    lines = [
        f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}",
        "",
    ]
    diagnostics = doc.get("diagnostics", [])
    for d in diagnostics[:MAX_DIAGNOSTICS]:
        loc = d.get("location", {})
        where = ":".join(str(loc[k]) for k in ("file", "line", "column") if k in loc)
        lines.append(
            f"- **{markdown(str(d.get('severity')))}** {markdown_code(where)} "
            f"{markdown(str(d.get('code')))}: {markdown(str(d.get('message', '')))}"
        )
    if len(diagnostics) > MAX_DIAGNOSTICS:
        lines.append(f"- ... and {len(diagnostics) - MAX_DIAGNOSTICS} more (see the annotations)")
    if diagnostics:
        lines.append("")
    if not doc.get("ok"):
        return result, lines
    graph = nbflow("graph", "--format", "mermaid", "--", manifest)
    if graph.returncode == 0 and graph.stdout.strip():
        lines += ["```mermaid", graph.stdout.strip().replace("```", "'''"), "```", ""]
    else:
        lines += [f"graph unavailable: {markdown(first_line(graph.stderr))}", ""]
    if cluster is None:
        lines += [NO_CREDENTIALS if event.startswith("pull_request") else NO_KUBECONFIG, ""]
    else:
        changes = nbflow("diff", "--format", "markdown", f"--kubeconfig={cluster}", "--", manifest)
        if changes.stdout.strip():
            lines += ["**On the cluster:**", "", changes.stdout.strip(), ""]
        if changes.returncode != 0:
            lines += [f"cluster diff failed: {markdown(first_line(changes.stderr))}", ""]
    return result, lines


def main() -> int:
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace:
        os.chdir(workspace)
    paths = os.environ.get("NBFLOW_PATHS", "").split() or ["."]
    strict = os.environ.get("NBFLOW_STRICT", "").strip().lower() == "true"
    event = os.environ.get("GITHUB_EVENT_NAME", "")

    sys.stdout.flush()
    annotated = nbflow(
        "validate",
        "--format",
        "github",
        *(["--strict"] if strict else []),
        "--",
        *paths,
        stdout_to_log=True,
    )
    out: list[str] = ["## nbflow validate", ""]
    code = annotated.returncode
    if code == 2:
        message = first_line(annotated.stderr)
        if "no nbflow.yaml found" in message:
            out += [
                f"No nbflow.yaml under {markdown_code(' '.join(paths))}: nothing to validate.",
                "",
            ]
            code = 0
        else:
            sys.stderr.write(annotated.stderr)
            out += [f"nbflow could not validate: {markdown(message)}", ""]
        return write_summary(out, code)

    from nbflow.check.validate import find_manifests

    manifests = [os.path.relpath(m) for m in find_manifests(paths)]
    cluster = kubeconfig()
    table = ["| manifest | result |", "|---|---|"]
    sections: list[str] = []
    for manifest in manifests:
        result, lines = manifest_section(manifest, cluster, event)
        mark = "✅" if result == "ok" else "❌"
        table.append(f"| {markdown_code(manifest, table=True)} | {mark} {result} |")
        sections += [f"### {markdown_code(manifest)}: {result}", "", *lines]
    out += [*table, "", *sections]
    return write_summary(out, code)


def write_summary(lines: list[str], code: int) -> int:
    text = "\n".join(lines).rstrip() + "\n"
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stderr.write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
