"""The nbflow validate action's work, runnable on its own as a GitHub runner would run it.

- `nbflow validate --format github PATHS` prints the annotations (`::error file=,line=,col=::`)
  on stdout, where the runner turns them into notes on the pull request's lines;
- the job summary (`$GITHUB_STEP_SUMMARY`, Markdown) gets, per manifest: the result and its
  diagnostics, the DAG (`nbflow graph --format mermaid`) and what would change on the cluster
  (`nbflow diff --format markdown`) when a kubeconfig is at hand; pull requests have none;
- on a pull request (or with NBFLOW_BASE_REF), what changes against the base branch's build,
  per project the pull request changed: both are built (`nbflow build`, the base in a git
  worktree of it) and their IR compared (nbflow/deploy/build_diff.py): steps, parameters and
  their defaults, images, resources, retries, caching, what each step waits for.

Environment: GITHUB_WORKSPACE (the checkout; the working directory), NBFLOW_PATHS (files or
folders, separated by whitespace; default "."), NBFLOW_STRICT ("true" fails on warnings),
NBFLOW_KUBECONFIG (a kubeconfig path, optional), KUBECONFIG, GITHUB_STEP_SUMMARY,
GITHUB_EVENT_NAME, GITHUB_BASE_REF (the pull request's base branch) or NBFLOW_BASE_REF (any git
revision to compare with; wins), NBFLOW_RUN ("true": also run each changed pipeline here and on
the base with `nbflow run` and show their metrics side by side, as CML does), RUNNER_TEMP. Standard library and nbflow only; nbflow runs as `python -m nbflow` with this
Python, paths always after `--` (a folder may be called `-weird`).

Everything a user wrote (paths, names, messages quoting keys) reaches the summary through
`nbflow.escape`: as literal Markdown text or as a code span, never as a link, image or HTML.

Exit status: that of `nbflow validate` (0 ok, 1 errors, 2 usage); 0 when no nbflow.yaml is
found under the paths (a pull request may touch notebooks that no pipeline uses).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


class Base:
    """The base revision checked out in a worktree, built on demand, one project at a time."""

    def __init__(self, ref: str, scratch: Path) -> None:
        self.ref = ref
        self.scratch = scratch
        self.tree = scratch / "base"
        self.problem: str | None = None
        found = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if found.returncode != 0 and "/" in ref:  # a fresh checkout has no remote branches
            remote, _, branch = ref.partition("/")
            git("fetch", "--no-tags", "--depth=1", remote, f"{branch}:refs/remotes/{ref}")
        added = git("worktree", "add", "--detach", str(self.tree), ref)
        if added.returncode != 0:
            self.problem = f"cannot check out {ref}: {first_line(added.stderr)}"

    def changed(self, manifest: str) -> bool:
        """Whether the pull request changes anything in the manifest's folder."""
        folder = os.path.dirname(manifest) or "."
        out = git("diff", "--name-only", self.ref, "--", folder)
        return out.returncode != 0 or bool(out.stdout.strip())

    def close(self) -> None:
        if self.problem is None:
            git("worktree", "remove", "--force", str(self.tree))
        shutil.rmtree(self.scratch, ignore_errors=True)


