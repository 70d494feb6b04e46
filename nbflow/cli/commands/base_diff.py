"""`nbflow diff --base REF [PATHS]`: what changes in each project's compiled pipeline between the
git revision REF and this tree (steps, parameters and their defaults, images, resources,
retries, caching, what each step waits for), as text, Markdown or JSON. No cluster is asked and
no token is needed: both sides are compiled here, the base in a temporary git worktree.

Exit codes: 0 compared (whether or not anything changed, as `git diff`); 1 a project has errors
here or at the base; 2 REF is not a revision of the repository, no repository, no manifest, or
an option of the cluster diff given with --base.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nbflow.cli.exit_codes import EXIT_INPUT, EXIT_OK
from nbflow.deploy.build_diff import BuildChange, ProjectChanges
from nbflow.errors import UsageError
from nbflow.escape import markdown, markdown_code, terminal

__all__ = ["add_base_options", "cmd_diff_base", "render_markdown", "text_lines"]

CLUSTER_OPTIONS = {"namespace": "--namespace", "kubeconfig": "--kubeconfig",
                   "context": "--context", "host": "--kfp-host"}  # fmt: skip


def add_base_options(p: argparse.ArgumentParser) -> None:
    """`--base REF` and `--json` for the `diff` command's parser."""
    p.add_argument(
        "--base",
        metavar="REF",
        help="compare each project's build with its build at the git revision REF (a branch, "
        "tag or commit) instead of with the cluster: steps, parameters, images, resources; "
        "no cluster, no token",
    )
    p.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        # no default of its own: --format's, added before, stands (argparse keeps the first)
        help="same as --format json",
    )


def cmd_diff_base(args: argparse.Namespace) -> int:
    from nbflow.check.validate import find_manifests
    from nbflow.cli.reporters import render_text
    from nbflow.console import wants_color
    from nbflow.deploy.base_tree import base_tree
    from nbflow.deploy.build_diff import diff_projects

    given = [flag for dest, flag in CLUSTER_OPTIONS.items() if getattr(args, dest, None)]
    if given:
        raise UsageError(f"--base compares two builds, no cluster: drop {', '.join(given)}")
    paths = args.paths or ["."]
    manifests = find_manifests(paths)
    if not manifests:
        raise UsageError(f"no nbflow.yaml found under {', '.join(map(str, paths))}")
    with base_tree(args.base, Path.cwd()) as base:
        results = diff_projects(manifests, base)
    for r in results:
        if r.report is not None and r.report.diagnostics and r.status == "invalid":
            sys.stderr.write(render_text(r.report, color=wants_color(sys.stderr)))
        if r.error is not None:
            print(f"nbflow: {terminal(r.manifest)}: {terminal(r.error)}", file=sys.stderr)
    if args.format == "json":
        doc = {"base": args.base, "projects": [r.to_json() for r in results]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(results, args.base))
    else:
        sys.stdout.write("".join(terminal(line) + "\n" for line in text_lines(results, args.base)))
    return EXIT_OK if all(r.ok for r in results) else EXIT_INPUT


def text_lines(results: list[ProjectChanges], ref: str) -> list[str]:
    """A line per project, then one per change, indented:

    good/nbflow.yaml (digits) against main: 2 changes
      parameter C: default 1.0 -> 2.5
    """
    lines: list[str] = []
    for r in results:
        name = f" ({r.pipeline})" if r.pipeline else ""
        head = f"{r.manifest}{name} against {ref}: "
        if not r.ok:
            lines.append(head + "not compared: " + (r.error or "errors in the manifest"))
            continue
        count = len(r.changes)
        state = "a new pipeline" if r.status == "new" else "no change" if not count else ""
        state = state or f"{count} change{'s' if count != 1 else ''}"
        lines.append(head + state)
        lines += ["  " + _change_text(c) for c in r.changes]
    return lines


def _change_text(c: BuildChange) -> str:
    if c.what in ("added", "removed"):
        value = c.new if c.what == "added" else c.old
        return f"{c.kind} {c.name}: {c.what}" + (f" ({_value(value)})" if value is not None else "")
    return f"{c.kind} {c.name}: {c.what} {_value(c.old)} -> {_value(c.new)}"


def _value(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True)


def render_markdown(results: list[ProjectChanges], ref: str) -> str:
    """A heading per project and a table of its changes, for a job summary or a comment."""
    from nbflow.deploy.ci_summary import changes_table

    out: list[str] = []
    for r in results:
        title = markdown_code(r.manifest) + (f" ({markdown(r.pipeline)})" if r.pipeline else "")
        out += [f"#### {title} against {markdown_code(ref)}", ""]
        if not r.ok:
            out += [f"not compared: {markdown(r.error or 'errors in the manifest')}", ""]
            continue
        if r.status == "new":
            out += [f"a new pipeline: not at {markdown_code(ref)}", ""]
        if not r.changes:
            out += ["no change to steps, parameters, images or resources", ""]
            continue
        out += [*changes_table(r.changes, markdown_code(ref, table=True), "this tree"), ""]
    return "\n".join(out).rstrip() + "\n" if out else ""
