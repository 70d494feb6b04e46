"""The GitHub workflows that run `nbflow ci validate` and `nbflow ci deploy` (`nbflow init --ci
github`): copied from ``templates/``, installing nbflow from PyPI at one exact version.

The workflows use no action of nbflow's, only ``actions/checkout`` and ``actions/setup-python``
pinned by commit SHA: a PyPI release never changes once published, so ``nbflow==X.Y.Z`` pins
nbflow's code where a git tag would not (docs/security.md).

Errors: :class:`nbflow.errors.UsageError` (a workflow exists already, a version that cannot be
on PyPI: exit 2), :class:`nbflow.errors.EnvironmentProblem` (the templates are not installed).
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


def init_ci(root: Path, force: bool = False, *, nbflow_version: str | None = None) -> list[Path]:
    """Write the two workflows into ``<root>/.github/workflows/``; refuse to overwrite an
    existing one (nothing is written then) unless ``force``. Returns the files written.

    The workflows install ``nbflow==<nbflow_version>`` (default: this nbflow's version), which
    must be a public release's version: no local part (``+abc``), nothing pip cannot read.
    """
    version = release_version(nbflow_version)
    source = templates_folder()
    target = Path(root) / ".github" / "workflows"
    paths = [target / name for name in WORKFLOWS]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(map(shown, existing))} already exist{'s' if len(existing) == 1 else ''}; "
            "pass --force to overwrite"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name, path in zip(WORKFLOWS, paths, strict=True):
        text = (source / name).read_text(encoding="utf-8")
        path.write_text(pin_version(text, version), encoding="utf-8")
    return paths


# `"nbflow==0.1.0"` or `"nbflow[deploy]==0.1.0"` in a template's install step
_PIN = re.compile(r'"(nbflow(?:\[[a-z,-]+\])?)==([^"\s]*)"')


def pin_version(text: str, version: str) -> str:
    """The workflow `text` installing nbflow at `version` (a checked release version)."""
    return _PIN.sub(lambda m: f'"{m.group(1)}=={version}"', text)


def pinned_versions(text: str) -> list[str]:
    """The nbflow versions a workflow installs, one per install step."""
    return [m.group(2) for m in _PIN.finditer(text)]


def release_version(version: str | None = None) -> str:
    """`version` (default: this nbflow's) when it can name a release on PyPI, normalised."""
    from packaging.version import InvalidVersion, Version

    if version is None:
        from nbflow import __version__

        given = __version__
    else:
        given = version
    try:
        parsed = Version(given)
    except InvalidVersion:
        raise UsageError(f"--nbflow-version `{given}` is not a version pip can read") from None
    if parsed.local is not None:
        where = "this nbflow is" if version is None else "it is"
        raise UsageError(
            f"`{given}` cannot be on PyPI: {where} a local build (+{parsed.local}); "
            "pass --nbflow-version with a released version"
        )
    return str(parsed)


def shown(path: Path) -> str:
    """Relative to the working directory when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


__all__ = [
    "WORKFLOWS",
    "init_ci",
    "pin_version",
    "pinned_versions",
    "release_version",
    "shown",
    "templates_folder",
]
