"""`nbflow init NOTEBOOK` and `nbflow init --ci github`: what was written, and the exit code (0
written and valid, 1 written with errors; bad usage raises UsageError, exit 2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbflow.authoring.init import InitResult, init
from nbflow.check.validate import shown_path
from nbflow.cli.exit_codes import EXIT_INPUT, EXIT_OK
from nbflow.cli.reporters import render_text
from nbflow.console import wants_color
from nbflow.deploy.workflows import init_ci, shown
from nbflow.errors import UsageError
from nbflow.escape import terminal


def cmd_init(args: argparse.Namespace) -> int:
    if not args.notebook and not getattr(args, "ci", None):
        raise UsageError("nbflow init needs a NOTEBOOK (or --ci github)")
    code = EXIT_OK
    if args.notebook:
        result = init(
            args.notebook, name=args.name, force=args.force, strip_kale_tags=args.strip_kale_tags
        )
        code = _print_result(result, shown_path(result.manifest))
    if getattr(args, "ci", None):
        code = max(code, cmd_init_ci(args))
    return code


def cmd_init_ci(args: argparse.Namespace) -> int:
    if getattr(args, "action_ref", None) is not None:
        raise UsageError(
            "--action-ref is gone: the workflows use no nbflow action any more, they install "
            "nbflow from PyPI at one version (--nbflow-version, default: this nbflow's)"
        )
    written = init_ci(
        Path(getattr(args, "root", ".") or "."),
        force=bool(getattr(args, "force", False)),
        nbflow_version=getattr(args, "nbflow_version", None),
    )
    for path in written:
        print(f"wrote {shown(path)}")
    print(
        "next: create the GitHub environment `production` with the secret NBFLOW_KUBECONFIG, or "
        "set up OIDC (docs/cluster-setup.md)"
    )
    return EXIT_OK


def _print_result(result: InitResult, shown: str) -> int:
    for note in result.notes:
        print(f"nbflow: warning: {terminal(str(note))}", file=sys.stderr)  # notes quote cells
    if result.report.diagnostics:
        sys.stderr.write(render_text(result.report, color=wants_color(sys.stderr)))
    d = result.draft
    todos = sum(1 for v in d.comments.values() if "TODO" in v)
    parts = [
        f"{len(d.steps)} step{'s' * (len(d.steps) != 1)}",
        f"{len(d.parameters)} parameter{'s' * (len(d.parameters) != 1)}",
        f"{len(d.metrics)} metric{'s' * (len(d.metrics) != 1)}",
    ]
    if d.tuning:
        parts.append("tuning")
    origin = "from Kale's tags and metadata" if result.kale else "from the notebook's structure"
    print(
        f"wrote {shown} {origin}: {', '.join(parts)}"
        + (f"; {todos} TODO{'s' * (todos != 1)} to review" if todos else "")
    )
    if result.stripped:
        print(f"removed Kale's tags and metadata from {terminal(result.draft.notebook)}")
    elif result.stripped is False:
        why = "it has no Kale tags" if not result.kale else f"{shown} has errors"
        print(f"left {terminal(result.draft.notebook)} unchanged: {why}", file=sys.stderr)
    if not result.report.ok:
        print(
            f"{shown} was written but does not validate yet: fix the errors above", file=sys.stderr
        )
        return EXIT_INPUT
    return EXIT_OK
