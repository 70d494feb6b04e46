"""Hypothesis strategies and settings for the property and fuzz tests.

Settings come from `fuzz_settings(n)`: n examples in the suite (a few seconds), a quarter as many
in the fast loop (`-m "not slow"`: tests/conftest.py names the profile `fast` there), 50 times as
many with `HYPOTHESIS_PROFILE=long` (the longer run the README's development section describes).

Manifests are drawn from the JSON schema of nbflow.yaml (schemas/nbflow.v1.schema.json):
`from_schema` turns a schema node into a strategy, and `schema_mutations` replaces or adds one
key of a valid manifest with a value drawn from the schema at that key, so that most examples
are one change away from valid and reach validation's later stages and the build.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "nbflow.v1.schema.json"
PROFILES = {"fast": 0.25, "default": 1, "long": 50}


def fuzz_settings(examples: int, *also_suppress: HealthCheck) -> settings:
    factor = PROFILES.get(os.environ.get("HYPOTHESIS_PROFILE", "default"), 1)
    return settings(
        max_examples=max(1, round(examples * factor)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            *also_suppress,
        ],
    )


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


# Strings that broke nbflow once, or sit on a boundary: names that collide in generated code,
# a trailing newline, NUL, quotes and placeholders, numbers as text, paths.
AWKWARD = [
    "",
    "x",
    "step-x",
    "k8s",
    "pvc-x",
    "load\n",
    "a b",
    "\x00",
    "'\"",
    "{{$}}",
    "${trialSpec.x}",
    "1e400",
    "9" * 30,
    "-1",
    "4-5",
    "id:cell-4",
    "/data",
    "/data/../x",
    "nb.ipynb",
    "ü",
    "a" * 70,
    "nvidia.com/gpu",
    "500m",
    "99999999999999999999d",
]
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 5e-324]),
)
TEXT = st.one_of(st.sampled_from(AWKWARD), st.text(max_size=12))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for a schema node: mostly of its type, now and then anything (a wrong type is
    an input too)."""
    node = _resolve(node)
    if "anyOf" in node:
        return st.one_of([from_schema(n, depth) for n in node["anyOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"]) | TEXT
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        bounded = st.integers(low, high) if low is not None or high is not None else st.nothing()
        return bounded | st.integers(-3, 12) | NUMBERS.filter(lambda v: isinstance(v, int))
    if kind == "number":
        return NUMBERS
    if kind == "string":
        return TEXT
    if depth > 3:
        return st.none()
    if kind == "array":
        return st.lists(from_schema(node.get("items", {}), depth + 1), max_size=3)
    if kind == "object":
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        keys = st.sampled_from(sorted(props)) if props else TEXT
        if isinstance(extra, dict):
            return st.dictionaries(TEXT, from_schema(extra, depth + 1), max_size=3)
        if not props:
            return st.dictionaries(TEXT, st.none() | TEXT | NUMBERS, max_size=2)
        return st.dictionaries(keys, st.none() | TEXT | NUMBERS, max_size=2).flatmap(
            lambda d: st.fixed_dictionaries(
                {k: from_schema(props[k], depth + 1) for k in d if k in props}
            )
        )
    return st.none() | st.booleans() | NUMBERS | TEXT


def _schema_at(path: tuple[str | int, ...]) -> dict[str, Any] | None:
    """The schema node of a manifest path, following properties, additionalProperties and items
    (the first alternative of an anyOf that has the step)."""
    nodes = [schema()]
    for key in path:
        found = []
        for node in nodes:
            node = _resolve(node)
            for n in [node, *node.get("anyOf", [])]:
                n = _resolve(n)
                if isinstance(key, int) and "items" in n:
                    found.append(n["items"])
                elif isinstance(key, str) and key in n.get("properties", {}):
                    found.append(n["properties"][key])
                elif isinstance(key, str) and isinstance(n.get("additionalProperties"), dict):
                    found.append(n["additionalProperties"])
        if not found:
            return None
        nodes = found
    return {"anyOf": nodes} if len(nodes) > 1 else nodes[0]


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def schema_mutations(draw: st.DrawFn, manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with one to three of its keys replaced, added or deleted, each new value
    drawn from the schema at that key."""
    data = json.loads(json.dumps(manifest))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent: Any = data
        for p in path[:-1]:
            parent = parent[p]
        action = draw(st.sampled_from(["replace", "add", "delete"]))
        if action == "delete":
            del parent[path[-1]]
            continue
        if action == "add" and isinstance(parent, dict):
            node = _resolve(_schema_at(path[:-1]) or {})
            keys = sorted(node.get("properties", {})) or ["x", "step-x", "k8s", "pvc-x"]
            path = (*path[:-1], draw(st.sampled_from(keys) | TEXT))
        node = _schema_at(path)
        parent[path[-1]] = draw(from_schema(node) if node else from_schema({}))
        data = json.loads(json.dumps(data))  # no shared lists or dicts between paths
    return data


# YAML that stresses the loader: anchors and aliases, deep nesting, tags, big and special
# numbers, escapes; spliced into a valid manifest.
YAML_FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            "&a [1, *a]",
            "*undefined",
            "!!binary aGk=",
            "!!python/object:os.system x",
            "!custom 1",
            ".nan",
            "-.inf",
            "1e400",
            "0x" + "f" * 40,
            "0b" + "1" * 80,
            "9" * 5000,
            '"\\0"',
            '"\\uD800"',
            "{<<: {a: 1}}",
            "? [a, b]\n: c",
            "2024-01-01",
            "~",
            "|\n  x\n",
        ]
    ),
    st.integers(1, 200).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 100).map(lambda n: "{a: " * n + "1" + "}" * n),
    st.integers(1, 12).map(
        lambda n: "\n".join(
            [" &l0 [x, x, x]"]
            + [f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, n)]
        )
    ),
)
