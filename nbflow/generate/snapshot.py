"""Snapshots: which git commit of the manifest's repository a build comes from.

A snapshot is the short SHA of HEAD, with `-dirty` when a file the build reads (the manifest,
its notebook, requirements file and lock file: `Project.inputs`, wherever in the repository they
are) differs from that commit, is staged, untracked or ignored; `untracked` outside any
repository. Other files (data, outputs beside the notebook) don't make a snapshot dirty: they
are not part of what is deployed. It labels every generated resource; it is not part of the
version, which depends on content alone, so the same content built from two commits is the same
version.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    commit: str | None  # full SHA of HEAD, None outside a repository
    dirty: bool
    remote: str | None = None  # origin's URL, credentials stripped

    @property
    def label(self) -> str:
        if self.commit is None:
            return "untracked"
        return self.commit[:12] + ("-dirty" if self.dirty else "")

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "dirty": self.dirty,
            "remote": self.remote,
            "label": self.label,
        }


def take(project_root: Path, files: Sequence[Path] = ()) -> Snapshot:
    """The snapshot of the repository holding `project_root`, dirty when one of `files` (the
    files a build reads: `Project.inputs`) is not exactly as committed. Without `files`, the
    whole folder `project_root` is checked."""
    try:
        import git
    except ImportError:  # gitpython needs the git executable
        return Snapshot(None, False)
    try:
        repo = git.Repo(project_root, search_parent_directories=True)
        if not repo.head.is_valid():
            return Snapshot(None, True)
        commit = repo.head.commit.hexsha
        top = Path(str(repo.working_tree_dir)).resolve()
        specs = _pathspecs(top, files or [Path(project_root)])
        if specs is None:  # a file outside this repository can't be named by its commit
            return Snapshot(commit, True, _remote(repo))
        # modified, staged, untracked or ignored: anything git would not give back from HEAD
        ignored = ["--ignored"] if files else []  # a folder may hold ignored outputs
        status = repo.git.status("--porcelain", "--untracked-files=all", *ignored, "--", *specs)
        return Snapshot(commit, bool(status.strip()), _remote(repo))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return Snapshot(None, False)


def _pathspecs(top: Path, files: Sequence[Path]) -> list[str] | None:
    """Literal git pathspecs of `files` (each as written and, for a symlink, its target too),
    relative to the work tree `top`; None when one lies outside it."""
    specs: list[str] = []
    for f in files:
        written = Path(os.path.abspath(f))
        for p in dict.fromkeys((written.parent.resolve() / written.name, written.resolve())):
            if not p.is_relative_to(top):
                return None
            rel = p.relative_to(top).as_posix()
            specs.append(f":(literal){rel}" if rel != "." else ".")
    return specs


def _remote(repo: Any) -> str | None:
    if "origin" in [r.name for r in repo.remotes]:
        return _strip_credentials(next(iter(repo.remotes.origin.urls), None))
    return None


def _strip_credentials(url: str | None) -> str | None:
    """Never let a token embedded in a remote URL reach a label or a log."""
    if not url:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url
