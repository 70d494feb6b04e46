"""Compiled local pipelines by the source they were compiled from, for the nbflow engine's
fully cached runs (`.nbflow/engine-cache/ir/<key>.yaml`).

A second run of an unchanged project has nothing to execute: every task is served from the
engine's cache. Finding that out needs each task's cache key, which covers its compiled
container; compiling costs importing kfp and running its compiler, about a third of such a
run. So the engine keeps each pipeline it compiled under a key over the generated source and the
versions of kfp and nbflow that compiled it, and a later run of the same source reads the keys
from there.

Nothing read from here runs (docs/security.md): a stored pipeline is used only when every one of
its tasks is served from the cache, that is when only cached outputs come of it. A run with
any task to execute compiles its pipeline afresh and runs that one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from nbflow import __version__


def source_key(source: str) -> str:
    """The key of a generated source, compiled by this kfp and this nbflow."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        kfp = version("kfp")
    except PackageNotFoundError:
        kfp = "none"
    text = f"{source}\0kfp {kfp}\0nbflow {__version__}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class IRStore:
    """Entries are the compiled pipeline's text, one file per key, written whole or not at all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, source: str) -> str | None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return (self.folder / f"{source_key(source)}.yaml").read_text(encoding="utf-8")
        return None

    def put(self, source: str, ir: str) -> None:
        key = source_key(source)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):  # a full disk: the next run compiles again
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(ir, encoding="utf-8")
            tmp.replace(self.folder / f"{key}.yaml")