def git(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def build_facts(manifest: str, out: Path, cwd: str | None = None) -> dict[str, Any] | None:
    """The IR facts of the manifest's pipeline, built into `out`; None when it is not there."""
    from nbflow.deploy.build_diff import facts

    if not Path(cwd or ".", manifest).is_file():
        return None
    done = subprocess.run(
        [sys.executable, "-m", "nbflow", "build", "--out", str(out), "--", manifest],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    irs = sorted(out.glob("*/*/pipeline.yaml"))
    if done.returncode != 0 or not irs:
        raise RuntimeError(first_line(done.stderr))
    return facts(irs[0].read_text(encoding="utf-8"))


def _shown(value: Any) -> str:
    return "–" if value is None else markdown_code(json.dumps(value, sort_keys=True), table=True)


def base_lines(manifest: str, base: Base, index: int) -> list[str]:
    """Markdown: what the pull request changes in the pipeline, against the base's build."""
    from nbflow.deploy.build_diff import compare

    title = f"**Against {markdown_code(base.ref)}:**"
    if base.problem:
        return [title, "", f"base build skipped: {markdown(base.problem)}", ""]
    if not base.changed(manifest):
        return [title, "", "no change in this project's folder", ""]
    try:
        head = build_facts(manifest, base.scratch / f"head-{index}")
        old = build_facts(manifest, base.scratch / f"base-{index}", cwd=str(base.tree))
    except RuntimeError as exc:
        return [title, "", f"build failed: {markdown(str(exc))}", ""]
    if old is None:
        return [title, "", "a new pipeline: nothing to compare with", ""]
    changes = compare(old, head)
    lines = [title, ""]
    if not changes:
        lines += ["no change to steps, parameters, images or resources", ""]
    else:
        lines += ["| | name | what | base | this pull request |", "|---|---|---|---|---|"]
        for c in changes:
            lines.append(
                f"| {c.kind} | {markdown_code(c.name, table=True)} | {markdown(c.what)} | "
                f"{_shown(c.old)} | {_shown(c.new)} |"
            )
        lines.append("")
    if os.environ.get("NBFLOW_RUN", "").strip().lower() == "true":
        lines += metrics_lines(manifest, base)
    return lines


def run_metrics(manifest: str, cwd: str | None = None) -> dict[str, Any]:
    """The metrics of `nbflow run` of the manifest; raises RuntimeError when the run fails."""
    done = subprocess.run(
        [sys.executable, "-m", "nbflow", "run", "--json", "-q", "--", manifest],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(first_line(done.stderr)) from None
    if not doc.get("ok"):
        failed = [s["name"] for s in doc.get("steps", []) if s.get("status") == "failed"]
        raise RuntimeError(f"the run failed (steps: {', '.join(failed) or 'none ran'})")
    return dict(doc.get("metrics") or {})


def metrics_lines(manifest: str, base: Base) -> list[str]:
    """Markdown: the metrics of a run of this pull request beside those of the base's."""
    from nbflow.local.report import format_value

    try:
        new = run_metrics(manifest)
        old = run_metrics(manifest, cwd=str(base.tree)) if (base.tree / manifest).is_file() else {}
    except RuntimeError as exc:
        return [f"run skipped: {markdown(str(exc))}", ""]
    lines = ["**Metrics** (`nbflow run`):", "", "| metric | base | this pull request | change |",
             "|---|---|---|---|"]  # fmt: skip
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        change = "–"
        if isinstance(a, int | float) and isinstance(b, int | float):
            change = ("+" if b - a > 0 else "") + format_value(b - a)
        shown = ["–" if v is None else format_value(v) for v in (a, b)]
        lines.append(f"| {markdown_code(name, table=True)} | {shown[0]} | {shown[1]} | {change} |")
    return [*lines, ""]


def manifest_section(
    manifest: str, cluster: str | None, event: str, base: Base | None = None, index: int = 0
) -> tuple[str, list[str]]:
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
    if base is not None:
        lines += base_lines(manifest, base, index)
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
    ref = os.environ.get("NBFLOW_BASE_REF", "").strip()
    if not ref and os.environ.get("GITHUB_BASE_REF", "").strip():
        ref = f"origin/{os.environ['GITHUB_BASE_REF'].strip()}"
    base = None
    if ref:
        scratch = Path(tempfile.mkdtemp(prefix="nbflow-", dir=os.environ.get("RUNNER_TEMP")))
        base = Base(ref, scratch)
    table = ["| manifest | result |", "|---|---|"]
    sections: list[str] = []
    for index, manifest in enumerate(manifests):
        result, lines = manifest_section(manifest, cluster, event, base, index)
        mark = "✅" if result == "ok" else "❌"
        table.append(f"| {markdown_code(manifest, table=True)} | {mark} {result} |")
        sections += [f"### {markdown_code(manifest)}: {result}", "", *lines]
    if base is not None:
        base.close()
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
