"""Snapshots: which git commit of the manifest's repository a build comes from.

A snapshot is the short SHA of HEAD, with `-dirty` when the project's own files (the folder
holding the manifest) differ from that commit or are untracked; `untracked` outside any
repository. It labels every generated resource; it is not part of the version, which depends on
content alone, so the same content built from two commits is the same version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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


def take(project_root: Path) -> Snapshot:
    try:
        import git
    except ImportError:  # gitpython needs the git executable
        return Snapshot(None, False)
    try:
        repo = git.Repo(project_root, search_parent_directories=True)
        if not repo.head.is_valid():
            return Snapshot(None, True)
        commit = repo.head.commit.hexsha
        rel = Path(project_root).resolve().relative_to(Path(str(repo.working_tree_dir)).resolve())
        spec = str(rel) if str(rel) != "." else None
        paths = [spec] if spec else []
        dirty = repo.is_dirty(untracked_files=False, path=spec) or any(
            f == spec or spec is None or f.startswith(spec.rstrip("/") + "/")
            for f in repo.git.ls_files("--others", "--exclude-standard", *paths).splitlines()
        )
        remote = None
        if "origin" in [r.name for r in repo.remotes]:
            remote = _strip_credentials(next(iter(repo.remotes.origin.urls), None))
        return Snapshot(commit, dirty, remote)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return Snapshot(None, False)


def _strip_credentials(url: str | None) -> str | None:
    """Never let a token embedded in a remote URL reach a label or a log."""
    if not url:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url
