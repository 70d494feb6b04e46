"""Apply generated resources to a Kubernetes cluster with server-side apply.

The resources are those ``nbflow build`` writes: a KFP ``Pipeline``, then a ``PipelineVersion``
(``pipelines.kubeflow.org/v2beta1``), then optionally a Katib ``Experiment``
(``kubeflow.org/v1beta1``). Rules:

- every write is a server-side apply (``application/apply-patch+yaml``, field manager
  ``nbflow``), Pipeline before PipelineVersion before anything else;
- a PipelineVersion or an Experiment never changes in place: one with the same name and the same
  spec (and content-hash label) is left alone ("unchanged"); one with a different spec is a
  conflict (a changed input gets a new, content-derived name, so only a hand edit gets here);
- nothing nbflow did not create is touched: an object without the label
  ``app.kubernetes.io/managed-by=nbflow``, or whose spec another field manager owns, is a
  conflict unless ``force_conflicts`` is given;
- nothing is written when the plan has a conflict; a re-run after a failure half way finishes
  the job, because what was applied already is "unchanged".

The library never exits the process: problems are :class:`ApplyError` with a one-line message
and a hint. ``kubernetes`` and ``urllib3`` are imported inside the functions that use them.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

FIELD_MANAGER = "nbflow"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CONTENT_HASH_LABEL = "nbflow.dev/content-hash"
# (connect, read) seconds for each request: an unreachable cluster fails fast
REQUEST_TIMEOUT = (5.0, 30.0)
# kinds whose spec never changes after creation, by (group, kind)
IMMUTABLE_KINDS = frozenset(
    {("pipelines.kubeflow.org", "PipelineVersion"), ("kubeflow.org", "Experiment")}
)
_KIND_ORDER = {"Pipeline": 0, "PipelineVersion": 1}
_MISSING_API_HINTS = {
    "pipelines.kubeflow.org": (
        "install Kubeflow Pipelines >= 2.14 in Kubernetes-native mode (pipeline store in "
        "Kubernetes), which serves Pipeline and PipelineVersion resources"
    ),
    "kubeflow.org": "install Katib (v0.19 or later), which serves Experiment resources",
}
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

JSON = dict[str, Any]


class ApplyError(Exception):
    """A problem applying resources, worded for the user: a one-line message and a hint.

    ``changes`` holds what was done (or planned) before the problem, so that a caller can show
    it; ``status`` is the HTTP status of the API server's answer, when there was one.
    """

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        changes: tuple[Change, ...] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.changes = changes
        self.status = status

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message

    @property
    def cluster_unusable(self) -> bool:
        """True when the cluster can't be reached or used (no configuration, network, 401,
        403, a missing namespace or CRD); False when it refused the input (a conflict, a
        webhook, a server error)."""
        if any(c.action == "conflict" for c in self.changes):
            return False
        return self.status is None or self.status in {401, 403, 404}


@dataclass(frozen=True)
class Change:
    """What happened (or would happen) to one resource.

    ``action`` is one of: ``create``, ``new-version``, ``update``, ``unchanged``, ``conflict``
    (from :func:`plan_apply`); ``created``, ``updated``, ``unchanged`` (from :func:`apply`);
    ``would-create``, ``would-update``, ``unchanged``, ``conflict`` (from a dry run).
    ``reason`` names a conflict: ``not-managed``, ``other-manager`` or ``immutable``.
    """

    kind: str
    name: str
    namespace: str
    action: str
    uid: str | None = None
    api_version: str = ""
    reason: str | None = None
    detail: str = ""

    def to_dict(self) -> JSON:
        return asdict(self)


@dataclass(frozen=True)
class ApplyResult:
    """The changes of one apply, in apply order."""

    changes: tuple[Change, ...]
    dry_run: bool = False

    @property
    def conflicts(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == "conflict")

    @property
    def ok(self) -> bool:
        """False when a dry run found conflicts (a real apply raises instead)."""
        return not self.conflicts

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def to_dict(self) -> JSON:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


@dataclass
class _Target:
    """One resource to apply, with its namespace resolved and its REST path found."""

    body: JSON
    group: str
    version: str
    kind: str
    name: str
    namespace: str
    plural: str = ""
    live: JSON | None = None
    change: Change | None = field(default=None, repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def immutable(self) -> bool:
        return (self.group, self.kind) in IMMUTABLE_KINDS

    @property
    def path(self) -> str:
        return (
            f"/apis/{self.group}/{self.version}/namespaces/{self.namespace}/"
            f"{self.plural}/{self.name}"
        )

    def describe(self) -> str:
        return f"{self.kind} `{self.name}` in namespace `{self.namespace}`"


# --- configuration -----------------------------------------------------------------------------


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` for the cluster of a kubeconfig.

    The kubeconfig is, in order: ``kubeconfig``, ``$KUBECONFIG`` (a path list), ``~/.kube/config``,
    else the in-cluster service account. The context's namespace is kept on the client as
    ``nbflow_namespace`` (the fallback namespace of :func:`apply`). Raises :class:`ApplyError`
    when there is no configuration or it cannot be read.
    """
    import urllib3
    from kubernetes import client, config

    from nbflow import __version__

    configuration = client.Configuration()
    namespace: str | None = None
    source = _kubeconfig_source(kubeconfig)
    try:
        if source is not None and context is not None:
            names = [c.get("name") for c in config.list_kube_config_contexts(source)[0]]
            if context not in names:
                raise ApplyError(
                    f"context `{context}` is not in kubeconfig {source}",
                    f"pick one of: {', '.join(map(str, names)) or '(none)'}"
                    " (`kubectl config get-contexts`)",
                )
        if source is not None:
            config.load_kube_config(
                config_file=source,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, current = config.list_kube_config_contexts(source)
            active = next((c for c in contexts if c.get("name") == context), current)
            namespace = ((active or {}).get("context") or {}).get("namespace")
            where = f"kubeconfig {source}"
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            if _SA_NAMESPACE.is_file():
                namespace = _SA_NAMESPACE.read_text(encoding="utf-8").strip() or None
            where = "the in-cluster service account"
        else:
            raise ApplyError(
                "no Kubernetes configuration found (no kubeconfig, not running in a cluster)",
                "pass --kubeconfig PATH, set KUBECONFIG, or create ~/.kube/config "
                "(for example with your cloud's `get-credentials` command)",
            )
    except ApplyError:
        raise
    except Exception as exc:  # a broken kubeconfig: ConfigException, YAML, auth plugins, files
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ApplyError(
            f"cannot use the Kubernetes configuration {source or '(in-cluster)'}: {detail}",
            "check the file with `kubectl config view`, or pass another one with --kubeconfig",
        ) from None
    # one quick retry for a refused connection; never replay a write whose answer was lost
    configuration.retries = urllib3.Retry(
        total=1, connect=1, read=0, redirect=0, status=0, other=0, backoff_factor=0.1
    )
    api_client = client.ApiClient(configuration)
    api_client.user_agent = f"nbflow/{__version__}"
    api_client.nbflow_namespace = namespace
    api_client.nbflow_source = where + (f", context {context}" if context else "")
    return api_client


def _kubeconfig_source(explicit: str | None) -> str | None:
    """The kubeconfig path (or ``:``-separated list) to read, None for in-cluster."""
    if explicit is not None:
        if not Path(explicit).expanduser().is_file():
            raise ApplyError(
                f"kubeconfig `{explicit}` does not exist",
                "pass the path of a kubeconfig file with --kubeconfig",
            )
        return str(Path(explicit).expanduser())
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = [p for p in env.split(os.pathsep) if p]
        if not any(Path(p).expanduser().is_file() for p in paths):
            raise ApplyError(
                f"KUBECONFIG names no existing file ({env})",
                "fix KUBECONFIG or unset it to use ~/.kube/config",
            )
        return env
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


# --- planning ----------------------------------------------------------------------------------


def plan_apply(resources: list[JSON], *, namespace: str | None, api_client: Any) -> list[Change]:
    """What :func:`apply` would do, reading the cluster only.

    Actions: ``create``, ``new-version`` (a PipelineVersion of a Pipeline that exists),
    ``update`` (a Pipeline whose labels or spec changed), ``unchanged``, ``conflict``.
    """
    targets = _plan(resources, namespace, api_client, force=False)
    return [t.change for t in targets if t.change is not None]


def apply(
    resources: list[JSON],
    *,
    namespace: str | None,
    api_client: Any,
    dry_run: bool = False,
    force_conflicts: bool = False,
) -> ApplyResult:
    """Apply resources in order with server-side apply; see the module docstring for the rules.

    The namespace of each resource is ``namespace`` when given (the command line wins), else the
    resource's own, else the kubeconfig context's, else ``default``. A dry run reads only and
    returns ``would-create``/``would-update``/``unchanged``/``conflict``. Raises
    :class:`ApplyError` on a conflict (before writing anything) or when the cluster refuses.
    """
    targets = _plan(resources, namespace, api_client, force=force_conflicts)
    planned = [t.change for t in targets if t.change is not None]
    if dry_run:
        preview = {
            "create": "would-create",
            "new-version": "would-create",
            "update": "would-update",
        }
        return ApplyResult(
            tuple(replace(c, action=preview.get(c.action, c.action)) for c in planned),
            dry_run=True,
        )
    conflicts = [c for c in planned if c.action == "conflict"]
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        reasons = {c.reason for c in conflicts}
        if reasons <= {"not-managed", "other-manager"}:
            hint = (
                "nothing was changed; rename the pipeline, or re-run with --force-conflicts to "
                "take the object over"
            )
        else:
            hint = (
                "nothing was changed; a PipelineVersion or Experiment never changes in place: a "
                "changed input gets a new version name, so rebuild (`nbflow build`); if the live "
                "object was edited by hand, delete it and apply again"
            )
        raise ApplyError(
            f"refusing to apply: {conflicts[0].detail}{more}", hint, changes=tuple(planned)
        )
    done: list[Change] = []
    for target in targets:
        change = target.change
        assert change is not None
        if change.action == "unchanged":
            done.append(change)
            continue
        try:
            live, status = _request(
                api_client,
                "PATCH",
                target.path,
                query=[
                    ("fieldManager", FIELD_MANAGER),
                    *([("force", "true")] if force_conflicts else []),
                ],
                body=_apply_body(target),
                content_type="application/apply-patch+yaml",
            )
        except _HTTPFailure as failure:
            raise failure.to_error(target, "apply", api_client, tuple(done)) from None
        action = "created" if status == 201 else "updated"
        uid = (live.get("metadata") or {}).get("uid") if isinstance(live, dict) else None
        done.append(replace(change, action=action, uid=uid))
    return ApplyResult(tuple(done))


def _plan(
    resources: list[JSON], namespace: str | None, api_client: Any, *, force: bool
) -> list[_Target]:
    targets = _targets(resources, namespace, api_client)
    _discover(targets, api_client)
    for target in targets:
        try:
            target.live, _ = _request(api_client, "GET", target.path)
        except _HTTPFailure as failure:
            if failure.status != 404:
                raise failure.to_error(target, "read", api_client) from None
    absent = {t.namespace for t in targets if t.live is None}
    for ns in sorted(absent):
        _check_namespace(ns, api_client)
    live_pipelines = {
        (t.namespace, t.name) for t in targets if t.kind == "Pipeline" and t.live is not None
    }
    for target in targets:
        target.change = _decide(target, live_pipelines, force)
    return targets


def _targets(resources: list[JSON], namespace: str | None, api_client: Any) -> list[_Target]:
    fallback = getattr(api_client, "nbflow_namespace", None) or "default"
    targets: list[_Target] = []
    for index, resource in enumerate(resources, 1):
        meta = resource.get("metadata") if isinstance(resource, dict) else None
        api_version = resource.get("apiVersion") if isinstance(resource, dict) else None
        kind = resource.get("kind") if isinstance(resource, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)):
            raise ApplyError(
                f"resource #{index} is not a Kubernetes object (needs apiVersion, kind and "
                "metadata.name)",
                "apply the files `nbflow build` wrote, unchanged",
            )
        assert isinstance(meta, dict) and isinstance(resource, dict)
        group, _, version = api_version.rpartition("/")
        ns = namespace or meta.get("namespace") or fallback
        body = copy.deepcopy(resource)
        body_meta = body["metadata"]
        body_meta["namespace"] = ns
        for key in _SERVER_FIELDS:
            body_meta.pop(key, None)
        body.pop("status", None)
        body_meta["labels"] = {**(body_meta.get("labels") or {}), MANAGED_BY_LABEL: FIELD_MANAGER}
        targets.append(_Target(body, group, version, kind, name, ns))
    # Pipeline before PipelineVersion before the rest, each group in the order given
    return sorted(targets, key=lambda t: _KIND_ORDER.get(t.kind, 2))


