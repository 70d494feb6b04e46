"""The manifest as written (a `YamlDoc`, with positions) to its pydantic model: `apiVersion`
first, then the model, with every schema error located; when the only errors are unknown keys,
the rest is checked as if they were not there, so one pass reports the typo and what is behind
it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbflow import codes
from nbflow.check.manifest import API_VERSION, Manifest
from nbflow.diagnostics import Diagnostic, Location, error
from nbflow.load.yaml_positions import YamlDoc


def manifest_model(doc: YamlDoc) -> tuple[list[Diagnostic], Manifest | None]:
    from pydantic import ValidationError

    from nbflow.check.schema_errors import diagnostics_from

    data = doc.data
    if not isinstance(data, dict):
        return [
            error(
                codes.MANIFEST_NOT_A_MAPPING,
                "the manifest must be a mapping of keys (apiVersion, name, notebook, steps, ...)",
                Location(doc.path, 1, 1),
            )
        ], None
    api = data.get("apiVersion")
    if api != API_VERSION:
        where = doc.locate(("apiVersion",)) if "apiVersion" in data else Location(doc.path, 1, 1)
        message = f"unsupported apiVersion `{api}`" if api is not None else "missing `apiVersion`"
        return [
            error(
                codes.API_VERSION,
                message,
                where,
                hint=f"this nbflow reads `apiVersion: {API_VERSION}`",
            )
        ], None
    try:
        return [], Manifest.model_validate(data)
    except ValidationError as exc:
        diags = diagnostics_from(exc, doc, Manifest)
        unknown = [tuple(e["loc"]) for e in exc.errors() if e["type"] == "extra_forbidden"]
        if len(unknown) < exc.error_count():
            return diags, None
    # Only unknown keys: check the rest as if they were not there, so that one pass reports
    # the typo and every semantic problem behind it.
    try:
        return diags, Manifest.model_validate(_without(data, unknown))
    except ValidationError:
        return diags, None


def _without(data: dict[str, Any], paths: Sequence[tuple[int | str, ...]]) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(data)
    for path in paths:
        node: Any = data
        for p in path[:-1]:
            node = node[p]
        node.pop(path[-1], None)
    return data
