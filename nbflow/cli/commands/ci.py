"""`nbflow ci validate` and `nbflow ci deploy`: what the GitHub workflows run (templates/,
github-actions/), as a CI runner runs them.

Both read their inputs from options or, where an option is not given, from the step's
environment as the actions pass them (NBFLOW_PATHS, whitespace-separated; NBFLOW_STRICT,
NBFLOW_KUBECONFIG, NBFLOW_BASE_REF or GITHUB_BASE_REF, NBFLOW_RUN; NBFLOW_NAMESPACE,
NBFLOW_KFP_HOST, NBFLOW_DRY_RUN, NBFLOW_KUBECONFIG_DATA), run in $GITHUB_WORKSPACE when it is
set, and append their Markdown to $GITHUB_STEP_SUMMARY (else print it on stderr).

Exit codes: `ci validate` as `nbflow validate` (0 ok, also when no nbflow.yaml is found: a pull
request may touch notebooks no pipeline uses; 1 errors, or warnings with --strict; 2 usage);
`ci deploy` as `nbflow apply` (0 applied; 1 a project has errors or the cluster refused it; 2
the cluster can't be reached or used, or an uncommitted tree).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.cli.exit_codes import EXIT_INPUT, EXIT_OK
from nbflow.errors import EnvironmentProblem, UsageError
from nbflow.escape import markdown, markdown_code, terminal

if TYPE_CHECKING:
    from nbflow.check.project import Project
    from nbflow.deploy.base_tree import BaseTree
    from nbflow.deploy.ci_summary import Section
    from nbflow.diagnostics import Report

__all__ = ["add_parser", "cmd_ci"]

PATHS_HELP = "files or folders (every nbflow.yaml below them); default: $NBFLOW_PATHS, else ."


def add_parser(sub: Any) -> None:
    c = sub.add_parser(
        "ci",
        help="what the CI workflows run: validate a pull request, deploy a merge",
        description="What nbflow's GitHub workflows run. Options not given are read from the "
        "step's environment (NBFLOW_PATHS, NBFLOW_STRICT, ...), as the actions pass their "
        "inputs; the Markdown goes to $GITHUB_STEP_SUMMARY (else to stderr).",
    )
    actions = c.add_subparsers(dest="ci_command", metavar="ACTION", help="validate or deploy")
    actions.required = True
    v = actions.add_parser(
        "validate",
        help="annotations and a job summary for a pull request (no cluster, no secret)",
        description="Validate every nbflow.yaml under the paths: annotations on the exact lines "
        "(`::error file=,line=,col=::`), and a job summary with each manifest's result, its DAG "
        "and, against --base (default: $NBFLOW_BASE_REF, else origin/$GITHUB_BASE_REF), what "
        "changes in each project whose folder changed. With a kubeconfig, what would change "
        "on the cluster too. Exit 0 when no nbflow.yaml is found.",
    )
    v.add_argument("paths", nargs="*", help=PATHS_HELP)
    v.add_argument("--strict", action="store_true", help="fail on warnings too ($NBFLOW_STRICT)")
    v.add_argument(
        "--base", metavar="REF", help="git revision to compare each changed project's build with"
    )
    v.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig for the cluster diff ($NBFLOW_KUBECONFIG, else $KUBECONFIG; none: "
        "skipped)",
    )
    v.add_argument(
        "--run",
        action="store_true",
        help="also run each changed pipeline here and at the base (`nbflow run`) and compare "
        "their metrics ($NBFLOW_RUN)",
    )
    d = actions.add_parser(
        "deploy",
        help="apply the projects to the cluster, with a kubeconfig from a secret",
        description="`nbflow apply` for CI: the kubeconfig in $NBFLOW_KUBECONFIG_DATA (an "
        "environment secret; else $KUBECONFIG or ~/.kube/config) has its credentials masked in "
        "the log and is written to a private temporary file, removed at the end. One line per "
        "resource on the log, the results as JSON under $RUNNER_TEMP (the step output "
        "`result`), a table per project in the job summary.",
    )
    d.add_argument("paths", nargs="*", help=PATHS_HELP)
    d.add_argument(
        "--namespace", "-n", help="target namespace for every project ($NBFLOW_NAMESPACE)"
    )
    d.add_argument(
        "--kfp-host",
        metavar="URL",
        help="KFP API URL for `deploy.kfp: api`, the only host $NBFLOW_KFP_TOKEN is sent to "
        "($NBFLOW_KFP_HOST)",
    )
    d.add_argument(
        "--dry-run",
        action="store_true",
        help="read the cluster only; show what would change ($NBFLOW_DRY_RUN)",
    )


def cmd_ci(args: argparse.Namespace) -> int:
    workspace = os.environ.get("GITHUB_WORKSPACE", "").strip()
    if workspace:
        try:
            os.chdir(workspace)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot enter GITHUB_WORKSPACE {workspace}: {exc}") from None
    if args.ci_command == "deploy":
        return cmd_ci_deploy(args)
    return cmd_ci_validate(args)


# -- ci validate ---------------------------------------------------------------------------------


def cmd_ci_validate(args: argparse.Namespace) -> int:
    from nbflow.check.validate import find_manifests, validate_manifest
    from nbflow.cli.reporters import render_github
    from nbflow.deploy import ci_summary
    from nbflow.diagnostics import Report

    paths = _paths(args)
    strict = args.strict or _env_true("NBFLOW_STRICT")
    manifests = find_manifests(paths)
    if not manifests:
        _write_summary(ci_summary.no_manifest(paths))
        return EXIT_OK
    checked: list[tuple[Path, Report, Project | None]] = []
    merged = Report()
    try:
        for manifest in manifests:
            report, project = validate_manifest(manifest)
            merged.merge(report)
            checked.append((manifest, report, project))
    except (UsageError, EnvironmentProblem) as exc:
        _write_summary(ci_summary.not_validated(str(exc)))
        raise
    sys.stdout.write(render_github(merged))
    sys.stdout.flush()
    code = EXIT_OK if merged.ok and not (strict and merged.warnings) else EXIT_INPUT

    _write_summary(ci_summary.summary(_sections(checked, args)))
    return code


def _sections(
    checked: list[tuple[Path, Report, Project | None]], args: argparse.Namespace
) -> list[Section]:
    """Each manifest's part of the summary; the base is checked out once for them all."""
    from nbflow.check.validate import shown_path
    from nbflow.deploy import ci_summary

    ref = _base_ref(args)
    cluster = _cluster_kubeconfig(args)
    sections = []
    with contextlib.ExitStack() as stack:
        base, problem = None, None
        if ref and any(project is not None for _, _, project in checked):
            from nbflow.deploy.base_tree import base_tree

            try:
                base = stack.enter_context(base_tree(ref, Path.cwd(), _runner_temp()))
            except (UsageError, EnvironmentProblem) as exc:
                problem = str(exc)
        for manifest, report, project in checked:
            lines = ci_summary.diagnostics_lines(report)
            if project is not None:
                if ref:
                    lines += _base_section(manifest, (report, project), ref, base, problem, args)
                lines += _graph_lines(project)
                lines += _cluster_section(manifest, cluster)
            ok = project is not None
            sections.append(ci_summary.Section(shown_path(manifest), ok, tuple(lines)))
    return sections


