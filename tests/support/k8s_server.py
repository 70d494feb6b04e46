"""A small Kubernetes API server on loopback, for testing ``nbflow.deploy.kubernetes`` with the real client.

It speaks enough of the API for Kubeflow Pipelines' ``Pipeline``/``PipelineVersion``
(``pipelines.kubeflow.org/v2beta1``) and Katib's ``Experiment`` (``kubeflow.org/v1beta1``):

- discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``), so
  that ``kubernetes.dynamic.DynamicClient`` works against it;
- GET, LIST (with label selectors), POST, PUT, PATCH (server-side apply with managedFields,
  conflicts and ``force``; JSON merge patch) and DELETE of namespaced custom resources, with
  uid, resourceVersion, generation and creationTimestamp; ``dryRun=All``;
- namespaces that exist only when configured: a create elsewhere is ``404 namespaces "x" not
  found``, as the NamespaceLifecycle admission plugin answers;
- bearer-token authentication (401) and a configurable authorizer (403 with the real message);
- admission hooks; by default those of KFP's PipelineVersion webhook (an orphan version is
  refused, its spec is immutable, labels and owner reference are added) and a Katib-like rule
  (only trial counts of an Experiment change);
- fault injection (the Nth matching request gets a 5xx, or its connection is dropped) and a
  request log.

Standard library plus PyYAML. It is a test double: no watch, no field selectors, no OpenAPI
validation beyond pruning unknown ``spec`` fields of the KFP kinds, no garbage collection.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

JSON = dict[str, Any]
FieldPath = tuple[str, ...]

DEFAULT_TOKEN = "nbflow-test-token"
DEFAULT_USER = "tester"
KFP_WEBHOOK = "pipelineversions.pipelines.kubeflow.org"
KATIB_WEBHOOK = "validator.experiment.katib.kubeflow.org"
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# ObjectMeta fields a client may set; the rest is pruned or owned by the server
_USER_META = ("labels", "annotations", "ownerReferences", "finalizers")


@dataclass(frozen=True)
class ResourceType:
    """A namespaced custom resource the server knows about."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    # fields of ``spec`` kept by the CRD's structural schema; None: preserve unknown fields
    spec_fields: frozenset[str] | None = None
    status_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}"


PIPELINE = ResourceType(
    "pipelines.kubeflow.org",
    "v2beta1",
    "Pipeline",
    "pipelines",
    "pipeline",
    frozenset({"description", "displayName", "tags"}),
)
PIPELINE_VERSION = ResourceType(
    "pipelines.kubeflow.org",
    "v2beta1",
    "PipelineVersion",
    "pipelineversions",
    "pipelineversion",
    frozenset(
        {
            "codeSourceURL",
            "description",
            "displayName",
            "pipelineName",
            "pipelineSpec",
            "pipelineSpecURI",
            "platformSpec",
            "tags",
            "versionName",
        }
    ),
    status_subresource=True,
)
EXPERIMENT = ResourceType(
    "kubeflow.org", "v1beta1", "Experiment", "experiments", "experiment", None, True
)
KFP_TYPES = (PIPELINE, PIPELINE_VERSION)
KATIB_TYPES = (EXPERIMENT,)


@dataclass(frozen=True)
class Attributes:
    """What the authorizer decides on, as in Kubernetes' authorizer.Attributes."""

    user: str
    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None


Authorizer = Callable[[Attributes], bool]


@dataclass(frozen=True)
class Request:
    """One request as the server saw it, with the status it answered (0: connection dropped)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    user_agent: str | None
    verb: str | None  # Kubernetes verb (get, list, create, patch, ...); None for discovery
    resource: str | None  # plural, e.g. "pipelineversions"
    namespace: str | None
    name: str | None
    body: Any
    status: int

    @property
    def is_write(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Fault:
    """Fail the ``nth`` request matching the filters: answer ``status`` or drop the connection."""

    method: str | None = None
    verb: str | None = None
    resource: str | None = None
    name: str | None = None
    nth: int = 1
    status: int = 500
    drop: bool = False
    seen: int = 0
    fired: bool = False

    def matches(
        self, method: str, verb: str | None, resource: str | None, name: str | None
    ) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.name is None or self.name == name)
        )


class Denied(Exception):
    """Raised by an admission hook to refuse a request."""

    def __init__(self, webhook: str, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.webhook = webhook
        self.message = message
        self.code = code


@dataclass
class AdmissionRequest:
    """What an admission hook sees; mutating hooks edit ``obj`` in place."""

    operation: str  # "CREATE" or "UPDATE"
    rtype: ResourceType
    namespace: str
    name: str
    obj: JSON
    old: JSON | None
    user: str
    server: K8sServer


AdmissionHook = Callable[[AdmissionRequest], None]


class ApiError(Exception):
    """An error answer: a ``Status`` object (or, for unknown paths, plain text)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        plain: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.plain = plain

    def status(self) -> JSON:
        status: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def _not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{rtype.group_resource} "{name}" not found',
        {"name": name, "group": rtype.group, "kind": rtype.plural},
    )


