"""The JSON schema reads well in editors: every key has a title and a description, every
alternative of a union a title of its own, and one canonical `$id` used everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbflow import __version__
from nbflow.check.manifest import schema_text
from nbflow.check.schema import SCHEMA_URL

ROOT = Path(__file__).resolve().parent.parent


def walk(node: Any, path: str = "$"):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def test_every_key_has_a_readable_title_and_a_description() -> None:
    schema = json.loads(schema_text())
    problems = []
    for path, node in walk(schema):
        for key, prop in (node.get("properties") or {}).items():
            if not prop.get("description"):
                problems.append(f"{path}.{key}: no description")
            if prop.get("title") != key and not prop.get("title", "").islower():
                problems.append(f"{path}.{key}: title {prop.get('title')!r}")
    assert problems == []
    step = schema["$defs"]["Deploy"]["properties"]
    assert step["launcherImage"]["title"] == "launcher image"


def test_alternatives_have_titles_of_their_own() -> None:
    schema = json.loads(schema_text())
    for path, node in walk(schema):
        for union in ("anyOf", "oneOf"):
            titles = [alt.get("title") for alt in node.get(union, [])]
            assert all(titles), f"{path}: an alternative without a title"
            assert len(set(titles)) == len(titles), f"{path}: {titles}"  # not "Cells || Cells"
    cells = schema["$defs"]["Step"]["properties"]["cells"]["anyOf"]
    assert [a["title"] for a in cells] == [
        "cells: a whole number from 1",
        "cells: text in the form the description gives",
        "cells: a list",
    ]
    metric = schema["properties"]["metrics"]["additionalProperties"]["anyOf"]
    assert [a["title"] for a in metric] == [
        "metric: the full form (goal, description)",
        "metric: one of `maximize`, `minimize`",
    ]
    # what an editor says it expected for `accuracy: maximise` names the keys, not "Metric"
    assert schema["$defs"]["Metric"]["title"] == "metric (goal, description)"


def test_one_canonical_id_in_the_schema_init_and_docs() -> None:
    assert (
        "https://raw.githubusercontent.com/nbflow/nbflow/"
        f"v{__version__}/schemas/nbflow.v1.schema.json"
    ) == SCHEMA_URL
    committed = json.loads((ROOT / "schemas" / "nbflow.v1.schema.json").read_text())
    assert committed["$id"] == SCHEMA_URL
    assert (ROOT / "schemas" / "nbflow.v1.schema.json").read_text() == schema_text()
    for doc in ("docs/manifest.md", "docs/editors.md"):
        assert SCHEMA_URL in (ROOT / doc).read_text(), doc
    from nbflow.authoring.init_yaml import schema_ref

    assert schema_ref(Path("/")) == SCHEMA_URL  # outside this repository: the URL


def test_the_schemastore_entry_in_the_docs_is_valid() -> None:
    text = (ROOT / "docs" / "editors.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    entry = json.loads(block)
    assert entry["fileMatch"] == ["nbflow.yaml", "nbflow.yml"]
    assert entry["url"] == SCHEMA_URL and entry["name"] and entry["description"]
