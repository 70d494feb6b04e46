"""Compiled local pipelines by the source they were compiled from, for the nbflow engine's
fully cached runs (`.nbflow/engine-cache/ir/<key>.yaml`).

A second run of an unchanged project has nothing to execute: every task is served from the
engine's cache. Finding that out needs each task's cache key, which covers its compiled
container; compiling costs importing kfp and running its compiler, about a third of such a
run. So the engine keeps each pipeline it compiled under a key over the generated source and the
versions of kfp and nbflow that compiled it, and a later run of the same source reads the keys
from there. The key also covers a digest of nbflow's compiler, the modules of `nbflow.generate`
(`build` post-processes kfp's output): a development checkout that changes them without a new
version number compiles again instead of reusing a pipeline the old code wrote. The digest is
read once per process (about 70 KB, under a millisecond).

The folder keeps the `KEEP` pipelines used last (read or written; a read touches the file), the
others are removed as a new one is written: each is some 40 KB, one per distinct generated
source, that is per edit of the notebook or the manifest that changes what runs.

Nothing read from here runs (docs/security.md): a stored pipeline is used only when every one of
its tasks is served from the cache, that is when only cached outputs come of it. A run with
any task to execute compiles its pipeline afresh and runs that one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from pathlib import Path

from nbflow import __version__

KEEP = 32  # pipelines kept, the ones used last: about 1.3 MB


def source_key(source: str) -> str:
    """The key of a generated source, compiled by this kfp and this nbflow's compiler."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        kfp = version("kfp")
    except PackageNotFoundError:
        kfp = "none"
    text = f"{source}\0kfp {kfp}\0nbflow {__version__}\0compiler {compiler_digest()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def compiler_digest() -> str:
    """SHA-256 over the modules of `nbflow.generate`, by name; where they cannot be read (no
    source installed), of what could be, and then the versions alone tell compilers apart."""
    from nbflow import generate

    digest = hashlib.sha256()
    if generate.__file__ is None:
        return ""
    with contextlib.suppress(OSError):
        for path in sorted(Path(generate.__file__).parent.glob("*.py")):
            digest.update(f"{path.name}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


class IRStore:
    """Entries are the compiled pipeline's text, one file per key, written whole or not at all;
    the `keep` used last are kept."""

    def __init__(self, folder: Path, keep: int = KEEP) -> None:
        self.folder = folder
        self.keep = keep

    def get(self, source: str) -> str | None:
        path = self.folder / f"{source_key(source)}.yaml"
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = path.read_text(encoding="utf-8")
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to be pruned
            return text
        return None

    def put(self, source: str, ir: str) -> None:
        key = source_key(source)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):  # a full disk: the next run compiles again
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(ir, encoding="utf-8")
            tmp.replace(self.folder / f"{key}.yaml")
        self.prune()

    def prune(self) -> None:
        """Remove all but the `keep` entries used last (by modification time, which a read
        sets). Another process pruning at the same time removes the same files."""
        entries: list[tuple[float, str, Path]] = []
        with contextlib.suppress(OSError):
            for path in self.folder.glob("*.yaml"):
                with contextlib.suppress(OSError):
                    entries.append((path.stat().st_mtime, path.name, path))
        entries.sort(reverse=True)
        for _, _, path in entries[self.keep :]:
            with contextlib.suppress(OSError):
                path.unlink()
