"""What to do with one resource, given the live object: create, new-version, update, unchanged
or conflict (the rules of `nbflow.deploy.kubernetes`). Pure: no request is made here."""

from __future__ import annotations

from typing import Any

from nbflow.deploy.kubernetes.changes import (
    CONTENT_HASH_LABEL,
    FIELD_MANAGER,
    JSON,
    MANAGED_BY_LABEL,
    Change,
)
from nbflow.deploy.kubernetes.target import Target


def decide(target: Target, live_pipelines: set[tuple[str, str]], force: bool) -> Change:
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


def _difference(target: Target, *, compare_hash: bool) -> str | None:
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
        found = live.get(key, _ABSENT)
        if key == "spec" and target.immutable and compare_hash and isinstance(value, dict):
            # provenance, not content: the commit that first built this content stays recorded,
            # and the same content built from a later commit applies as a no-op
            value = {k: v for k, v in value.items() if k not in _PROVENANCE}
            # nor is what the version leaves out: the same content compiled by another kfp
            # release (its banner, the kfp its executor installs) is the same version
            from nbflow.generate.build import without_sdk

            value, found = without_sdk(value), without_sdk(found)
        path = _first_difference(value, found)
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
