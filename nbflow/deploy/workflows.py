"""The GitHub workflows that run `nbflow diff` and `nbflow apply` (`nbflow init --ci github`):
copied from ``templates/``, with nbflow's own actions optionally pinned to a commit.

Errors: :class:`nbflow.errors.UsageError` (a workflow exists already, a bad ``--action-ref``:
exit 2), :class:`nbflow.errors.EnvironmentProblem` (the templates are not installed).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from nbflow.errors import EnvironmentProblem, UsageError

WORKFLOWS = ("nbflow-validate.yml", "nbflow-deploy.yml")


def templates_folder() -> Path:
    """Where the workflow templates are: ``templates/`` of the source tree."""
    candidates = [
        Path(__file__).resolve().parents[2] / "templates",  # a source checkout
        Path(__file__).resolve().parent / "templates",
        Path(sys.prefix) / "share" / "nbflow" / "templates",  # a wheel's data files
    ]
    for folder in candidates:
        if all((folder / name).is_file() for name in WORKFLOWS):
            return folder
    raise EnvironmentProblem(
        "the workflow templates are not installed with this nbflow (templates/nbflow-*.yml); "
        "install nbflow from its source tree (`pip install -e .`)"
    )


def init_ci(root: Path, force: bool = False, *, action_ref: str | None = None) -> list[Path]:
    """Write the two workflows into ``<root>/.github/workflows/``; refuse to overwrite an
    existing one (nothing is written then) unless ``force``. Returns the files written.

    ``action_ref`` replaces the release tag that the templates use for nbflow's own actions:
    give the release's commit SHA, as zizmor and GitHub's hardening guide ask.
    """
    source = templates_folder()
    target = Path(root) / ".github" / "workflows"
    paths = [target / name for name in WORKFLOWS]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(map(shown, existing))} already exist{'s' if len(existing) == 1 else ''}; "
            "pass --force to overwrite"
        )
    if action_ref is not None and not re.fullmatch(r"[A-Za-z0-9._/-]+", action_ref):
        raise UsageError(f"--action-ref `{action_ref}` is not a git tag, branch or commit SHA")
    target.mkdir(parents=True, exist_ok=True)
    for name, path in zip(WORKFLOWS, paths, strict=True):
        text = (source / name).read_text(encoding="utf-8")
        if action_ref is not None:
            text = _ACTION_USE.sub(lambda m: _pin(m, action_ref), text)
        path.write_text(text, encoding="utf-8")
    return paths


_ACTION_USE = re.compile(r"(uses: nbflow/nbflow/github-actions/[a-z]+)@(\S+)")


def _pin(match: re.Match[str], ref: str) -> str:
    tag = match.group(2)
    comment = f" # {tag}" if re.fullmatch(r"[0-9a-f]{40}", ref) else ""
    return f"{match.group(1)}@{ref}{comment}"


def shown(path: Path) -> str:
    """Relative to the working directory when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


__all__ = ["WORKFLOWS", "init_ci", "shown", "templates_folder"]