def _namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'namespaces "{namespace}" not found',
        {"name": namespace, "kind": "namespaces"},
    )


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- field sets (server-side apply bookkeeping) ------------------------------------------------


def _leaves(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Leaf paths of an object; lists are atomic, as for untyped CRD fields."""
    if isinstance(obj, dict) and obj:
        out: dict[FieldPath, Any] = {}
        for key, value in obj.items():
            out.update(_leaves(value, (*prefix, key)))
        return out
    return {prefix: obj}


def _owned_leaves(obj: JSON, rtype: ResourceType) -> dict[FieldPath, Any]:
    """The fields a manager can own: user metadata and everything but apiVersion/kind/status."""
    meta = obj.get("metadata") or {}
    ownable: JSON = {k: v for k, v in obj.items() if k not in {"apiVersion", "kind", "metadata"}}
    if rtype.status_subresource:
        ownable.pop("status", None)
    user_meta = {k: meta[k] for k in _USER_META if k in meta}
    if user_meta:
        ownable["metadata"] = user_meta
    return _leaves(ownable) if ownable else {}


def _fields_v1(paths: Iterable[FieldPath]) -> JSON:
    root: JSON = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return root


def _paths_of(fields: JSON, prefix: FieldPath = ()) -> set[FieldPath]:
    paths: set[FieldPath] = set()
    children = {k: v for k, v in fields.items() if k.startswith("f:")}
    if not children:
        return {prefix} if prefix else set()
    for key, sub in children.items():
        paths |= _paths_of(sub, (*prefix, key[2:]))
    return paths


def _delete_path(obj: JSON, path: FieldPath) -> None:
    parents: list[tuple[JSON, str]] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    # drop maps the removal left empty, as SSA does
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]


def _deep_merge(base: JSON, patch: JSON) -> JSON:
    """Apply-style merge: maps merge key by key, lists and scalars replace."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _to_wire(obj: Any) -> Any:
    """Numbers as the Go API server writes them back: an integral float loses its ``.0``."""
    if isinstance(obj, dict):
        return {k: _to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_wire(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2**63:
        return int(obj)
    return obj


def _spec_part(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in {"metadata", "status"}}


def _select(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


# --- default admission hooks -------------------------------------------------------------------


def kfp_pipelineversion_mutating(req: AdmissionRequest) -> None:
    """KFP's defaulting webhook: label the version with its Pipeline and make it the owner."""
    if req.rtype != PIPELINE_VERSION:
        return
    pipeline_name = (req.obj.get("spec") or {}).get("pipelineName", "")
    pipeline = req.server.get(PIPELINE, req.namespace, pipeline_name)
    if pipeline is None:
        raise Denied(
            KFP_WEBHOOK, "The spec.pipelineName doesn't map to an existing Pipeline object"
        )
    meta = req.obj.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    labels["pipelines.kubeflow.org/pipeline-id"] = pipeline["metadata"]["uid"]
    labels["pipelines.kubeflow.org/pipeline"] = pipeline_name
    owner = {
        "apiVersion": PIPELINE.api_version,
        "kind": "Pipeline",
        "name": pipeline_name,
        "uid": pipeline["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    refs = [r for r in meta.get("ownerReferences", []) if r.get("kind") != "Pipeline"]
    meta["ownerReferences"] = [*refs, owner]


def kfp_pipelineversion_validating(req: AdmissionRequest) -> None:
    """KFP's validating webhook: an orphan is refused; the spec never changes after creation."""
    if req.rtype != PIPELINE_VERSION:
        return
    if req.operation == "CREATE":
        pipeline_name = (req.obj.get("spec") or {}).get("pipelineName", "")
        if req.server.get(PIPELINE, req.namespace, pipeline_name) is None:
            raise Denied(
                KFP_WEBHOOK, "The spec.pipelineName doesn't map to an existing Pipeline object"
            )
        spec = (req.obj.get("spec") or {}).get("pipelineSpec")
        if not isinstance(spec, dict) or not (spec.get("pipelineInfo") or {}).get("name"):
            raise Denied(KFP_WEBHOOK, "The pipeline spec is invalid: missing pipelineInfo.name")
    elif req.old is not None and (
        req.old["metadata"].get("generation") != req.obj["metadata"].get("generation")
    ):
        raise Denied(
            KFP_WEBHOOK,
            "Pipeline spec is immutable; only metadata changes (labels/annotations) are allowed",
        )


def katib_experiment_validating(req: AdmissionRequest) -> None:
    """Katib's rule: after creation only the three trial counts of an Experiment change."""
    if req.rtype != EXPERIMENT or req.operation != "UPDATE" or req.old is None:
        return
    editable = {"maxTrialCount", "parallelTrialCount", "maxFailedTrialCount"}
    old = {k: v for k, v in (req.old.get("spec") or {}).items() if k not in editable}
    new = {k: v for k, v in (req.obj.get("spec") or {}).items() if k not in editable}
    if old != new:
        raise Denied(
            KATIB_WEBHOOK,
            "Only spec.parallelTrialCount, spec.maxTrialCount and spec.maxFailedTrialCount "
            "are editable.",
        )


# --- the server --------------------------------------------------------------------------------


class K8sServer:
    """An in-memory Kubernetes API server on 127.0.0.1; use it as a context manager::

    with K8sServer(namespaces=["team-a"]) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", namespace="team-a")
        server.forbid("create", "pipelineversions")        # 403, as RBAC would
        server.inject_fault(method="PATCH", drop=True)      # the next PATCH loses its answer
        ...                                                 # run the client
        assert server.writes() == []                        # the request log
    """

    def __init__(
        self,
        *,
        namespaces: Iterable[str] = ("default",),
        types: Iterable[ResourceType] = KFP_TYPES + KATIB_TYPES,
        tokens: dict[str, str] | None = None,
        webhooks: bool = True,
    ) -> None:
        self.namespaces: set[str] = set(namespaces)
        self.types: tuple[ResourceType, ...] = tuple(types)
        self.tokens: dict[str, str] = dict(tokens or {DEFAULT_TOKEN: DEFAULT_USER})
        self.mutating: list[AdmissionHook] = [kfp_pipelineversion_mutating] if webhooks else []
        self.validating: list[AdmissionHook] = (
            [kfp_pipelineversion_validating, katib_experiment_validating] if webhooks else []
        )
        self.authorizer: Authorizer | None = None
        self.denied: list[tuple[str | None, str | None, str | None]] = []
        self.faults: list[Fault] = []
        self._store: dict[tuple[str, str, str], JSON] = {}
        self._log: list[Request] = []
        self._lock = threading.RLock()
        self._rv = itertools.count(1000)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def __enter__(self) -> K8sServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.emulator = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="k8s-emulator"
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def write_kubeconfig(
        self,
        path: Path,
        *,
        namespace: str | None = None,
        token: str = DEFAULT_TOKEN,
        context: str = "emulator",
    ) -> Path:
        """Write a kubeconfig whose current context points at this server."""
        ctx: JSON = {"cluster": "emulator", "user": "emulator"}
        if namespace is not None:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    # configuration

    def forbid(
        self, verb: str | None = None, resource: str | None = None, namespace: str | None = None
    ) -> None:
        """Deny a verb on a resource (plural) in a namespace; None matches anything."""
        self.denied.append((verb, resource, namespace))

    def inject_fault(
        self,
        *,
        method: str | None = None,
        verb: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        nth: int = 1,
        status: int = 500,
        drop: bool = False,
    ) -> Fault:
        """Fail, once, the ``nth`` request from now on that matches the filters."""
        fault = Fault(method, verb, resource, name, nth, status, drop)
        with self._lock:
            self.faults.append(fault)
        return fault

    # inspection and seeding (no HTTP, not logged)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.is_write]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JSON | None:
        with self._lock:
            obj = self._store.get((rtype.plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, rtype: ResourceType, namespace: str | None = None) -> list[JSON]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in sorted(self._store.items())
                if plural == rtype.plural and namespace in (None, ns)
            ]

    def put(self, obj: JSON, *, manager: str = "kubectl-client-side-apply") -> JSON:
        """Store an object as another tool would have created it (an ``Update`` by ``manager``)."""
        rtype = self._type_of_kind(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        with self._lock:
            stored = self._new_object(rtype, namespace, meta["name"], copy.deepcopy(obj))
            fields = _fields_v1(_owned_leaves(stored, rtype))
            stored["metadata"]["managedFields"] = [self._entry(manager, "Update", rtype, fields)]
            self._store[(rtype.plural, namespace, meta["name"])] = stored
            return copy.deepcopy(stored)

    # internals

    def _type_of_kind(self, api_version: str, kind: str) -> ResourceType:
        for rtype in self.types:
            if rtype.api_version == api_version and rtype.kind == kind:
                return rtype
        raise KeyError(f"{api_version} {kind}")

    def _entry(self, manager: str, operation: str, rtype: ResourceType, fields: JSON) -> JSON:
        return {
            "manager": manager,
            "operation": operation,
            "apiVersion": rtype.api_version,
            "time": _now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }

    def _new_object(self, rtype: ResourceType, namespace: str, name: str, body: JSON) -> JSON:
        body = self._prune(rtype, body)
        meta = body.get("metadata") or {}
        new_meta: JSON = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(next(self._rv)),
            "generation": 1,
            "creationTimestamp": _now(),
        }
        new_meta.update({k: copy.deepcopy(meta[k]) for k in _USER_META if k in meta})
        obj: JSON = {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": new_meta}
        obj.update({k: v for k, v in body.items() if k not in {"apiVersion", "kind", "metadata"}})
        return obj

    def _prune(self, rtype: ResourceType, body: JSON) -> JSON:
        """Drop what a structural schema would: unknown ``spec`` fields of typed kinds."""
        body = copy.deepcopy(body)
        spec = body.get("spec")
        if rtype.spec_fields is not None and isinstance(spec, dict):
            body["spec"] = {k: v for k, v in spec.items() if k in rtype.spec_fields}
        if rtype.status_subresource:
            body.pop("status", None)  # written only through the status subresource
        return body

    def _authorize(
        self, user: str, verb: str, group: str, resource: str, ns: str | None, name: str | None
    ) -> None:
        attrs = Attributes(user, verb, group, resource, ns, name)
        allowed = self.authorizer(attrs) if self.authorizer is not None else True
        for d_verb, d_resource, d_ns in self.denied:
            if d_verb in (None, verb) and d_resource in (None, resource) and d_ns in (None, ns):
                allowed = False
        if allowed:
            return
        subject = f"{resource}.{group}" if group else resource
        target = f'{subject} "{name}"' if name else subject
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        raise ApiError(
            403,
            "Forbidden",
            f'{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}"{where}',
            {"name": name, "group": group, "kind": resource}
            if name
            else {"group": group, "kind": resource},
        )

    def _admit(self, req: AdmissionRequest, bump_generation: Callable[[], None]) -> None:
        try:
            for hook in self.mutating:
                hook(req)
            bump_generation()
            for hook in self.validating:
                hook(req)
        except Denied as denied:
            raise ApiError(
                denied.code,
                "BadRequest" if denied.code == 400 else "Invalid",
                f'admission webhook "{denied.webhook}" denied the request: {denied.message}',
            ) from None

    def _commit(self, rtype: ResourceType, ns: str, name: str, obj: JSON, dry_run: bool) -> None:
        if not dry_run:
            self._store[(rtype.plural, ns, name)] = obj

    def handle(
        self,
        method: str,
        rtype: ResourceType,
        ns: str,
        name: str | None,
        query: dict[str, str],
        content_type: str,
        body: Any,
        user: str,
        user_agent: str,
    ) -> tuple[int, JSON]:
        """Serve one resource request; raises ApiError for an error answer."""
        dry_run = query.get("dryRun") == "All"
        default_manager = (user_agent or "unknown").split("/")[0]
        manager = query.get("fieldManager") or default_manager
        with self._lock:
            if method == "GET" and name is None:
                self._authorize(user, "list", rtype.group, rtype.plural, ns or None, None)
                items = [
                    o
                    for o in self.objects(rtype, ns or None)
                    if _select(o["metadata"].get("labels", {}), query.get("labelSelector", ""))
                ]
                return 200, {
                    "apiVersion": rtype.api_version,
                    "kind": f"{rtype.kind}List",
                    "metadata": {"resourceVersion": str(next(self._rv))},
                    "items": items,
                }
            if method == "POST" and name is None:
                return self._create(rtype, ns, body, manager, user, dry_run)
            if name is None:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
            key = (rtype.plural, ns, name)
            live = self._store.get(key)
            if method == "GET":
                self._authorize(user, "get", rtype.group, rtype.plural, ns, name)
                if live is None:
                    raise _not_found(rtype, name)
                return 200, copy.deepcopy(live)
            if method == "DELETE":
                self._authorize(user, "delete", rtype.group, rtype.plural, ns, name)
                if live is None:
                    raise _not_found(rtype, name)
                if not dry_run:
                    del self._store[key]
                return 200, copy.deepcopy(live)
            if method == "PUT":
                self._authorize(user, "update", rtype.group, rtype.plural, ns, name)
                if live is None:
                    raise _not_found(rtype, name)
                self._check_identity(rtype, ns, name, body)
                rv = (body.get("metadata") or {}).get("resourceVersion")
                if rv and rv != live["metadata"]["resourceVersion"]:
                    raise ApiError(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": '
                        "the object has been modified; please apply your changes to the latest "
                        "version and try again",
                    )
                return self._update(rtype, ns, name, live, body, manager, user, dry_run)
            if method == "PATCH":
                self._authorize(user, "patch", rtype.group, rtype.plural, ns, name)
                if content_type == "application/apply-patch+yaml":
                    if "fieldManager" not in query:
                        raise ApiError(
                            422,
                            "Invalid",
                            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                            "value: is required for apply patch",
                        )
                    force = query.get("force") == "true"
                    return self._apply(rtype, ns, name, live, body, manager, force, user, dry_run)
                if content_type == "application/merge-patch+json":
                    if live is None:
                        raise _not_found(rtype, name)
                    merged = _merge_patch(live, body)
                    return self._update(rtype, ns, name, live, merged, manager, user, dry_run)
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/merge-patch+json, application/apply-patch+yaml "
                    f"(this emulator does not serve {content_type})",
                )
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _check_identity(self, rtype: ResourceType, ns: str, name: str | None, body: Any) -> None:
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be an object")
        if body.get("apiVersion") != rtype.api_version or body.get("kind") != rtype.kind:
            raise _bad_request(
                f"the API version in the data ({body.get('apiVersion')}) and kind "
                f"({body.get('kind')}) do not match the expected {rtype.api_version} {rtype.kind}"
            )
        meta = body.get("metadata") or {}
        if name is not None and meta.get("name") not in (None, name):
            raise _bad_request("the name of the object does not match the name on the URL")
        if meta.get("namespace") not in (None, "", ns):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )

    def _create(
        self, rtype: ResourceType, ns: str, body: Any, manager: str, user: str, dry_run: bool
    ) -> tuple[int, JSON]:
        self._authorize(user, "create", rtype.group, rtype.plural, ns, None)
        self._check_identity(rtype, ns, None, body)
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ApiError(
                422, "Invalid", f"{rtype.kind}.{rtype.group} is invalid: metadata.name: Required"
            )
        if ns not in self.namespaces:
            raise _namespace_not_found(ns)
        if (rtype.plural, ns, name) in self._store:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rtype.group_resource} "{name}" already exists',
                {"name": name, "group": rtype.group, "kind": rtype.plural},
            )
        obj = self._new_object(rtype, ns, name, body)
        fields = _fields_v1(_owned_leaves(obj, rtype))
        obj["metadata"]["managedFields"] = [self._entry(manager, "Update", rtype, fields)]
        self._admit(AdmissionRequest("CREATE", rtype, ns, name, obj, None, user, self), _noop)
        self._commit(rtype, ns, name, obj, dry_run)
        return 201, copy.deepcopy(obj)

    def _update(
        self,
        rtype: ResourceType,
        ns: str,
        name: str,
        live: JSON,
        new: JSON,
        manager: str,
        user: str,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        """A PUT or merge patch: ``manager`` (operation Update) takes the fields it changed."""
        new = self._prune(rtype, new)
        result = copy.deepcopy(live)
        for key in list(result):
            if key not in {"apiVersion", "kind", "metadata", "status"}:
                del result[key]
        result.update({k: v for k, v in new.items() if k not in {"apiVersion", "kind", "metadata"}})
        if rtype.status_subresource:
            result["status"] = copy.deepcopy(live.get("status"))
            if result["status"] is None:
                del result["status"]
        new_meta = new.get("metadata") or {}
        for key in _USER_META:
            if key in new_meta:
                result["metadata"][key] = copy.deepcopy(new_meta[key])
            else:
                result["metadata"].pop(key, None)
        old_leaves = _owned_leaves(live, rtype)
        changed = {
            p for p, v in _owned_leaves(result, rtype).items() if old_leaves.get(p, _MISSING) != v
        }
        entries = self._transfer(live, changed, keep=(manager, "Update"))
        return self._finish_update(rtype, ns, name, live, result, entries, user, dry_run)

    def _apply(
        self,
        rtype: ResourceType,
        ns: str,
        name: str,
        live: JSON | None,
        body: Any,
        manager: str,
        force: bool,
        user: str,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        """Server-side apply: create or update, tracking field ownership per manager."""
        self._check_identity(rtype, ns, name, body)
        applied = self._prune(rtype, body)
        applied_leaves = _owned_leaves(applied, rtype)
        if live is None:
            if ns not in self.namespaces:
                raise _namespace_not_found(ns)
            # an apply that creates needs the create permission as well as patch
            self._authorize(user, "create", rtype.group, rtype.plural, ns, name)
            obj = self._new_object(rtype, ns, name, applied)
            fields = _fields_v1(applied_leaves)
            obj["metadata"]["managedFields"] = [self._entry(manager, "Apply", rtype, fields)]
            self._admit(AdmissionRequest("CREATE", rtype, ns, name, obj, None, user, self), _noop)
            self._commit(rtype, ns, name, obj, dry_run)
            return 201, copy.deepcopy(obj)

        live_leaves = _owned_leaves(live, rtype)
        owners = self._owners(live)
        mine = (manager, "Apply")
        conflicts = sorted(
            path
            for path, value in applied_leaves.items()
            if path in live_leaves
            and live_leaves[path] != value
            and any(owner != mine for owner in owners.get(path, ()))
        )
        if conflicts and not force:
            causes = []
            for path in conflicts:
                for owner in sorted(owners[path]):
                    if owner != mine:
                        causes.append(
                            {
                                "type": "FieldManagerConflict",
                                "message": f'conflict with "{owner[0]}"',
                                "field": "." + ".".join(path),
                            }
                        )
            lines = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(causes)} conflict{'s' if len(causes) > 1 else ''}: "
                f"{lines}",
                {"name": name, "group": rtype.group, "kind": rtype.plural, "causes": causes},
            )
        # fields this manager applied before but no longer does are removed, unless shared
        result = copy.deepcopy(live)
        previously = {p for p, who in owners.items() if mine in who}
        for path in previously - set(applied_leaves):
            if owners[path] == {mine}:
                _delete_path(result, path)
        result = _deep_merge(result, {k: v for k, v in applied.items() if k != "metadata"})
        result["apiVersion"], result["kind"] = rtype.api_version, rtype.kind
        for key in _USER_META:
            value = (applied.get("metadata") or {}).get(key)
            if isinstance(value, dict):
                result["metadata"][key] = {**result["metadata"].get(key, {}), **value}
            elif value is not None:
                result["metadata"][key] = copy.deepcopy(value)
        changed = {p for p, v in applied_leaves.items() if live_leaves.get(p, _MISSING) != v}
        entries = self._transfer(live, changed, keep=mine, owned=set(applied_leaves))
        return self._finish_update(rtype, ns, name, live, result, entries, user, dry_run)

    def _owners(self, obj: JSON) -> dict[FieldPath, set[tuple[str, str]]]:
        owners: dict[FieldPath, set[tuple[str, str]]] = {}
        for entry in obj["metadata"].get("managedFields", []):
            if entry.get("subresource"):
                continue
            who = (entry["manager"], entry["operation"])
            for path in _paths_of(entry.get("fieldsV1", {})):
                owners.setdefault(path, set()).add(who)
        return owners

    def _transfer(
        self,
        live: JSON,
        changed: set[FieldPath],
        *,
        keep: tuple[str, str],
        owned: set[FieldPath] | None = None,
    ) -> list[JSON]:
        """New managedFields: ``keep`` owns ``owned`` (or its old set plus ``changed``);
        the fields that changed value leave every other manager."""
        entries: list[JSON] = []
        kept_paths: set[FieldPath] = set()
        for entry in live["metadata"].get("managedFields", []):
            paths = _paths_of(entry.get("fieldsV1", {}))
            if (entry["manager"], entry["operation"]) == keep and not entry.get("subresource"):
                kept_paths = paths
                continue
            paths -= changed
            if paths:
                entries.append({**entry, "fieldsV1": _fields_v1(paths)})
        mine = owned if owned is not None else kept_paths | changed
        if mine:
            entries.append(
                {
                    "manager": keep[0],
                    "operation": keep[1],
                    "apiVersion": live["apiVersion"],
                    "time": _now(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_v1(mine),
                }
            )
        return entries

    def _finish_update(
        self,
        rtype: ResourceType,
        ns: str,
        name: str,
        live: JSON,
        result: JSON,
        entries: list[JSON],
        user: str,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        def bump() -> None:
            if _spec_part(result) != _spec_part(live):
                result["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1

        req = AdmissionRequest("UPDATE", rtype, ns, name, result, copy.deepcopy(live), user, self)
        self._admit(req, bump)
        owned_before = _strip_times(live["metadata"].get("managedFields", []))
        if result == live and _strip_times(entries) == owned_before:
            return 200, copy.deepcopy(live)  # a no-op write keeps the resourceVersion
        result["metadata"]["managedFields"] = entries
        result["metadata"]["resourceVersion"] = str(next(self._rv))
        self._commit(rtype, ns, name, result, dry_run)
        return 200, copy.deepcopy(result)

    def _discovery(self, path: str) -> JSON:
        groups: dict[str, list[str]] = {}
        for rtype in self.types:
            versions = groups.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)

        def group_doc(group: str) -> JSON:
            versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in groups[group]]
            return {"name": group, "versions": versions, "preferredVersion": versions[0]}

        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return {
                "major": "1",
                "minor": "30",
                "gitVersion": "v1.30.0-nbflow-emulator",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            host = self.url.removeprefix("http://")
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        if parts == ["api", "v1"]:
            return {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "namespaces",
                        "singularName": "namespace",
                        "namespaced": False,
                        "kind": "Namespace",
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                        "shortNames": ["ns"],
                    }
                ],
            }
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [group_doc(g) for g in groups],
            }
        if len(parts) == 2 and parts[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1])}
        if len(parts) == 3 and parts[1] in groups and parts[2] in groups[parts[1]]:
            resources: list[JSON] = []
            for rtype in self.types:
                if (rtype.group, rtype.version) != (parts[1], parts[2]):
                    continue
                resources.append(
                    {
                        "name": rtype.plural,
                        "singularName": rtype.singular,
                        "namespaced": True,
                        "kind": rtype.kind,
                        "verbs": _VERBS,
                    }
                )
                if rtype.status_subresource:
                    resources.append(
                        {
                            "name": f"{rtype.plural}/status",
                            "singularName": "",
                            "namespaced": True,
                            "kind": rtype.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{parts[1]}/{parts[2]}",
                "resources": resources,
            }
        raise ApiError(404, "NotFound", "404 page not found", plain=True)

    def _namespace_request(self, method: str, name: str | None, user: str) -> tuple[int, JSON]:
        verb = "get" if name else "list"
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "only GET of namespaces is emulated")
        self._authorize(user, verb, "", "namespaces", None, name)

        def doc(ns: str) -> JSON:
            return {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns},
                "status": {"phase": "Active"},
            }

        if name is None:
            items = [doc(ns) for ns in sorted(self.namespaces)]
            return 200, {"apiVersion": "v1", "kind": "NamespaceList", "items": items}
        if name not in self.namespaces:
            raise _namespace_not_found(name)
        return 200, doc(name)

    def _route(self, path: str) -> tuple[ResourceType | None, str | None, str | None, bool]:
        """(type, namespace, name, is a namespace request) of a resource path."""
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            return None, None, parts[3] if len(parts) == 4 else None, True
        if len(parts) < 4 or parts[0] != "apis":
            return None, None, None, False
        group, version = parts[1], parts[2]
        rest = parts[3:]
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if len(rest) > 2:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        known_gv = any((t.group, t.version) == (group, version) for t in self.types)
        if not known_gv:
            raise ApiError(404, "NotFound", "404 page not found", plain=True)
        for rtype in self.types:
            if (rtype.group, rtype.version, rtype.plural) == (group, version, rest[0]):
                return rtype, ns, rest[1] if len(rest) == 2 else None, False
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def serve(self, handler: _Handler) -> None:
        """Serve one HTTP request (called on the handler's thread).

        The request is logged before it is answered, so that a client that has its answer
        always finds its request in the log.
        """
        split = urlsplit(handler.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        method = handler.command
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        rtype: ResourceType | None = None
        ns = name = None
        is_ns = False
        early_error: ApiError | None = None  # answered after the fault check
        try:
            rtype, ns, name, is_ns = self._route(path)
        except ApiError as err:
            early_error = err
        body: Any = None
        if raw:
            try:
                if content_type == "application/apply-patch+yaml":
                    body = yaml.load(raw.decode("utf-8"), Loader=_YAML_LOADER)
                else:
                    body = json.loads(raw)
            except (ValueError, yaml.YAMLError) as exc:
                early_error = early_error or _bad_request(f"error decoding the request body: {exc}")
        resource = rtype.plural if rtype else ("namespaces" if is_ns else None)
        verb = _verb(method, name) if rtype is not None or is_ns else None
        status, plain = 0, False
        doc: JSON = {}
        try:
            if self._fault(method, verb, resource, name, path):
                handler.close_connection = True  # dropped: no answer at all
            else:
                if early_error is not None:
                    raise early_error
                status, doc = self._answer(
                    handler, path, method, rtype, ns, name, is_ns, query, content_type, body
                )
        except ApiError as err:
            status, doc, plain = err.code, err.status(), err.plain
        record = Request(
            method,
            path,
            query,
            content_type or None,
            handler.headers.get("User-Agent"),
            verb,
            resource,
            ns or None,
            name,
            body,
            status,
        )
        with self._lock:
            self._log.append(record)
        if status == 0:
            return
        if plain:
            handler.send_text(status, str(doc["message"]) + "\n")
        else:
            handler.send_json(status, doc)

    def _fault(
        self, method: str, verb: str | None, resource: str | None, name: str | None, path: str
    ) -> bool:
        """True to drop the connection; raises the injected error answer."""
        with self._lock:
            for fault in self.faults:
                if fault.fired or not fault.matches(method, verb, resource, name):
                    continue
                fault.seen += 1
                if fault.seen != fault.nth:
                    continue
                fault.fired = True
                if fault.drop:
                    return True
                raise ApiError(
                    fault.status,
                    "InternalError" if fault.status == 500 else "ServiceUnavailable",
                    f"Internal error occurred: injected fault on {method} {path}",
                )
        return False

    def _answer(
        self,
        handler: _Handler,
        path: str,
        method: str,
        rtype: ResourceType | None,
        ns: str | None,
        name: str | None,
        is_ns: bool,
        query: dict[str, str],
        content_type: str,
        body: Any,
    ) -> tuple[int, JSON]:
        user = "system:anonymous"
        if path not in {"/version", "/healthz"}:
            user = self._authenticate(handler.headers.get("Authorization"))
        if rtype is None and not is_ns:
            return 200, self._discovery(path)
        if is_ns:
            with self._lock:
                return self._namespace_request(method, name, user)
        assert rtype is not None and ns is not None
        return self.handle(
            method,
            rtype,
            ns,
            name,
            query,
            content_type,
            body,
            user,
            handler.headers.get("User-Agent") or "",
        )

    def _authenticate(self, header: str | None) -> str:
        if header and header.startswith("Bearer ") and header[7:] in self.tokens:
            return self.tokens[header[7:]]
        raise ApiError(401, "Unauthorized", "Unauthorized")


class _Missing:
    pass


_MISSING = _Missing()


def _noop() -> None:
    return None


def _strip_times(entries: list[JSON]) -> list[JSON]:
    return [{k: v for k, v in e.items() if k != "time"} for e in entries]


def _verb(method: str, name: str | None) -> str:
    if method == "GET":
        return "get" if name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    emulator: K8sServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each small answer waits for a delayed ACK
    server: _HTTPServer
    timeout = 10  # an idle keep-alive connection ends instead of holding a thread

    def _serve(self) -> None:
        self.server.emulator.serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def send_json(self, status: int, doc: JSON) -> None:
        data = json.dumps(_to_wire(doc)).encode("utf-8")
        self._send(status, "application/json", data)

    def send_text(self, status: int, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is the record; stderr stays quiet


def iter_documents(text: str) -> Iterator[JSON]:
    """The YAML documents of a multi-document string (for compiled kfp manifests)."""
    for doc in yaml.load_all(text, Loader=_YAML_LOADER):
        if doc:
            yield doc


__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "EXPERIMENT",
    "KATIB_TYPES",
    "KFP_TYPES",
    "PIPELINE",
    "PIPELINE_VERSION",
    "AdmissionRequest",
    "Attributes",
    "Denied",
    "Fault",
    "K8sServer",
    "Request",
    "ResourceType",
    "iter_documents",
]
