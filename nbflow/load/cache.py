"""Nbflow's cache on this machine: code compiled once, kept like Python's own `.pyc` files.

Where: `$NBFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/nbflow`, else `~/.cache/nbflow`. It holds
only what can be rebuilt (today: the notebook schema's validator, ~60 ms to generate and
compile in each process otherwise). Deleting it is always safe; a cache that can't be read or
written is simply not used.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType


def cache_dir() -> Path | None:
    explicit = os.environ.get("NBFLOW_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "nbflow"
    try:
        return Path.home() / ".cache" / "nbflow"
    except RuntimeError:  # no home directory to be found
        return None


def compiled(name: str, source: Callable[[], str]) -> CodeType:
    """The code object of `source()`, compiled once per machine and Python version: `name` must
    change whenever the source would (put a hash of the inputs in it)."""
    folder = cache_dir()
    path = folder / f"{name}.{sys.implementation.cache_tag}.code" if folder else None
    if path is not None:
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
            code = marshal.loads(path.read_bytes())
            if isinstance(code, CodeType):
                return code
    code = compile(source(), f"<nbflow cache: {name}>", "exec")
    if path is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_bytes(marshal.dumps(code))
            os.replace(partial, path)  # readers see the whole file or none
    return code
