"""The files a build reads: the manifest, and every path a manifest names (its notebook, its
requirements file, its lock file).

A manifest is input, perhaps from a stranger's pull request, read by CI jobs that hold cluster
credentials. So a path it names is read only when, after symlinks, it is a regular file inside
the manifest's repository (the nearest folder above the manifest holding `.git`; outside git,
the manifest's own folder), of at most a size cap. `/etc/passwd`, `/proc/self/environ`,
`../../x` outside the repository, a symlink pointing out of it, a directory, a FIFO (which would
block a plain read), a device (`/dev/zero` never ends) and an oversized file are refused before
a byte is read, and the refusal names the path, never what the file holds (docs/security.md).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIB = 1024 * 1024
# Caps on what nbflow reads, per kind of file: notebooks carry their outputs (images), the rest
# is text a person writes.
LIMITS = {"manifest": MIB, "notebook": 64 * MIB, "requirements": MIB, "lock": 4 * MIB}


class InputRefused(Exception):
    """A file that nbflow will not read; the message says why (after "is", "has"...)."""


class InputTooLarge(InputRefused):
    """A file larger than its cap in LIMITS: the one size check of every file nbflow reads (a
    manifest's caller reports it as input-too-large, the others as file-refused)."""


def repository_root(folder: Path) -> Path:
    """The repository holding `folder`, resolved: the nearest folder at or above it with a
    `.git` (a folder, or a worktree's file); `folder` itself outside git. The search walks the
    path as written, so that a folder of the repository that is a symlink to elsewhere does not
    move the root there."""
    written = Path(os.path.abspath(folder))
    for candidate in (written, *written.parents):
        if (candidate / ".git").exists():
            return candidate.resolve()
    return written.resolve()


def confined(path: Path, root: Path | None) -> Path:
    """`path` with every symlink followed, when that lies inside `root`.

    Raises FileNotFoundError when nothing is there (a dangling symlink included) and
    InputRefused when it resolves outside `root`."""
    # not strict: a path outside `root` is refused whether or not something is there, so that
    # the answer says nothing about the files outside the repository
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise InputRefused("cannot be resolved (a symlink loop)") from None
    if root is not None and not real.is_relative_to(Path(root).resolve()):
        raise InputRefused(
            "is outside the repository once symlinks are followed: a manifest may name only "
            "files of its own repository (outside git, of its own folder)"
        )
    if not os.path.lexists(real):
        raise FileNotFoundError(str(path))
    return real


def read_input(path: Path, *, root: Path | None, kind: str) -> bytes:
    """The bytes of `path`, a file of kind `kind` (a key of LIMITS), confined to `root` (None:
    any place, for a file the operator names on the command line).

    Raises FileNotFoundError when there is no such file and InputRefused for a path that
    resolves outside `root` or is not a regular file, InputTooLarge for one larger than its
    cap."""
    limit = LIMITS[kind]
    real = confined(path, root)
    # O_NONBLOCK: opening a FIFO for reading would wait for a writer; O_NOFOLLOW: `real` has
    # no symlink left, so one appearing now is refused rather than followed
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputRefused(f"cannot be opened: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)  # of what was opened, not of what a name pointed at
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(f"is not a regular file (it is {_kind_of(info.st_mode)})")
        if info.st_size > limit:
            raise InputTooLarge(f"is larger than nbflow reads ({limit // MIB} MiB)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # a file may grow, or lie about its size (/proc)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputTooLarge(f"is larger than nbflow reads ({limit // MIB} MiB)")
    return data


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


__all__ = ["LIMITS", "InputRefused", "InputTooLarge", "confined", "read_input", "repository_root"]