def _base_section(
    manifest: Path,
    validated: tuple[Report, Project],
    ref: str,
    base: BaseTree | None,
    problem: str | None,
    args: argparse.Namespace,
) -> list[str]:
    from nbflow.deploy import ci_summary
    from nbflow.deploy.build_diff import diff_project

    if base is None:
        return ci_summary.base_lines(ref, None, problem or "no base")
    result = diff_project(manifest, base, only_changed=True, validated=validated)
    lines = ci_summary.base_lines(ref, result, None)
    if result.status in ("changed", "unchanged") and (args.run or _env_true("NBFLOW_RUN")):
        lines += _metrics_lines(manifest, base.path_of(manifest))
    return lines


def _graph_lines(project: Project) -> list[str]:
    from nbflow.cli.graph import render
    from nbflow.deploy import ci_summary

    return ci_summary.graph_lines(render(project.plan, "mermaid", pipeline=project.name))


def _cluster_section(manifest: Path, cluster: str | None) -> list[str]:
    from nbflow.cli.commands.deploy import library_logs_redacted, render_markdown
    from nbflow.deploy import ci_summary
    from nbflow.deploy.gitops import diff, gather

    if cluster is None:
        event = os.environ.get("GITHUB_EVENT_NAME", "")
        pull = event.startswith("pull_request")
        return [ci_summary.NO_CREDENTIALS if pull else ci_summary.NO_KUBECONFIG, ""]
    with library_logs_redacted(cluster):
        try:
            results, error = gather(lambda: diff([manifest], kubeconfig=cluster))
            problem = error.message if error is not None else None
        except (UsageError, EnvironmentProblem) as exc:
            results, problem = [], str(exc)
    return ci_summary.cluster_lines(render_markdown(results), problem)


