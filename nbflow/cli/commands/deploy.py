"""`nbflow diff` and `nbflow apply`: the results of `nbflow.deploy.gitops` as text, Markdown or
JSON, and their exit codes: 0 done, 1 a project has errors or the cluster refused the input (a
conflict, a webhook, a server error), 2 the cluster can't be reached or used (no configuration,
network, 401, 403, a missing namespace or CRD).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nbflow.cli.exit_codes import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from nbflow.cli.reporters import render_json, render_text
from nbflow.console import wants_color
from nbflow.deploy.gitops import (
    KFP_TOKEN_ENV,
    ProjectApply,
    ProjectDiff,
    apply_projects,
    diff,
    gather,
)
from nbflow.deploy.kubernetes import ApplyError
from nbflow.diagnostics import Report
from nbflow.escape import markdown, markdown_code, terminal

JSON = dict[str, Any]


def exit_code(error: ApplyError) -> int:
    """2 when the cluster can't be reached or used, 1 when it refused the input."""
    return EXIT_USAGE if error.cluster_unusable else EXIT_INPUT


def cmd_diff(args: argparse.Namespace) -> int:
    with library_logs_redacted(args.kubeconfig):
        return _cmd_diff(args)


def _cmd_diff(args: argparse.Namespace) -> int:
    results, error = gather(
        lambda: diff(
            args.paths or ["."],
            namespace=args.namespace,
            kubeconfig=args.kubeconfig,
            context=args.context,
            host=args.host,
        )
    )
    report_invalid(results)
    if args.format == "json":
        sys.stdout.write(json.dumps([result_json(r) for r in results], indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(results))
    else:
        sys.stdout.write("".join(terminal(line) + "\n" for line in text_lines(results)))
    return exit_status(results, error)


@contextlib.contextmanager
def library_logs_redacted(kubeconfig: str | None) -> Iterator[None]:
    """Library log lines (the kubernetes client logs an exec plugin's stderr) printed with
    every credential of the kubeconfig in use, the KFP token and bearer tokens as `***`."""
    import os

    from nbflow.deploy.redact import kubeconfig_redactor, redacted_library_logs

    source = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    redactor = kubeconfig_redactor(source)
    redactor.add([os.environ.get(KFP_TOKEN_ENV, "")])
    with redacted_library_logs(redactor):
        yield


def cmd_apply(args: argparse.Namespace) -> int:
    with library_logs_redacted(args.kubeconfig):
        return _cmd_apply(args)


def _cmd_apply(args: argparse.Namespace) -> int:
    results, error = gather(
        lambda: apply_projects(
            args.paths or ["."],
            namespace=args.namespace,
            kubeconfig=args.kubeconfig,
            context=args.context,
            dry_run=args.dry_run,
            force=args.force,
            allow_dirty=args.allow_dirty,
            out_dir=Path(args.out),
            host=args.host,
        )
    )
    report_invalid(results)
    if args.json:
        sys.stdout.write(json.dumps([result_json(r) for r in results], indent=2) + "\n")
    else:
        sys.stdout.write("".join(terminal(line) + "\n" for line in text_lines(results)))
    return exit_status(results, error)


def exit_status(results: list[ProjectDiff], error: ApplyError | None) -> int:
    if error is not None:
        failed = [r.manifest for r in results if r.error is not None]
        where = f" ({', '.join(failed)})" if failed else ""
        print(f"nbflow: {terminal(error.message + where)}", file=sys.stderr)
        if error.hint:
            print(f"hint: {terminal(error.hint)}", file=sys.stderr)
        return exit_code(error)
    return EXIT_OK if all(r.ok for r in results) else EXIT_INPUT


def report_invalid(results: Iterable[ProjectDiff]) -> None:
    for r in results:
        if r.report is not None and r.report.diagnostics:
            sys.stderr.write(render_text(r.report, color=wants_color(sys.stderr)))
        if not r.valid:
            print(
                f"nbflow: {terminal(r.manifest)} has errors: nothing of it was applied",
                file=sys.stderr,
            )


def result_json(result: ProjectDiff) -> JSON:
    """One project's result as `--json` / `--format json` prints it."""
    out: JSON = {
        "manifest": result.manifest,
        "ok": result.ok,
        "pipeline": result.pipeline,
        "version": result.version,
        "snapshot": result.snapshot,
        "namespace": result.namespace,
        "mode": result.mode,
        "folder": result.folder,
        "changes": [c.to_dict() for c in result.changes],
        "skipped": [s.to_json() for s in result.skipped],
        "diagnostics": _diagnostics_json(result.report),
        "error": result.error,
    }
    if isinstance(result, ProjectApply):
        out["dry_run"] = result.dry_run
    return out


def _diagnostics_json(report: Report | None) -> list[JSON]:
    if report is None or not report.diagnostics:
        return []
    diagnostics: list[JSON] = json.loads(render_json(report))["diagnostics"]
    return diagnostics


def text_lines(results: Iterable[ProjectDiff]) -> list[str]:
    """One line per resource: ``created PipelineVersion digits-1a2b3c4d in kubeflow-user``."""
    lines: list[str] = []
    for r in results:
        for c in r.changes:
            line = f"{c.action} {c.kind} {c.name}" + (f" in {c.namespace}" if c.namespace else "")
            if c.action == "conflict" and c.detail:
                line += f": {c.detail}"
            elif r.mode == "api" and c.kind != "Experiment":
                line += " (KFP API)"
            lines.append(line)
        for s in r.skipped:
            where = f" in {s.namespace}" if s.namespace else ""
            lines.append(f"skipped {s.kind} {s.name}{where} ({s.reason})")
    return lines


def render_markdown(results: Iterable[ProjectDiff]) -> str:
    """The diff as Markdown, for a pull request's job summary."""
    out: list[str] = []
    for r in results:
        title = markdown_code(r.manifest)
        if r.version:
            title += f": {markdown(r.version)} (snapshot {markdown(str(r.snapshot))}"
            title += f", namespace {markdown(r.namespace)})" if r.namespace else ")"
        out.append(f"#### {title}\n")
        if not r.valid:
            out.append(
                f"not built: {len(r.report.errors) if r.report else 0} error(s) in the manifest\n"
            )
            continue
        rows = [(c.action, c.kind, c.name, c.namespace, c.detail) for c in r.changes]
        rows += [("skipped", s.kind, s.name, s.namespace, s.reason) for s in r.skipped]
        if rows:
            out.append("| change | kind | name | namespace | detail |")
            out.append("|---|---|---|---|---|")
            out.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)
            out.append("")
        if r.error:
            out.append(f"**error:** {_cell(r.error)}\n")
    return "\n".join(out) + ("\n" if out else "")


def _cell(value: object) -> str:
    # names and messages come from manifests and from the cluster: literal text, one line
    return markdown(" ".join(str(value or "").split()))