def _discover(targets: list[_Target], api_client: Any) -> None:
    """Find each kind's REST name; a missing API means KFP or Katib is not installed."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for target in targets:
        key = (target.group, target.version)
        if key not in seen:
            path = f"/apis/{target.group}/{target.version}" if target.group else "/api/v1"
            try:
                doc, _ = _request(api_client, "GET", path)
            except _HTTPFailure as failure:
                if failure.status != 404:
                    raise failure.to_error(target, "discover", api_client) from None
                doc = {}
            seen[key] = {
                r["kind"]: r["name"]
                for r in (doc or {}).get("resources", [])
                if isinstance(r, dict) and "/" not in r.get("name", "/")
            }
        plural = seen[key].get(target.kind)
        if plural is None:
            server = _server(api_client)
            raise ApplyError(
                f"the cluster at {server} does not serve {target.kind} ({target.api_version})",
                _MISSING_API_HINTS.get(
                    target.group, f"install the operator that defines {target.kind}"
                ),
            )
        target.plural = plural


def _check_namespace(namespace: str, api_client: Any) -> None:
    """Fail early for a namespace that does not exist; users who may not read it pass through."""
    try:
        _request(api_client, "GET", f"/api/v1/namespaces/{namespace}")
    except _HTTPFailure as failure:
        if failure.status == 404:
            raise _namespace_error(namespace, api_client) from None


def _decide(target: _Target, live_pipelines: set[tuple[str, str]], force: bool) -> Change:
    live = target.live

    def change(action: str, reason: str | None = None, detail: str = "") -> Change:
        uid = (live or {}).get("metadata", {}).get("uid")
        return Change(
            target.kind,
            target.name,
            target.namespace,
            action,
            uid,
            target.api_version,
            reason,
            detail,
        )

    if live is None:
        pipeline = (target.body.get("spec") or {}).get("pipelineName")
        if target.kind == "PipelineVersion" and (target.namespace, pipeline) in live_pipelines:
            return change(
                "new-version",
                detail=f"new version of Pipeline `{pipeline}`; older versions are kept",
            )
        return change("create")
    live_meta = live.get("metadata") or {}
    managers = sorted({e.get("manager", "?") for e in live_meta.get("managedFields") or []})
    managed = (live_meta.get("labels") or {}).get(MANAGED_BY_LABEL) == FIELD_MANAGER
    if not managed and not force:
        owners = f" (field managers: {', '.join(managers)})" if managers else ""
        return change(
            "conflict",
            "not-managed",
            f"{target.describe()} exists but nbflow did not create it: it lacks the label "
            f"{MANAGED_BY_LABEL}={FIELD_MANAGER}{owners}",
        )
    # the content hash speaks only for objects nbflow labelled; another's is judged by its spec
    difference = _difference(target, compare_hash=managed)
    if target.immutable and difference:
        return change(
            "conflict",
            "immutable",
            f"{target.describe()} exists with a different {difference}; it never changes in place",
        )
    if managed and not difference:
        return change("unchanged")
    if not managed:  # forced: take it over
        return change("update", detail="taken over from " + (", ".join(managers) or "no manager"))
    spec_owners = _spec_owners(live)
    if spec_owners and not force:
        return change(
            "conflict",
            "other-manager",
            f"{target.describe()} has a spec owned by field manager "
            f"{', '.join(spec_owners)}, not nbflow",
        )
    return change("update", detail=f"{difference} changed")


def _difference(target: _Target, *, compare_hash: bool) -> str | None:
    """What differs between the resource and the live object (None: nothing that matters).

    The live object may hold more than was applied (server defaults, labels added by webhooks),
    so the comparison asks whether the live object contains the desired fields.
    """
    assert target.live is not None
    desired, live = target.body, target.live
    desired_meta, live_meta = desired.get("metadata") or {}, live.get("metadata") or {}
    if target.immutable and compare_hash:
        wanted = desired_meta.get("labels", {}).get(CONTENT_HASH_LABEL)
        found = (live_meta.get("labels") or {}).get(CONTENT_HASH_LABEL)
        if wanted is not None and wanted != found:
            return f"content hash (live {found}, built {wanted})"
    elif not target.immutable:
        for key in ("labels", "annotations"):
            path = _first_difference(desired_meta.get(key) or {}, live_meta.get(key) or {})
            if path is not None:
                return f"metadata.{key}{path}"
    for key, value in desired.items():
        if key in {"apiVersion", "kind", "metadata", "status"}:
            continue
        if key == "spec" and target.immutable and compare_hash and isinstance(value, dict):
            # provenance, not content: the commit that first built this content stays recorded,
            # and the same content built from a later commit applies as a no-op
            value = {k: v for k, v in value.items() if k not in _PROVENANCE}
        path = _first_difference(value, live.get(key, _ABSENT))
        if path is not None:
            return f"{key}{path}"
    return None


_ABSENT = object()
_PROVENANCE = frozenset({"description", "codeSourceURL"})


def _first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The first path where ``live`` does not contain ``desired``; numbers compare by value."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return path or "."
        for key, value in desired.items():
            found = _first_difference(value, live.get(key, _ABSENT), f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return path or "."
        for index, (a, b) in enumerate(zip(desired, live, strict=True)):
            found = _first_difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    # the API server writes 2.0 back as 2; a bool is not a number here
    if isinstance(desired, bool) or isinstance(live, bool):
        same = type(desired) is type(live) and desired == live
    elif isinstance(desired, int | float) and isinstance(live, int | float):
        same = desired == live
    else:
        same = type(desired) is type(live) and desired == live
    return None if same else (path or ".")


def _spec_owners(live: JSON) -> list[str]:
    """Field managers other than nbflow that own fields of the spec."""
    owners = set()
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource") or entry.get("manager") == FIELD_MANAGER:
            continue
        if "f:spec" in (entry.get("fieldsV1") or {}):
            owners.add(str(entry.get("manager")))
    return sorted(owners)


def _apply_body(target: _Target) -> JSON:
    body = copy.deepcopy(target.body)
    body["apiVersion"], body["kind"] = target.api_version, target.kind
    return body


# --- HTTP and errors ---------------------------------------------------------------------------


class _HTTPFailure(Exception):
    """A failed request, before it is worded for the user."""

    def __init__(
        self, status: int | None, reason: str, status_doc: JSON, network: str = ""
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.doc = status_doc
        self.network = network  # "connect" or "lost" for errors without an answer

    @property
    def message(self) -> str:
        return str(self.doc.get("message") or self.reason or "no message").strip()

    def to_error(
        self, target: _Target, verb: str, api_client: Any, done: tuple[Change, ...] = ()
    ) -> ApplyError:
        server = _server(api_client)
        retry = "apply is idempotent: re-run it to finish; what was applied stays unchanged"
        what = target.describe()
        status = self.status
        message = " ".join(self.message.split())
        if self.network == "connect":
            source = getattr(api_client, "nbflow_source", None)
            via = f" (from {source})" if source else ""
            return ApplyError(
                f"cannot reach the Kubernetes API server at {server}{via}: {self.reason}",
                "check that the cluster is up and that the kubeconfig context is the right one "
                "(`kubectl cluster-info`)",
                changes=done,
            )
        if self.network == "lost":
            return ApplyError(
                f"lost the connection to {server} during {verb} of {what}: {self.reason}",
                retry,
                changes=done,
            )
        if status == 0 or status is None:
            return ApplyError(
                f"cannot talk to the Kubernetes API server at {server}: {message}",
                "check the cluster's certificate authority and the server address in the kubeconfig",
                changes=done,
            )
        if status == 401:
            return ApplyError(
                f"the Kubernetes API server at {server} rejected the credentials (401 Unauthorized)",
                "log in again or refresh the kubeconfig's token (`kubectl auth whoami` shows who "
                "you are)",
                changes=done,
                status=status,
            )
        if status == 403:
            name = _match(r'User "([^"]*)"', message)
            user = f'user "{name}"' if name else "the current user"
            denied = _match(r"cannot (\w+) resource", message) or verb
            plural = target.plural or f"{target.kind.lower()}s"  # unknown before discovery
            resource = f"{plural}.{target.group}" if target.group else plural
            verbs = '"get"' if verb in {"read", "discover"} else '"get", "create", "patch"'
            return ApplyError(
                f"forbidden: {user} cannot {denied} {resource} in namespace `{target.namespace}` "
                f"({what})",
                f"grant a Role in namespace {target.namespace} with the rule apiGroups: "
                f'["{target.group}"], resources: ["{plural}"], verbs: [{verbs}], and bind '
                f"it to {user} with a RoleBinding; the server said: {message}",
                changes=done,
                status=status,
            )
        if status == 404:
            details = self.doc.get("details") or {}
            if details.get("kind") == "namespaces" or message.startswith("namespaces "):
                error = _namespace_error(target.namespace, api_client)
                error.changes, error.status = done, status
                return error
            return ApplyError(
                f"the cluster at {server} does not serve {target.kind} ({target.api_version}): "
                f"{message}",
                _MISSING_API_HINTS.get(target.group, f"install the operator for {target.kind}"),
                changes=done,
                status=status,
            )
        if status == 409:
            return ApplyError(
                f"{what} has fields owned by another field manager: {message}",
                "re-run with --force-conflicts to take those fields over",
                changes=done,
                status=status,
            )
        if status in {400, 422} and "admission webhook" in message:
            if "immutable" in message:
                hint = (
                    "a PipelineVersion never changes: rebuild so that the changed input gets a "
                    "new version name"
                )
            elif "pipelineName" in message:
                hint = "apply the version's Pipeline first (the files of `nbflow build` hold both)"
            else:
                hint = "the cluster's admission webhook said why; fix the input and rebuild"
            return ApplyError(
                f"the cluster refused {what}: {message}", hint, changes=done, status=status
            )
        if status in {400, 415, 422}:
            return ApplyError(
                f"the API server refused {what} ({status}): {message}",
                "check the generated resource (`nbflow build`) against the installed CRD version",
                changes=done,
                status=status,
            )
        return ApplyError(
            f"the Kubernetes API server failed ({status} {self.reason}) during {verb} of {what}: "
            f"{message}",
            retry,
            changes=done,
            status=status,
        )


def _namespace_error(namespace: str, api_client: Any) -> ApplyError:
    return ApplyError(
        f"namespace `{namespace}` does not exist on the cluster at {_server(api_client)}",
        f"create it (`kubectl create namespace {namespace}`) or choose another one with "
        "--namespace or `namespace:` in nbflow.yaml; without either, nbflow uses the namespace "
        "of the kubeconfig context",
        status=404,
    )


def _match(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


def _server(api_client: Any) -> str:
    return str(getattr(getattr(api_client, "configuration", None), "host", "") or "(unknown)")


def _request(
    api_client: Any,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: JSON | None = None,
    content_type: str | None = None,
) -> tuple[Any, int]:
    """One API call: (decoded JSON, HTTP status); failures become :class:`_HTTPFailure`."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        data, status, _ = api_client.call_api(
            path,
            method,
            query_params=query or [],
            header_params=headers,
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=False,
            _preload_content=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        doc: JSON = {}
        try:
            parsed = json.loads(exc.body) if exc.body else {}
            doc = parsed if isinstance(parsed, dict) else {}
        except (TypeError, ValueError):
            doc = {"message": str(exc.body)[:200]} if exc.body else {}
        raise _HTTPFailure(exc.status, str(exc.reason or ""), doc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        kind = "connect" if _is_connect_error(exc) else "lost"
        raise _HTTPFailure(None, _network_reason(exc), {}, network=kind) from None
    return data, int(status)


def _is_connect_error(exc: BaseException) -> bool:
    import urllib3

    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return isinstance(
        reason,
        urllib3.exceptions.NewConnectionError
        | urllib3.exceptions.ConnectTimeoutError
        | urllib3.exceptions.NameResolutionError
        | ConnectionRefusedError,
    )


def _network_reason(exc: BaseException) -> str:
    import urllib3

    reason: BaseException | None = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    text = str(reason)
    if isinstance(reason, urllib3.exceptions.ProtocolError) and reason.args:
        text = " ".join(str(a) for a in reason.args)
    # "<urllib3.connection.HTTPConnection object at 0x..>: Failed to ...: [Errno 111] Connection
    # refused" -> "[Errno 111] Connection refused"
    text = re.sub(r"<[^>]*>:?\s*", "", text).strip()
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
        if text.count(")") > text.count("("):
            text = text.rstrip(")")
    return text or type(reason).__name__


__all__ = [
    "FIELD_MANAGER",
    "ApplyError",
    "ApplyResult",
    "Change",
    "apply",
    "load_api_client",
    "plan_apply",
]