def _metrics_lines(head: Path, base: Path) -> list[str]:
    """The metrics of a run of this tree beside those of the base's (`nbflow run`, each in a
    process of its own, as a user runs it)."""
    from nbflow.local.report import format_value

    try:
        new = _run_metrics(head)
        old = _run_metrics(base) if base.is_file() else {}
    except RunFailed as exc:
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


class RunFailed(Exception):
    """A run of a side failed: said in the summary, not fatal to the job."""


def _run_metrics(manifest: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "nbflow", "run", "--json", "-q", "--", str(manifest)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        raise RunFailed(_said(done.stderr)) from None
    if not doc.get("ok"):
        failed = [s["name"] for s in doc.get("steps", []) if s.get("status") == "failed"]
        raise RunFailed(f"the run failed (steps: {', '.join(failed) or 'none ran'})")
    return dict(doc.get("metrics") or {})


def _said(text: str) -> str:
    """The message of nbflow's error output (`nbflow: ...`), else its last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("nbflow:")]
    return said[0] if said else lines[-1] if lines else "(no message)"


# -- ci deploy -----------------------------------------------------------------------------------


def cmd_ci_deploy(args: argparse.Namespace) -> int:
    from nbflow.cli.commands.deploy import (
        exit_status,
        library_logs_redacted,
        report_invalid,
        result_json,
    )
    from nbflow.deploy import ci_deploy
    from nbflow.deploy.gitops import apply_projects, gather

    temp = _runner_temp() or Path(tempfile.gettempdir())
    # not inherited by what apply starts (an exec plugin, git): they get the file, if anything
    data = os.environ.pop("NBFLOW_KUBECONFIG_DATA", "")
    namespace = args.namespace or os.environ.get("NBFLOW_NAMESPACE", "").strip() or None
    host = args.kfp_host or os.environ.get("NBFLOW_KFP_HOST", "").strip() or None
    dry_run = args.dry_run or _env_true("NBFLOW_DRY_RUN")
    if data.strip():
        for line in ci_deploy.mask_commands(data):
            print(line, flush=True)
    with contextlib.ExitStack() as stack:
        config = None
        if data.strip():
            config = str(stack.enter_context(ci_deploy.private_kubeconfig(data, temp)))
        stack.enter_context(library_logs_redacted(config))
        try:
            results, error = gather(
                lambda: apply_projects(
                    _paths(args),
                    namespace=namespace,
                    kubeconfig=config,
                    dry_run=dry_run,
                    out_dir=temp / "nbflow-dist",
                    host=host,
                )
            )
        except (UsageError, EnvironmentProblem):
            _write_summary(ci_deploy.summary([], True, dry_run), to_stderr=False)
            raise
    report_invalid(results)
    shown = [result_json(r) for r in results]
    for line in ci_deploy.log_lines(shown):
        print(terminal(line))  # a name cannot start a workflow command or recolour the log
    sys.stdout.flush()
    code = exit_status(results, error)
    result_file = temp / "nbflow-apply.json"
    result_file.write_text(json.dumps(shown, indent=2) + "\n", encoding="utf-8")
    output = os.environ.get("GITHUB_OUTPUT", "").strip()
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(f"result={result_file}\n")
    _write_summary(ci_deploy.summary(shown, code != EXIT_OK, dry_run), to_stderr=False)
    return code


# -- the environment -----------------------------------------------------------------------------


def _paths(args: argparse.Namespace) -> list[str]:
    return list(args.paths) or os.environ.get("NBFLOW_PATHS", "").split() or ["."]


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _base_ref(args: argparse.Namespace) -> str | None:
    if args.base:
        return str(args.base)
    ref = os.environ.get("NBFLOW_BASE_REF", "").strip()
    if not ref and os.environ.get("GITHUB_BASE_REF", "").strip():
        ref = f"origin/{os.environ['GITHUB_BASE_REF'].strip()}"
    return ref or None


def _cluster_kubeconfig(args: argparse.Namespace) -> str | None:
    explicit = (args.kubeconfig or os.environ.get("NBFLOW_KUBECONFIG", "")).strip()
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return os.environ.get("KUBECONFIG", "").strip() or None


def _runner_temp() -> Path | None:
    temp = os.environ.get("RUNNER_TEMP", "").strip()
    return Path(temp) if temp else None


def _write_summary(text: str, *, to_stderr: bool = True) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(text)
    elif to_stderr:
        sys.stderr.write("".join(terminal(line) + "\n" for line in text.splitlines()))
