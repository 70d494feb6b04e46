"""The `nbflow` command: a thin layer over the library API.

Exit codes (`nbflow.cli.exit_codes`, documented in README.md, tested in tests/test_cli.py):
  0  success
  1  the input has errors, or a run / tuning / apply failed
  2  bad usage, or an environment problem (missing file, dependency or extra, unreachable cluster)
  3  internal error: a bug in nbflow (one line on stderr, never a traceback; please report it)
  130 interrupted (Ctrl-C, SIGTERM, SIGHUP)
Exceptions become exit codes here, in `main`; the commands in `nbflow.cli.commands` return the
code of their outcome. No module outside `nbflow.cli` decides an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nbflow import __version__
from nbflow.cli.exit_codes import EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from nbflow.console import CHOICES, wants_color
from nbflow.errors import CommandFailed, EnvironmentProblem, Interrupted, UsageError
from nbflow.escape import terminal_lines

if TYPE_CHECKING:
    from nbflow.check.project import Project

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
    "parser",
]


def _out() -> TextIO:
    return sys.stdout


# -- commands ------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from nbflow.check.validate import find_manifests, validate
    from nbflow.cli.reporters import REPORTER_BY_NAME

    paths = args.paths or ["."]
    if not find_manifests(paths):
        print(f"nbflow: no nbflow.yaml found under {', '.join(map(str, paths))}", file=sys.stderr)
        return EXIT_USAGE
    report = validate(paths)
    if args.format == "text":
        from nbflow.cli.reporters import render_text

        _out().write(render_text(report, color=_color(args)))
    else:
        _out().write(REPORTER_BY_NAME[args.format](report))
    if args.strict and report.warnings:
        return EXIT_INPUT
    return EXIT_OK if report.ok else EXIT_INPUT


def cmd_cells(args: argparse.Namespace) -> int:
    from nbflow.cli.cells import cell_table

    rows, report = cell_table(args.notebook, args.manifest)
    if args.format == "json":
        _out().write(json.dumps(rows, indent=2) + "\n")
    else:
        from nbflow.escape import terminal

        # ids come from the notebook's JSON: shown escaped, as the cells' first lines are
        rows = [{**r, "id": terminal(r["id"]) if r["id"] else r["id"]} for r in rows]
        width = {
            k: max([len(k)] + [len(str(r[k] or "")) for r in rows])
            for k in ("number", "id", "type", "owner")
        }
        head = f"{'#':>{width['number']}}  {'id':<{width['id']}}  {'type':<{width['type']}}  {'owner':<{width['owner']}}  first line"
        lines = [head]
        for r in rows:
            lines.append(
                f"{r['number']:>{width['number']}}  {r['id'] or '':<{width['id']}}  {r['type']:<{width['type']}}  "
                f"{r['owner'] or '':<{width['owner']}}  {terminal(r['first_line'])}"
            )
        _out().write("\n".join(lines) + "\n")
    if report is not None and report.diagnostics:
        from nbflow.cli.reporters import render_text

        sys.stderr.write(render_text(report))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from nbflow.check.manifest import schema_text

    _out().write(schema_text())
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from nbflow.cli.graph import render

    project = _project(args.path)
    if project is None:
        return EXIT_INPUT
    _out().write(render(project.plan, args.format, pipeline=project.name).rstrip("\n") + "\n")
    return EXIT_OK


def _each_project(paths: list[str], *, lock: bool = True) -> Iterator[Project | None]:
    """Validate every manifest below `paths`, printing its diagnostics; yield its Project, or
    None when it has errors. No manifest at all is bad usage."""
    from nbflow.check.validate import find_manifests, validate_manifest
    from nbflow.cli.reporters import render_text

    manifests = find_manifests(paths or ["."])
    if not manifests:
        raise UsageError(f"no nbflow.yaml found under {', '.join(paths or ['.'])}")
    for manifest in manifests:
        report, project = validate_manifest(manifest, lock=lock)
        if report.diagnostics:
            sys.stderr.write(render_text(report, color=wants_color(sys.stderr)))
        yield project


def cmd_lock(args: argparse.Namespace) -> int:
    from nbflow.check.lock import fix_manifest, prepare_notebook, write_lock
    from nbflow.check.validate import find_manifests, shown_path

    failed = 0
    unfixed: set[str] = set()
    for manifest in find_manifests(args.paths or ["."]):
        for line in prepare_notebook(manifest):
            print(line)
        for d in fix_manifest(manifest) if args.fix else ():
            if d.spec is None:  # locking now would record the drift as if it were meant
                unfixed.add(shown_path(manifest))
                print(
                    f"nbflow: {shown_path(manifest)}: {d.what}: choose its cells by hand, "
                    "then lock",
                    file=sys.stderr,
                )
            else:
                print(f"fixed: {shown_path(manifest)}: {d.fix}")
    for project in _each_project(args.paths, lock=False):  # the lock is what is rewritten
        if project is None or shown_path(project.manifest_path) in unfixed:
            failed += 1
            continue
        print(f"locked: {shown_path(write_lock(project))}")
    return EXIT_INPUT if failed else EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from nbflow.check.validate import shown_path
    from nbflow.generate.build import build

    failed = 0
    for project in _each_project(args.paths):
        if project is None:
            failed += 1
            continue
        result = build(project, Path(args.out))
        for problem in result.warnings:
            print(f"nbflow: warning: {problem}", file=sys.stderr)
        state = "built" if result.changed else "unchanged"
        print(
            f"{state}: {project.name} {result.version} -> {shown_path(result.folder)} (snapshot {result.snapshot.label})"
        )
    return EXIT_INPUT if failed else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from nbflow.cli.progress import StepProgress
    from nbflow.local.report import format_value
    from nbflow.local.run import RunError, parse_parameters, run

    project = _project(args.path)
    if project is None:
        return EXIT_INPUT
    try:
        params = parse_parameters(project, args.param or [])
    except RunError as exc:
        raise UsageError(str(exc)) from None
    display = StepProgress(
        project.name,
        [s.name for s in project.plan.steps],
        sys.stderr,
        quiet=args.quiet,
        verbose=args.verbose,
    )
    try:
        result = run(
            project,
            parameters=params,
            cache=not args.no_cache,
            progress=display.update,
            started=display.started,
            echo=display.echo,
            engine=args.engine,
            jobs=args.jobs,
        )
    except RunError as exc:
        raise UsageError(str(exc)) from None
    finally:
        display.stop()
    display.finish(result)
    if args.json:
        _out().write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    else:
        for name, value in sorted(result.metrics.items()):
            print(f"{name}={format_value(value)}")
    return EXIT_OK if result.ok else EXIT_INPUT


# -- plumbing ------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _project(path: str) -> Project | None:
    """Validate one project; print its diagnostics; return the Project or None on errors."""
    from nbflow.check.validate import load_project
    from nbflow.cli.reporters import render_text

    report, project = load_project(path)
    if report.diagnostics:
        sys.stderr.write(render_text(report, color=wants_color(sys.stderr)))
    return project


def _color(args: argparse.Namespace) -> bool:
    return wants_color(sys.stdout)  # --color reaches it through the environment (see main)


@contextlib.contextmanager
def _color_choice(choice: str) -> Iterator[None]:
    """`--color always|never` as NO_COLOR / FORCE_COLOR for the command (and the processes it
    starts), so that every writer decides through nbflow.console alike; restored afterwards."""
    import os

    saved = {k: os.environ.get(k) for k in ("NO_COLOR", "FORCE_COLOR")}
    if choice == "always":
        os.environ.pop("NO_COLOR", None)
        os.environ["FORCE_COLOR"] = "1"
    elif choice == "never":
        os.environ["NO_COLOR"] = "1"
        os.environ.pop("FORCE_COLOR", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cmd_explain(args: argparse.Namespace) -> int:
    from nbflow.cli.explain import explain

    _out().write(explain(args.code))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    if getattr(args, "base", None) is not None:
        from nbflow.cli.commands.base_diff import cmd_diff_base

        return cmd_diff_base(args)
    from nbflow.cli.commands.deploy import cmd_diff as run

    return run(args)


def cmd_apply(args: argparse.Namespace) -> int:
    from nbflow.cli.commands.deploy import cmd_apply as run

    return run(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from nbflow.cli.commands.tune import cmd_tune as run

    return run(args)


def cmd_runs(args: argparse.Namespace) -> int:
    from nbflow.cli.runs import cmd_runs as run

    return run(args, _out())


def cmd_completion(args: argparse.Namespace) -> int:
    from nbflow.cli.completion import cmd_completion as run

    return run(args)


def cmd_init(args: argparse.Namespace) -> int:
    from nbflow.cli.commands.init import cmd_init as run

    return run(args)


def cmd_ci(args: argparse.Namespace) -> int:
    from nbflow.cli.commands.ci import cmd_ci as run

    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "cells": cmd_cells,
    "schema": cmd_schema,
    "explain": cmd_explain,
    "graph": cmd_graph,
    "build": cmd_build,
    "lock": cmd_lock,
    "run": cmd_run,
    "diff": cmd_diff,
    "apply": cmd_apply,
    "tune": cmd_tune,
    "runs": cmd_runs,
    "completion": cmd_completion,
    "init": cmd_init,
    "ci": cmd_ci,
}
# the extra each command needs beyond `pip install nbflow` (nbflow.extras); the others need none
COMMAND_EXTRAS = {
    "build": "build",
    "run": "run",
    "tune": "tune",
    "diff": "deploy",
    "apply": "deploy",
}


def _extra_needed(args: argparse.Namespace) -> str | None:
    """The extra the command needs: `diff --base` compares two builds (no cluster), `ci deploy`
    applies; `ci validate` needs only what each of its parts needs, and says what it skipped."""
    if args.command == "diff" and getattr(args, "base", None):
        return "build"
    if args.command == "ci":
        return "deploy" if getattr(args, "ci_command", None) == "deploy" else None
    return COMMAND_EXTRAS.get(args.command)


def _command_words(args: argparse.Namespace) -> str:
    """`diff --base`, `ci deploy`, `build`: the command as the user typed it, for messages."""
    if args.command == "diff" and getattr(args, "base", None):
        return "diff --base"
    if args.command == "ci" and getattr(args, "ci_command", None):
        return f"ci {args.ci_command}"
    return str(args.command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nbflow",
        description="Jupyter notebooks to Kubeflow Pipelines and Katib, declaratively and through git.",
        epilog="Exit codes: 0 ok, 1 errors in the input or a failed run, 2 bad usage or environment, "
        "3 internal error (a bug in nbflow: please report it), "
        "130 interrupted (Ctrl-C, SIGTERM, SIGHUP).",
    )
    p.add_argument("--version", action="version", version=f"nbflow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    v = sub.add_parser("validate", help="check manifests and notebooks together")
    v.add_argument(
        "paths", nargs="*", help="files or folders (every nbflow.yaml below them); default: ."
    )
    v.add_argument(
        "--format",
        choices=["text", "json", "github", "sarif"],
        default="text",
        help="text with code frames, JSON, GitHub workflow annotations, or SARIF 2.1 for code "
        "scanning (default: text)",
    )
    v.add_argument("--strict", action="store_true", help="fail on warnings too")

    c = sub.add_parser(
        "cells", help="list a notebook's cells with number, id, type, first line and step"
    )
    c.add_argument("notebook", help="the .ipynb file")
    c.add_argument(
        "--manifest",
        help="nbflow.yaml whose steps own the cells (default: the one beside the notebook)",
    )
    c.add_argument(
        "--format", choices=["text", "json"], default="text", help="output format (default: text)"
    )

    sub.add_parser("schema", help="print the JSON schema of nbflow.yaml")

    e = sub.add_parser(
        "explain",
        help="explain a diagnostic code, with a wrong and a right example; with none, list them",
    )
    e.add_argument("code", nargs="?", help="a code (`NBF302`, `302`) or its name (`cycle`)")

    g = sub.add_parser("graph", help="print the pipeline's DAG with the variables on each edge")
    g.add_argument(
        "path", nargs="?", default=".", help="project folder or nbflow.yaml (default: .)"
    )
    g.add_argument(
        "--format",
        choices=["mermaid", "dot", "text"],
        default="text",
        help="plain text, a Mermaid flowchart or Graphviz DOT (default: text)",
    )
    lk = sub.add_parser(
        "lock", help="record which cells each step holds (nbflow.lock.json), to catch drift"
    )
    lk.add_argument(
        "paths", nargs="*", help="files or folders (every nbflow.yaml below them); default: ."
    )
    lk.add_argument(
        "--fix",
        action="store_true",
        help="first rewrite the manifest's cell numbers to follow the locked cells "
        "(inserted, deleted, moved cells), keeping its comments and layout",
    )

    b = sub.add_parser("build", help="generate the versioned KFP (and Katib) artifacts")
    b.add_argument(
        "paths", nargs="*", help="files or folders (every nbflow.yaml below them); default: ."
    )
    b.add_argument("--out", default="dist", help="output folder (default: dist)")

    r = sub.add_parser(
        "run",
        help="run the pipeline on this machine, steps in parallel",
        description="Run the pipeline on this machine: independent steps in parallel (--jobs), "
        "each in a warm process and a session of its own (--engine kfp-local: kfp.local, one "
        "step at a time). Ctrl-C, SIGTERM or SIGHUP stop the running step with every "
        "process it started, say which step was stopped and exit 130; the run's temporary files "
        "go with it. A step killed by a signal is reported with the signal's name and what it "
        "usually means (SIGKILL: often the out-of-memory killer).",
    )
    r.add_argument(
        "path", nargs="?", default=".", help="project folder or nbflow.yaml (default: .)"
    )
    r.add_argument(
        "-p", "--param", action="append", metavar="NAME=VALUE", help="override a parameter"
    )
    r.add_argument(
        "--no-cache", action="store_true", help="run every step, ignoring cached results"
    )
    r.add_argument("--json", action="store_true", help="print the run's result as JSON")
    r.add_argument(
        "--engine",
        choices=["nbflow", "kfp-local"],
        default="nbflow",
        help="nbflow (default: steps in parallel, each in a warm process of its own) or "
        "kfp-local (kfp.local, one step at a time: a fidelity check)",
    )
    r.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="steps run at once by the nbflow engine (default: the cores)",
    )
    loud = r.add_mutually_exclusive_group()
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="print only failures and the metrics"
    )
    loud.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each step's output live, each line prefixed by the step's name",
    )

    from nbflow.cli.runs import add_parser as add_runs

    add_runs(sub)

    t = sub.add_parser(
        "tune",
        help="run the manifest's hyperparameter search on this machine (Optuna)",
        description="Run the manifest's hyperparameter search on this machine with Optuna. "
        "Ctrl-C, SIGTERM or SIGHUP stop the running trials, their workers and steps, write the "
        "results so far and exit 130.",
    )
    t.add_argument(
        "path", nargs="?", default=".", help="project folder or nbflow.yaml (default: .)"
    )
    t.add_argument(
        "--trials", type=int, metavar="N", help="number of trials (default: tuning.maxTrials)"
    )
    t.add_argument(
        "--parallel",
        type=int,
        metavar="K",
        help="trials run at once (default: tuning.parallelTrials)",
    )
    t.add_argument("--json", action="store_true", help="print the search's result as JSON")

    d = sub.add_parser(
        "diff",
        help="show what `nbflow apply` would change on the cluster, or against a git revision "
        "(--base)",
    )
    _cluster_options(d)
    d.add_argument(
        "--format",
        choices=["text", "json", "markdown"],
        default="text",
        help="output format; markdown suits a job summary (default: text)",
    )
    from nbflow.cli.commands.base_diff import add_base_options

    add_base_options(d)

    a = sub.add_parser("apply", help="validate, build and apply the projects to the cluster")
    _cluster_options(a)
    a.add_argument(
        "--dry-run", action="store_true", help="read the cluster only; show what would change"
    )
    a.add_argument(
        "--force",
        "--force-conflicts",
        dest="force",
        action="store_true",
        help="take over objects nbflow did not create, or whose fields another manager owns",
    )
    a.add_argument(
        "--allow-dirty",
        action="store_true",
        help="apply from uncommitted changes (labelled -dirty)",
    )
    a.add_argument("--out", default="dist", help="build folder (default: dist)")
    a.add_argument("--json", action="store_true", help="print the results as JSON")

    i = sub.add_parser(
        "init",
        help="write an nbflow.yaml for a notebook (imports Kale tags), or CI files with --ci",
        description="Propose nbflow.yaml beside NOTEBOOK from its structure, or from its Kale cell "
        "tags and metadata; it is validated as it is written. With --ci, write CI workflow files.",
    )
    i.add_argument("notebook", nargs="?", help="the notebook (.ipynb)")
    i.add_argument(
        "--name", help="the pipeline name (default: from Kale's metadata or the file name)"
    )
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.add_argument(
        "--strip-kale-tags",
        action="store_true",
        help="remove Kale's cell tags and metadata from the notebook once the manifest validates",
    )
    i.add_argument("--ci", choices=["github"], help="write the CI workflows for this repository")
    i.add_argument("--root", default=".", help="repository root for --ci (default: .)")
    i.add_argument(
        "--nbflow-version",
        metavar="VERSION",
        help="the nbflow release the workflows install from PyPI (default: this nbflow's version)",
    )
    i.add_argument("--action-ref", help=argparse.SUPPRESS)  # gone: says so (commands/init.py)
    from nbflow.cli.commands.ci import add_parser as add_ci

    add_ci(sub)

    co = sub.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print the completion script for a shell. bash: "
        '`eval "$(nbflow completion bash)"` in ~/.bashrc; zsh: `eval "$(nbflow completion '
        'zsh)"` in ~/.zshrc, after `compinit`; fish: `nbflow completion fish > '
        "~/.config/fish/completions/nbflow.fish`.",
    )
    co.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell")

    for action in sub._choices_actions:  # a command's help is its description, unless it has one
        command = sub.choices[action.dest]
        if not command.description and action.help:
            command.description = action.help[0].upper() + action.help[1:] + "."
    for command in sub.choices.values():
        _add_color(command, "auto")
    return p


def _add_color(command: argparse.ArgumentParser, default: str) -> None:
    """`--color` on a command and on each of its actions (`nbflow ci validate --color never`).
    An action's option has no default: argparse copies a subparser's defaults over what was
    parsed before it, and `nbflow ci --color never validate` must keep `never`."""
    command.add_argument(
        "--color",
        choices=CHOICES,
        default=default,
        help="colour the output (default: auto: on a terminal, unless NO_COLOR is set; "
        "FORCE_COLOR forces it)",
    )
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_command in dict.fromkeys(action.choices.values()):  # aliases: once each
                _add_color(sub_command, argparse.SUPPRESS)


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths", nargs="*", help="files or folders (every nbflow.yaml below them); default: ."
    )
    p.add_argument(
        "--namespace", "-n", help="target namespace (default: deploy.namespace of nbflow.yaml)"
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument(
        "--kfp-host",
        "--host",
        dest="host",
        metavar="URL",
        help="KFP API URL for `deploy.kfp: api` (default: $NBFLOW_KFP_HOST, else deploy.host); "
        "the only host $NBFLOW_KFP_TOKEN is sent to",
    )


def main(argv: Sequence[str] | None = None) -> int:

    p = parser()
    if argv is None:
        from nbflow.cli.completion import answer

        answer(p)  # a shell asking for completions: answered, then the process exits
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help/--version
        return int(exc.code or 0)
    handler = COMMANDS[args.command]
    try:
        extra = _extra_needed(args)
        if extra:
            from nbflow.extras import require

            require(extra, f"`nbflow {_command_words(args)}`")
        with _color_choice(getattr(args, "color", "auto")):
            return handler(args)
    except UsageError as exc:
        print(f"nbflow: {terminal_lines(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except EnvironmentProblem as exc:
        print(f"nbflow: {terminal_lines(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"nbflow: {terminal_lines(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM and SIGHUP too, as Interrupted
        message = str(exc) if isinstance(exc, Interrupted) else "interrupted"
        print(f"nbflow: {terminal_lines(message)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `nbflow cells x | head`
        return EXIT_OK
    except ModuleNotFoundError as exc:  # an extra's module, imported where no check foresaw it
        return _missing_module(exc, f"`nbflow {args.command}`")
    except Exception as exc:  # the last line of defence: a bug in nbflow, never a traceback
        return _internal_error(exc)


def _missing_module(exc: ModuleNotFoundError, what: str) -> int:
    from nbflow.extras import MissingExtra, extra_of

    found = extra_of(exc.name)
    if found is None:  # not an extra's: a broken install or a bug
        return _internal_error(exc)
    print(f"nbflow: {MissingExtra(what, *found)}", file=sys.stderr)
    return EXIT_USAGE


def _internal_error(exc: BaseException) -> int:
    """One line for a bug in nbflow: what went wrong and where, so that a report can name it.
    NBFLOW_TRACEBACK=1 prints the traceback as well, for whoever debugs it."""
    import os
    import traceback

    where = traceback.extract_tb(exc.__traceback__)
    place = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    text = " ".join(str(exc).split())[:300] or "no message"
    print(
        f"nbflow: internal error (please report): {type(exc).__name__}: {text}{place}",
        file=sys.stderr,
    )
    if os.environ.get("NBFLOW_TRACEBACK"):
        traceback.print_exception(exc, file=sys.stderr)
    return EXIT_INTERNAL
