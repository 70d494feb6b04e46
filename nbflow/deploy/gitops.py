"""GitOps: what `nbflow diff` and `nbflow apply` do for every project of a repository. The
GitHub workflows that run them (`nbflow init --ci github`) are written by :mod:`nbflow.deploy.workflows`, and
the ``deploy.kfp: api`` upload is :mod:`nbflow.deploy.kfp_api`; both are re-exported here.

Each project (an ``nbflow.yaml``) goes through:

    validate -> snapshot (git) -> build into the out folder -> changes (diff) or apply

- A project with errors is reported (its result carries the report) and nothing of it is
  applied; the other projects go on.
- Every snapshot is taken before any build writes a file, so the build folder can't make the
  tree dirty. A snapshot is dirty when any file the build reads (the manifest, its notebook,
  requirements and lock files, wherever in the repository) is not as committed. ``apply``
  refuses a dirty snapshot (or a project outside git) unless ``allow_dirty`` or ``dry_run``:
  what runs on the cluster must be named by a commit.
- The namespace is the command line's, else the manifest's ``deploy.namespace``, else the
  resource's, else the kubeconfig context's (see :func:`nbflow.deploy.kubernetes.apply`).
- ``deploy.kfp: kubernetes`` (the default) applies the Pipeline and PipelineVersion with
  server-side apply; ``deploy.kfp: api`` uploads them through the KFP REST API instead (for
  clusters whose pipeline store is not in Kubernetes). The Katib Experiment is applied only when
  the manifest says ``deploy.experiment: true``, since a tuning run costs GPUs; it is always a
  Kubernetes resource.

Errors: :class:`nbflow.errors.UsageError` (no manifest, a dirty tree, no KFP host, a token a
host may not have: exit 2);
:class:`nbflow.deploy.kubernetes.ApplyError` from the cluster, and :class:`DeployError` (an ApplyError that
also carries the results of every project) from :func:`apply_projects` and :func:`diff`. An
ApplyError's ``cluster_unusable`` tells a cluster that can't be reached or used (no
configuration, network, 401, 403, a missing namespace or CRD) from one that refused the input
(a conflict, a webhook, a server error). Nothing here prints or decides an exit code: that is
``nbflow.cli.commands.deploy``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.deploy.kfp_api import (
    KFP_HOST_ENV,
    KFP_TOKEN_ENV,
    bearer_token,
    upload_to_kfp,
    url_problem,
)
from nbflow.deploy.kubernetes import ApplyError, Change
from nbflow.deploy.workflows import WORKFLOWS, init_ci, templates_folder
from nbflow.errors import UsageError

if TYPE_CHECKING:
    from nbflow.check.project import Project
    from nbflow.diagnostics import Report
    from nbflow.generate.build import BuildResult
    from nbflow.generate.snapshot import Snapshot

JSON = dict[str, Any]


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    """A built resource that was not applied, and why."""

    kind: str
    name: str
    namespace: str
    reason: str

    def to_json(self) -> JSON:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ProjectDiff:
    """What ``nbflow apply`` would change on the cluster for one project."""

    manifest: str  # the nbflow.yaml, as shown to the user
    pipeline: str | None = None
    version: str | None = None  # the PipelineVersion's name: <pipeline>-<content hash>
    snapshot: str | None = None  # e.g. 1a2b3c4d5e6f, 1a2b3c4d5e6f-dirty, untracked
    namespace: str | None = None
    mode: str = "kubernetes"  # deploy.kfp
    folder: str | None = None  # the build folder
    changes: tuple[Change, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    report: Report | None = field(default=None, compare=False)  # diagnostics, when any
    error: str | None = None  # the cluster's refusal, worded for the user

    @property
    def valid(self) -> bool:
        return self.report is None or self.report.ok

    @property
    def ok(self) -> bool:
        return (
            self.valid
            and self.error is None
            and not any(c.action == "conflict" for c in self.changes)
        )


@dataclass(frozen=True)
class ProjectApply(ProjectDiff):
    """What ``nbflow apply`` did (or, with ``dry_run``, would do) for one project."""

    dry_run: bool = False


class DeployError(ApplyError):
    """An :class:`ApplyError` of one project, with the results of all projects so far.

    ``results`` holds every project handled, the failing one included (its ``error`` says why),
    so that a caller can show what was applied before the failure.
    """

    def __init__(self, cause: ApplyError, results: Sequence[ProjectDiff]) -> None:
        super().__init__(cause.message, cause.hint, changes=cause.changes, status=cause.status)
        self.cause = cause
        self.results = list(results)


def gather(
    call: Callable[[], Iterable[ProjectDiff]],
) -> tuple[list[ProjectDiff], ApplyError | None]:
    """What `call` (`diff`, `apply_projects`) gave, and the error that stopped it, if any: with
    a :class:`DeployError`, the projects handled before it (the failing one included)."""
    try:
        return list(call()), None
    except DeployError as exc:
        return list(exc.results), exc
    except ApplyError as exc:
        return [], exc


# --- the build folder --------------------------------------------------------------------------


def resources_of(build_folder: Path, *, include_experiment: bool) -> list[JSON]:
    """The resources of a build folder, in apply order: the Pipeline and PipelineVersion of
    ``kubernetes.yaml``, then, when ``include_experiment``, the Experiment of ``experiment.yaml``
    (the manifest's ``deploy.experiment: true`` opts in)."""
    resources = _documents(build_folder / "kubernetes.yaml", required=True)
    if include_experiment:
        resources += _documents(build_folder / "experiment.yaml", required=False)
    return resources


def _documents(path: Path, *, required: bool) -> list[JSON]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not required:
            return []
        raise UsageError(
            f"{path} does not exist: give a folder that `nbflow build` wrote "
            "(dist/<pipeline>/<version>)"
        ) from None
    try:
        return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from None


# --- the flow ----------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """One project after validation, snapshot and build."""

    shown: str
    report: Report
    project: Project | None = None
    snapshot: Snapshot | None = None
    build: BuildResult | None = None
    kfp_host: str | None = None  # `deploy.kfp: api`: the URL, and the token it may have
    kfp_token: str | None = None


def diff(
    paths: Sequence[str | Path],
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    out_dir: Path | None = None,
    host: str | None = None,
) -> list[ProjectDiff]:
    """What :func:`apply_projects` would change, reading the cluster only.

    Actions per resource: ``create``, ``new-version``, ``update``, ``unchanged``, ``conflict``
    (see :func:`nbflow.deploy.kubernetes.diff_resources`). ``out_dir`` None builds into a temporary folder.
    ``host`` is the operator's KFP API URL (else ``$NBFLOW_KFP_HOST``), the only host that
    ``$NBFLOW_KFP_TOKEN`` is sent to (:func:`nbflow.deploy.kfp_api.bearer_token`).
    """
    with _out_folder(out_dir) as out:
        prepared = _prepare(paths, out, allow_dirty=True, host=host)
        results = _run(
            prepared,
            ProjectDiff,
            namespace=namespace,
            clients=_Clients(kubeconfig, context),
            write=False,
        )
    # a temporary build folder is gone now: don't point at it
    return results if out_dir is not None else [replace(r, folder=None) for r in results]


def apply_projects(
    paths: Sequence[str | Path],
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    allow_dirty: bool = False,
    out_dir: Path = Path("dist"),
    host: str | None = None,
) -> list[ProjectApply]:
    """Validate, build and apply every project under ``paths``; see the module docstring.

    Raises :class:`UsageError` for a dirty snapshot (before anything is built or applied;
    ``dry_run`` accepts one, since it writes nothing) and
    :class:`DeployError` when the cluster refuses a project: the projects after it are still
    applied unless the cluster can't be used at all (``cluster_unusable``).
    """
    # a preview writes nothing, so it may show what an uncommitted tree would change
    prepared = _prepare(paths, Path(out_dir), allow_dirty=allow_dirty or dry_run, host=host)
    results = _run(
        prepared,
        ProjectApply,
        namespace=namespace,
        clients=_Clients(kubeconfig, context),
        write=True,
        dry_run=dry_run,
        force=force,
    )
    return [r for r in results if isinstance(r, ProjectApply)]


@contextlib.contextmanager
def _out_folder(out_dir: Path | None) -> Iterator[Path]:
    if out_dir is not None:
        yield Path(out_dir)
        return
    with tempfile.TemporaryDirectory(prefix="nbflow-diff-") as tmp:
        yield Path(tmp)


def _prepare(
    paths: Sequence[str | Path], out: Path, *, allow_dirty: bool, host: str | None
) -> list[_Prepared]:
    """Validate every project, take every snapshot, refuse what can't be applied, then build:
    nothing is built or sent before every refusal had its chance."""
    from nbflow.check.validate import find_manifests, validate_manifest
    from nbflow.generate.build import build
    from nbflow.generate.snapshot import take

    manifests = find_manifests(paths or ["."])
    if not manifests:
        raise UsageError(f"no nbflow.yaml found under {', '.join(map(str, paths or ['.']))}")
    prepared: list[_Prepared] = []
    for manifest in manifests:
        report, project = validate_manifest(manifest)
        item = _Prepared(
            report.manifests[0] if report.manifests else str(manifest), report, project
        )
        if project is not None:
            # every snapshot before the first build: the out folder must not make a tree dirty
            item.snapshot = take(project.root, project.inputs)
        prepared.append(item)
    _kfp_hosts(prepared, host or os.environ.get(KFP_HOST_ENV) or None)
    dirty = [p for p in prepared if p.snapshot is not None and _unnamed(p.snapshot)]
    if dirty and not allow_dirty:
        lines = [f"  {p.shown}: snapshot {p.snapshot.label}" for p in dirty if p.snapshot]
        raise UsageError(
            "refusing to apply from a working tree that is not committed:\n"
            + "\n".join(lines)
            + "\nhint: commit the changes (the resources are labelled with the commit); to apply "
            "them anyway, labelled `-dirty`, run `nbflow apply --allow-dirty` by hand (in CI, a "
            "step before the deploy changed the checkout: find and drop that change)"
        )
    for item in prepared:
        if item.project is not None:
            item.build = build(item.project, out, snapshot=item.snapshot)
    return prepared


def _kfp_hosts(prepared: list[_Prepared], operator: str | None) -> None:
    """The KFP API URL of each `deploy.kfp: api` project, and the token it may have: the
    operator's URL wins over a manifest's, and only the operator's gets the token."""
    if operator is not None and (problem := url_problem(operator)):
        raise UsageError(f"--kfp-host {operator} {problem}")
    api = [p for p in prepared if p.project is not None and p.project.manifest.deploy.kfp == "api"]
    hostless = [
        p.shown for p in api if not (operator or (p.project and p.project.manifest.deploy.host))
    ]
    if hostless:
        raise UsageError(
            f"`deploy.kfp: api` needs the KFP API's URL ({', '.join(hostless)}): pass "
            f"--kfp-host (or set {KFP_HOST_ENV}), or set `deploy.host` in nbflow.yaml (for "
            "example http://localhost:8888 after `kubectl port-forward -n kubeflow "
            "svc/ml-pipeline 8888`)"
        )
    for item in api:
        assert item.project is not None
        item.kfp_host = operator or item.project.manifest.deploy.host
        assert item.kfp_host is not None
        item.kfp_token = bearer_token(
            item.kfp_host, operator_named=operator is not None, shown=item.shown
        )


def _unnamed(snapshot: Snapshot) -> bool:
    """A snapshot that names no commit: uncommitted changes, or no repository at all."""
    return snapshot.dirty or snapshot.commit is None


class _Clients:
    """The Kubernetes API client, loaded once and only when a project needs it."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        self.kubeconfig, self.context = kubeconfig, context
        self._client: Any = None

    def kubernetes(self) -> Any:
        if self._client is None:
            from nbflow.deploy.kubernetes import load_api_client

            self._client = load_api_client(self.kubeconfig, self.context)
        return self._client


def _run(
    prepared: list[_Prepared],
    result_type: type[ProjectDiff],
    *,
    namespace: str | None,
    clients: _Clients,
    write: bool,
    dry_run: bool = False,
    force: bool = False,
) -> list[ProjectDiff]:
    extra: JSON = {"dry_run": dry_run} if result_type is ProjectApply else {}
    results: list[ProjectDiff] = []
    first_error: ApplyError | None = None
    for item in prepared:
        report = item.report if item.report.diagnostics else None
        if item.project is None or item.build is None:
            results.append(result_type(item.shown, report=report, **extra))
            continue
        project, built = item.project, item.build
        deploy = project.manifest.deploy
        ns = namespace or deploy.namespace
        base = result_type(
            item.shown,
            pipeline=project.name,
            version=built.version_name,
            snapshot=built.snapshot.label,
            namespace=ns,
            mode=deploy.kfp,
            folder=str(built.folder),
            report=report,
            **extra,
        )
        experiment = _documents(built.folder / "experiment.yaml", required=False)
        skipped = tuple(
            Skipped(
                str(e.get("kind", "Experiment")),
                str((e.get("metadata") or {}).get("name", "")),
                ns or str((e.get("metadata") or {}).get("namespace") or ""),
                "deploy.experiment is not true in nbflow.yaml",
            )
            for e in experiment
            if not deploy.experiment
        )
        try:
            changes = _deploy(
                built,
                deploy.kfp,
                experiment if deploy.experiment else [],
                namespace=ns,
                host=item.kfp_host,
                token=item.kfp_token,
                clients=clients,
                write=write,
                dry_run=dry_run,
                force=force,
            )
        except ApplyError as exc:
            failed = replace(base, changes=exc.changes, skipped=skipped, error=str(exc))
            results.append(failed)
            if exc.cluster_unusable:  # the rest would fail too
                raise DeployError(exc, results) from None
            first_error = first_error or exc
            continue
        shown_ns = ns or next((c.namespace for c in changes if c.namespace), None)
        results.append(replace(base, changes=tuple(changes), skipped=skipped, namespace=shown_ns))
    if first_error is not None:
        raise DeployError(first_error, results)
    return results


def _deploy(
    built: BuildResult,
    mode: str,
    experiment: list[JSON],
    *,
    namespace: str | None,
    host: str | None,
    token: str | None,
    clients: _Clients,
    write: bool,
    dry_run: bool,
    force: bool,
) -> list[Change]:
    """The changes of one built project: found (``write`` False), previewed or applied."""
    from nbflow.deploy.kubernetes import apply, diff_resources

    changes: list[Change] = []
    if mode == "api":
        assert host, "checked by _prepare"
        step = "diff" if not write else "dry-run" if dry_run else "apply"
        changes += upload_to_kfp(built, host=host, namespace=namespace, step=step, token=token)
        resources = experiment  # the Experiment is still a Kubernetes resource
    else:
        resources = resources_of(built.folder, include_experiment=False) + experiment
    if not resources:
        return changes
    api_client = clients.kubernetes()
    if not write:
        return changes + diff_resources(resources, namespace=namespace, api_client=api_client)
    result = apply(
        resources,
        namespace=namespace,
        api_client=api_client,
        dry_run=dry_run,
        force_conflicts=force,
    )
    return changes + list(result.changes)


__all__ = [
    "KFP_HOST_ENV",  # nbflow.deploy.kfp_api
    "KFP_TOKEN_ENV",  # nbflow.deploy.kfp_api
    "WORKFLOWS",  # nbflow.deploy.workflows
    "DeployError",
    "ProjectApply",
    "ProjectDiff",
    "Skipped",
    "apply_projects",
    "diff",
    "gather",
    "init_ci",  # nbflow.deploy.workflows
    "resources_of",
    "templates_folder",  # nbflow.deploy.workflows
    "upload_to_kfp",  # nbflow.deploy.kfp_api
]
