"""Another revision of this repository, checked out beside it in a git worktree, so that its
projects can be built and compared with this tree's (`nbflow diff --base REF`, the pull
request summary of `nbflow ci validate`).

Errors: :class:`nbflow.errors.UsageError` when the revision is not one of the repository's (exit
2), :class:`nbflow.errors.EnvironmentProblem` when there is no git or no repository.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nbflow.errors import EnvironmentProblem, UsageError

__all__ = ["BaseTree", "base_tree"]

GIT_TIMEOUT_S = 300


@dataclass(frozen=True)
class BaseTree:
    """`ref` (as the user named it) at `commit`, checked out in `tree`; `root` is the top of
    the repository this tree is in."""

    ref: str
    commit: str
    root: Path
    tree: Path

    def path_of(self, path: Path) -> Path:
        """Where the file or folder `path` of this tree is in the base's tree."""
        return self.tree / self._relative(path)

    def changed(self, folder: Path) -> bool:
        """Whether anything in `folder` differs from the base: committed or not."""
        relative = self._relative(folder).as_posix() or "."
        out = _git(self.root, "diff", "--name-only", self.commit, "--", relative)
        return out.returncode != 0 or bool(out.stdout.strip())

    def _relative(self, path: Path) -> Path:
        try:
            return path.resolve().relative_to(self.root)
        except ValueError:
            raise UsageError(f"{path} is outside the repository at {self.root}") from None


@contextmanager
def base_tree(ref: str, start: Path, scratch: Path | None = None) -> Iterator[BaseTree]:
    """Check `ref` out, detached, in a worktree of the repository holding `start`; remove it on
    leaving. A remote branch (`origin/main`) missing from a shallow CI checkout is fetched."""
    if not ref or ref.startswith("-") or any(c.isspace() or ord(c) < 32 for c in ref):
        raise UsageError(f"`{ref}` is not a revision (a branch, tag or commit)")
    top = _git(start, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageError(f"{start} is not in a git repository: --base compares git revisions")
    root = Path(top.stdout.strip()).resolve()
    commit = _commit(root, ref)
    fetched = ""
    if commit is None and "/" in ref:  # a fresh checkout has no remote branches
        remote, _, branch = ref.partition("/")
        got = _git(root, "fetch", "--no-tags", "--depth=1", remote, f"{branch}:refs/remotes/{ref}")
        commit = _commit(root, ref)
        if got.returncode != 0:
            fetched = f" (git fetch {remote} {branch}: {_said(got.stderr)})"
    if commit is None:
        raise UsageError(f"`{ref}` is not a revision of the repository at {root}{fetched}")
    folder = Path(tempfile.mkdtemp(prefix="nbflow-base-", dir=scratch))
    tree = folder / "tree"
    added = _git(root, "worktree", "add", "--detach", str(tree), commit)
    if added.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise EnvironmentProblem(f"cannot check out {ref}: {_said(added.stderr)}")
    try:
        yield BaseTree(ref=ref, commit=commit, root=root, tree=tree)
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)
        _git(root, "worktree", "prune")


def _commit(root: Path, ref: str) -> str | None:
    found = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else None


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=GIT_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise EnvironmentProblem("git is not installed: --base needs it") from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"git {args[0]} took over {GIT_TIMEOUT_S} s") from None


def _said(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"
