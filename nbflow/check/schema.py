"""The JSON schema of nbflow.yaml, generated from the pydantic model, made readable in editors.

yaml-language-server shows a key's `title` and `description` on hover and an alternative's
`title` in errors: pydantic's titles are the attribute names run together (`Launcherimage`) and
the alternatives of a union have none (hover showed "Cells || Cells || Cells", a bad metric
`Expected "Metric"`). `readable` gives every key its name as title and every alternative a title
and description of its own.
"""

from __future__ import annotations

import re
from typing import Any

from nbflow import __version__

SCHEMA_FILE = "schemas/nbflow.v1.schema.json"
# The one reference to the schema, in the schema's `$id`, `nbflow init`'s drafts and the docs:
# the file in this repository at the release's tag.
SCHEMA_URL = (
    f"https://raw.githubusercontent.com/nbflow/nbflow/v{__version__}/schemas/nbflow.v1.schema.json"
)


def _words(key: str) -> str:
    """`launcherImage` -> `launcher image`; `cpuLimit` -> `cpu limit`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower()


def _kind(alt: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in alt:
        target = defs.get(alt["$ref"].rsplit("/", 1)[-1], {})
        return f"the full form ({', '.join(target.get('properties', {})) or 'an object'})"
    if "enum" in alt:
        return "one of " + ", ".join(f"`{v}`" for v in alt["enum"])
    if "const" in alt:
        return f"`{alt['const']}`"
    kind = alt.get("type")
    if kind == "null":
        return "not set"
    if kind == "integer":
        low = alt.get("minimum", alt.get("exclusiveMinimum"))
        return "a whole number" + (f" from {low}" if low is not None else "")
    if kind == "number":
        return "a number"
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return "text in the form the description gives" if "pattern" in alt else "text"
    if kind == "array":
        return "a list"
    if kind == "object":
        return "a mapping"
    return "another form"


def readable(schema: dict[str, Any]) -> dict[str, Any]:
    """Titles for every key and every alternative of a union, in place; returns `schema`."""
    defs = schema.get("$defs", {})

    def visit(node: Any, title: str | None, description: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item, title, description)
            return
        if not isinstance(node, dict):
            return
        for key, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict):
                prop["title"] = _words(key)
                visit(prop, prop["title"], prop.get("description"))
        for union in ("anyOf", "oneOf"):
            alts = node.get(union)
            if isinstance(alts, list):
                owner = node.get("title") or title or "value"
                for alt in alts:
                    if isinstance(alt, dict) and "title" not in alt:
                        alt["title"] = f"{owner}: {_kind(alt, defs)}"
                        if description and "description" not in alt and "$ref" not in alt:
                            alt["description"] = description
                    visit(alt, owner, description)
        for key, value in node.items():
            if key in ("properties", "anyOf", "oneOf"):
                continue
            if key == "additionalProperties" and isinstance(value, dict):
                # the value of each entry of a mapping: `metrics: {accuracy: <this>}`
                singular = (title or "entry").removesuffix("s")
                if "anyOf" not in value and "$ref" not in value:
                    value.setdefault("title", singular)
                visit(value, singular, description)
            elif key == "items" and isinstance(value, dict):
                visit(value, f"{title or 'list'} item", description)
            elif isinstance(value, dict | list) and key not in ("default", "examples", "enum"):
                visit(value, title, description)

    for name, definition in defs.items():
        props = definition.get("properties")
        if isinstance(props, dict):  # what an editor says it expected: the keys it takes
            definition["title"] = f"{_words(name)} ({', '.join(props)})"
    visit(schema, schema.get("title"), schema.get("description"))
    return schema
