"""Which files are projects, and how a path is shown to a user: every `nbflow.yaml` below the
paths given (skipping virtual environments, build output and hidden folders), a project's
folder or manifest to its manifest, and a path relative to the working directory."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from nbflow.errors import UsageError

MANIFEST_NAME = "nbflow.yaml"
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".ipynb_checkpoints",
    "dist",
    ".tox",
    ".nox",
}


def shown_path(path: Path) -> str:
    """The path as a user would write it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def find_manifests(paths: Iterable[str | Path]) -> list[Path]:
    """Every nbflow.yaml at or below the given paths (a file is taken as it is)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.exists() and not p.is_dir():  # a FIFO or a device too: refused when it is read
            found.append(p)
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
                if MANIFEST_NAME in files:
                    found.append(Path(root) / MANIFEST_NAME)
        else:
            raise UsageError(f"no such file or directory: {raw}")
    return sorted(dict.fromkeys(found))


def manifest_path(path: str | Path) -> Path:
    """A project path (its folder or its manifest) to the manifest file."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.exists():
        raise UsageError(f"no manifest at {shown_path(p)}")
    return p
