"""Server-side apply: read the cluster (API discovery, the live objects, the namespaces), decide
each resource's change, then `diff_resources` returns the changes and `apply` writes them with
`application/apply-patch+yaml` as field manager `nbflow`, in order, nothing when one conflicts."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from nbflow.deploy.kubernetes.changes import (
    FIELD_MANAGER,
    JSON,
    MANAGED_BY_LABEL,
    ApplyError,
    ApplyResult,
    Change,
)
from nbflow.deploy.kubernetes.decide import decide
from nbflow.deploy.kubernetes.http import (
    MISSING_API_HINTS,
    HTTPFailure,
    namespace_error,
    request,
    server_url,
)
from nbflow.deploy.kubernetes.target import Target

_KIND_ORDER = {"Pipeline": 0, "PipelineVersion": 1}
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


def diff_resources(
    resources: list[JSON], *, namespace: str | None, api_client: Any
) -> list[Change]:
    """What :func:`apply` would do, reading the cluster only.

    Actions: ``create``, ``new-version`` (a PipelineVersion of a Pipeline that exists),
    ``update`` (a Pipeline whose labels or spec changed), ``unchanged``, ``conflict``.
    """
    targets = _read_and_decide(resources, namespace, api_client, force=False)
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
    targets = _read_and_decide(resources, namespace, api_client, force=force_conflicts)
    decided = [t.change for t in targets if t.change is not None]
    if dry_run:
        preview = {
            "create": "would-create",
            "new-version": "would-create",
            "update": "would-update",
        }
        return ApplyResult(
            tuple(replace(c, action=preview.get(c.action, c.action)) for c in decided),
            dry_run=True,
        )
    conflicts = [c for c in decided if c.action == "conflict"]
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
            f"refusing to apply: {conflicts[0].detail}{more}", hint, changes=tuple(decided)
        )
    done: list[Change] = []
    for target in targets:
        change = target.change
        assert change is not None
        if change.action == "unchanged":
            done.append(change)
            continue
        try:
            live, status = request(
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
        except HTTPFailure as failure:
            raise failure.to_error(target, "apply", api_client, tuple(done)) from None
        action = "created" if status == 201 else "updated"
        uid = (live.get("metadata") or {}).get("uid") if isinstance(live, dict) else None
        done.append(replace(change, action=action, uid=uid))
    return ApplyResult(tuple(done))


def _read_and_decide(
    resources: list[JSON], namespace: str | None, api_client: Any, *, force: bool
) -> list[Target]:
    targets = _targets(resources, namespace, api_client)
    _discover(targets, api_client)
    for target in targets:
        try:
            target.live, _ = request(api_client, "GET", target.path)
        except HTTPFailure as failure:
            if failure.status != 404:
                raise failure.to_error(target, "read", api_client) from None
    absent = {t.namespace for t in targets if t.live is None}
    for ns in sorted(absent):
        _check_namespace(ns, api_client)
    live_pipelines = {
        (t.namespace, t.name) for t in targets if t.kind == "Pipeline" and t.live is not None
    }
    for target in targets:
        target.change = decide(target, live_pipelines, force)
    return targets


def _targets(resources: list[JSON], namespace: str | None, api_client: Any) -> list[Target]:
    fallback = getattr(api_client, "nbflow_namespace", None) or "default"
    targets: list[Target] = []
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
        targets.append(Target(body, group, version, kind, name, ns))
    # Pipeline before PipelineVersion before the rest, each group in the order given
    return sorted(targets, key=lambda t: _KIND_ORDER.get(t.kind, 2))


def _discover(targets: list[Target], api_client: Any) -> None:
    """Find each kind's REST name; a missing API means KFP or Katib is not installed."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for target in targets:
        key = (target.group, target.version)
        if key not in seen:
            path = f"/apis/{target.group}/{target.version}" if target.group else "/api/v1"
            try:
                doc, _ = request(api_client, "GET", path)
            except HTTPFailure as failure:
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
            server = server_url(api_client)
            raise ApplyError(
                f"the cluster at {server} does not serve {target.kind} ({target.api_version})",
                MISSING_API_HINTS.get(
                    target.group, f"install the operator that defines {target.kind}"
                ),
            )
        target.plural = plural


def _check_namespace(namespace: str, api_client: Any) -> None:
    """Fail early for a namespace that does not exist; users who may not read it pass through."""
    try:
        request(api_client, "GET", f"/api/v1/namespaces/{namespace}")
    except HTTPFailure as failure:
        if failure.status == 404:
            raise namespace_error(namespace, api_client) from None


def _apply_body(target: Target) -> JSON:
    body = copy.deepcopy(target.body)
    body["apiVersion"], body["kind"] = target.api_version, target.kind
    return body
