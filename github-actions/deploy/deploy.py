"""The nbflow deploy action's work, runnable on its own as a GitHub runner would run it.

1. When NBFLOW_KUBECONFIG_DATA holds a kubeconfig (from an environment secret), its secret
   values are masked (`::add-mask::`), and it is written to a 0600 file in a 0700 folder under
   RUNNER_TEMP that only `nbflow apply` is pointed at, and removed at the end whatever happens.
   It is never printed. Without it, $KUBECONFIG or ~/.kube/config is used (set up by an OIDC
   login step before this one).
2. `nbflow apply --json` (NBFLOW_PATHS, NBFLOW_NAMESPACE, NBFLOW_KFP_HOST, NBFLOW_DRY_RUN);
   one line per resource on the log, the JSON under RUNNER_TEMP (output `result`).
3. What was applied, per project, to the job summary ($GITHUB_STEP_SUMMARY).

Standard library and nbflow (its kubeconfig parsing and escaping); nbflow runs as
`python -m nbflow` with this Python, paths after `--`. Exit status: that of
`nbflow apply` (0 applied, 1 a project has errors or the cluster refused it, 2 the cluster can't
be reached or used).
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


def mask_secrets(kubeconfig: str) -> None:
    """Ask the runner to hide every credential of the kubeconfig in the log.

    The kubeconfig is parsed as YAML (so JSON and flow style too) by nbflow's
    `kubeconfig_secrets`: tokens, client keys and certificates, passwords, exec plugin `env`
    values, auth-provider secrets; a multi-line value line by line (a command is one line:
    the rest of a multi-line value would be printed, not masked), each escaped as the runner
    unescapes a command's data."""
    from nbflow.deploy.redact import read_kubeconfig_secrets
    from nbflow.escape import workflow_data

    for value in read_kubeconfig_secrets(kubeconfig):
        if "\n" not in value and "\r" not in value:
            print(f"::add-mask::{workflow_data(value)}", flush=True)


def write_kubeconfig(data: str, temp: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="nbflow-kube-", dir=temp))  # mode 0700
    path = folder / "config"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    return path


def apply(env: dict[str, str], out: Path) -> tuple[int, list[dict[str, Any]]]:
    args = ["apply", "--json", "--out", str(out)]
    if os.environ.get("NBFLOW_NAMESPACE", "").strip():
        args += ["--namespace", os.environ["NBFLOW_NAMESPACE"].strip()]
    if os.environ.get("NBFLOW_KFP_HOST", "").strip():
        args += ["--host", os.environ["NBFLOW_KFP_HOST"].strip()]
    if os.environ.get("NBFLOW_DRY_RUN", "").strip().lower() == "true":
        args.append("--dry-run")
    # paths after `--`: a folder may be called `-weird`
    args += ["--", *(os.environ.get("NBFLOW_PATHS", "").split() or ["."])]
    sys.stdout.flush()
    proc = subprocess.run(
        [sys.executable, "-m", "nbflow", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    try:
        results = json.loads(proc.stdout) if proc.stdout.strip() else []
    except ValueError:
        sys.stderr.write(proc.stdout)
        results = []
    return proc.returncode, results if isinstance(results, list) else []


def log_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for project in results:
        for c in project.get("changes", []):
            where = f" in {c['namespace']}" if c.get("namespace") else ""
            lines.append(f"{c['action']} {c['kind']} {c['name']}{where}")
        for s in project.get("skipped", []):
            lines.append(f"skipped {s['kind']} {s['name']} ({s['reason']})")
    return lines


def cell(value: object) -> str:
    """Literal Markdown text on one line (names and messages come from manifests and the
    cluster): no link, image, HTML or table break can form."""
    from nbflow.escape import markdown

    return markdown(" ".join(str(value or "").split()))


def code_span(value: object, *, table: bool = False) -> str:
    from nbflow.escape import markdown_code

    return markdown_code(str(value or ""), table=table)


def summary(results: list[dict[str, Any]], code: int, dry_run: bool) -> str:
    out = ["## nbflow apply" + (" (dry run: nothing was written)" if dry_run else ""), ""]
    if not results:
        out.append(
            "Nothing was applied: see the job's log for why." if code else "No project found."
        )
    for project in results:
        head = f"### {code_span(project.get('manifest'))}"
        if project.get("version"):
            head += f": {cell(project['version'])}"
        out += [head, ""]
        facts = [
            f"{name} {code_span(project[key])}"
            for name, key in (
                ("snapshot", "snapshot"),
                ("namespace", "namespace"),
                ("mode", "mode"),
            )
            if project.get(key)
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
            out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
            out.append("")
        errors = [d for d in project.get("diagnostics", []) if d.get("severity") == "error"]
        if errors:
            out += [
                f"**not applied:** {len(errors)} error(s) in the manifest; run `nbflow validate`",
                "",
            ]
        if project.get("error"):
            out += [f"**error:** {cell(project['error'])}", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace:
        os.chdir(workspace)
    temp = Path(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir())
    env = {**os.environ, "NO_COLOR": "1"}
    data = env.pop("NBFLOW_KUBECONFIG_DATA", "")
    config: Path | None = None
    try:
        if data.strip():
            mask_secrets(data)
            config = write_kubeconfig(data, temp)
            env["KUBECONFIG"] = str(config)
        code, results = apply(env, temp / "nbflow-dist")
    finally:
        if config is not None:
            shutil.rmtree(config.parent, ignore_errors=True)
    from nbflow.escape import terminal

    for line in log_lines(results):
        print(terminal(line))  # a name cannot start a workflow command or recolour the log
    result_file = temp / "nbflow-apply.json"
    result_file.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as f:
            f.write(f"result={result_file}\n")
    text = summary(results, code, os.environ.get("NBFLOW_DRY_RUN", "").lower() == "true")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
