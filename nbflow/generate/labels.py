"""The labels and annotations of every resource nbflow generates (Pipeline, PipelineVersion,
Experiment): what made it (nbflow, the pipeline, the content hash, the snapshot) and where its
source is (the manifest in its repository, the commit, the remote)."""

from __future__ import annotations

import functools
from pathlib import Path

from nbflow import __version__
from nbflow.check.project import Project
from nbflow.generate.snapshot import Snapshot

MANAGED_BY = {"app.kubernetes.io/managed-by": "nbflow"}


def labels(project: Project, version: str, content_hash: str, snapshot: Snapshot) -> dict[str, str]:
    return {
        **MANAGED_BY,
        "app.kubernetes.io/name": project.name,
        "app.kubernetes.io/version": version,
        "nbflow.dev/pipeline": project.name,
        "nbflow.dev/snapshot": snapshot.label,
        "nbflow.dev/content-hash": content_hash[:40],
    }


def resource_annotations(project: Project, snapshot: Snapshot) -> dict[str, str]:
    out = {"nbflow.dev/version": __version__, "nbflow.dev/manifest": _repo_relative(project)}
    if snapshot.commit:
        out["nbflow.dev/commit"] = snapshot.commit
    if snapshot.remote:
        out["nbflow.dev/source"] = snapshot.remote
    return out


def _repo_relative(project: Project) -> str:
    return _relative_to_repository(project.manifest_path.resolve())


@functools.cache
def _relative_to_repository(manifest: Path) -> str:
    """The manifest's path inside its git repository (asked once per build, not per resource)."""
    try:
        import git

        root = git.Repo(manifest.parent, search_parent_directories=True).working_tree_dir
        return str(manifest.relative_to(Path(str(root)).resolve()))
    except Exception:  # no repository, or no git: the file name is still useful
        return manifest.name


def source_url(snapshot: Snapshot) -> str | None:
    remote = snapshot.remote
    if not remote or not snapshot.commit:
        return None
    if remote.startswith("git@github.com:"):
        remote = "https://github.com/" + remote.split(":", 1)[1]
    if remote.startswith("https://github.com/"):
        return remote.removesuffix(".git") + "/tree/" + snapshot.commit
    return None
