"""The manifest draft `nbflow init` proposes, and the commented YAML it is written as.

`Draft` is what init (`nbflow.authoring.init.propose`) or the Kale import (`nbflow.authoring.kale`) decided, with a
comment for any line; `render` hand-formats it, so that the comments sit where a reader looks and
cell lists are written the way a person would (`5-6`, `[6-7, 9]`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.check.schema import SCHEMA_FILE, SCHEMA_URL
from nbflow.load.notebook import cell_owners, cell_runs, with_gaps

if TYPE_CHECKING:
    from nbflow.load.notebook import Cell, Notebook

__all__ = ["Draft", "DraftStep", "cell_spec", "render", "scalar", "schema_ref"]


# -- the draft: what init decided, with comments, before it becomes YAML --------------------------


@dataclass
class DraftStep:
    name: str
    cells: list[int]  # code cells; the markdown between them is folded into ranges when written
    after: list[str] = field(default_factory=list)
    image: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    cache: bool | None = None


@dataclass
class Draft:
    """A manifest as init proposes it; `comments` maps a YAML path to the comment on its line."""

    name: str
    notebook: str
    origin: str  # what it was made from, for the header: "structure", "Kale tags and metadata"
    description: str | None = None
    image: str = "python:3.11-slim"
    requirements: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    setup: list[int] = field(default_factory=list)
    parameters_cell: int | None = None  # written only when it is not the tagged cell
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: list[DraftStep] = field(default_factory=list)
    skip: list[int] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)  # name -> goal
    tuning: dict[str, Any] | None = None  # nbflow's shape; `search` values are dicts or lists
    volumes: list[dict[str, Any]] = field(default_factory=list)
    deploy: dict[str, Any] = field(default_factory=dict)
    comments: dict[tuple[str, ...], str] = field(default_factory=dict)
    # comment lines written where a key is left out: (the key they stand for, lines)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def comment(self, path: tuple[str, ...], text: str) -> None:
        old = self.comments.get(path)
        self.comments[path] = f"{old}; {text}" if old else text

    def todo(self, path: tuple[str, ...], text: str) -> None:
        self.comment(path, f"TODO: {text}")


# -- YAML ------------------------------------------------------------------------------------------


def _plain_ok(text: str, value: Any) -> bool:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = YAML(typ="safe", pure=True).load(f"k: {text}\n")
    except YAMLError:
        return False
    return (
        isinstance(loaded, dict)
        and loaded.get("k") == value
        and type(loaded.get("k")) is type(value)
    )


def scalar(value: Any, *, flow: bool = False) -> str:
    """One value as YAML text (flow style inside `[...]`/`{...}` when `flow`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        return text if any(ch in text for ch in ".en") else text + ".0"
    if isinstance(value, str):
        risky = flow and any(ch in value for ch in ",[]{}")
        if (
            value
            and value == value.strip()
            and not risky
            and "#" not in value
            and _plain_ok(value, value)
        ):
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(v, flow=True) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{scalar(str(k), flow=True)}: {scalar(v, flow=True)}" for k, v in value.items()
            )
            + "}"
        )
    return json.dumps(str(value))


def cell_spec(cells: Iterable[int], nb: Notebook, owned: set[int]) -> str:
    """Cell numbers as the manifest writes them: `5`, `5-6`, `[6-7, 9]`. Markdown, raw and empty
    code cells between two of the cells, that nothing else owns, are folded into the range."""
    filled = with_gaps(cells, lambda g: g not in owned and _filler(nb.cells[g - 1]))
    if not filled:
        return "[]"
    ranges = [str(r) for r in cell_runs(filled)]
    return ranges[0] if len(ranges) == 1 else "[" + ", ".join(ranges) + "]"


def _ordered(resources: dict[str, Any]) -> dict[str, Any]:
    order = ("cpu", "memory", "cpuLimit", "memoryLimit", "gpu", "gpuType")
    return dict(
        sorted(
            resources.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)
        )
    )


def _filler(cell: Cell) -> bool:
    return cell.type != "code" or not cell.source.strip()


def schema_ref(folder: Path) -> str:
    """Where the manifest's `$schema` points: the repository's schema file, relative to `folder`,
    when `folder` is inside a git repository that has one; else the published URL."""
    here = folder.resolve()
    for d in (here, *here.parents):
        candidate = d / SCHEMA_FILE
        if candidate.is_file():
            return Path(os.path.relpath(candidate, here)).as_posix()
        if (d / ".git").exists():
            break
    return SCHEMA_URL


def render(draft: Draft, nb: Notebook, schema: str) -> str:
    """The manifest as YAML text, hand-formatted, with the draft's comments."""
    lines: list[str] = []
    c = draft.comments

    def put(indent: int, key: str, value: str | None, path: tuple[str, ...]) -> None:
        text = " " * indent + (f"{key}: {value}" if value is not None else f"{key}:")
        if path in c:
            text += f"  # {c[path]}"
        lines.append(text)

    def notes(key: str) -> None:
        lines.extend(f"# {line}" for line in draft.notes.get(key, []))

    owned_by = cell_owners(
        draft.setup, draft.skip, draft.parameters_cell, ((s.name, s.cells) for s in draft.steps)
    )
    tagged = [x.number for x in nb.cells if "parameters" in x.tags and x.type == "code"]
    if not draft.parameters_cell and tagged:
        owned_by[tagged[0]] = "parameters"

    def spec(cells: list[int], owner: str) -> str:
        others = {n for n, o in owned_by.items() if o != owner}
        return cell_spec(cells, nb, others)

    lines.append(f"# yaml-language-server: $schema={schema}")
    todos = any("TODO" in v for v in c.values())
    lines.append(
        f"# Written by `nbflow init` from the {draft.origin} of {draft.notebook}."
        + (" Review the lines marked TODO." if todos else "")
    )
    # numbers read best and go stale when cells move: say so, and what keeps them right
    lines.append(
        "# Cells are written by number; `nbflow lock` records them, and after inserting, deleting"
    )
    lines.append(
        "# or moving cells `nbflow lock --fix` renumbers them (or name cells `id:...`, `tag:...`)."
    )
    lines.append("apiVersion: nbflow/v1")
    put(0, "name", scalar(draft.name), ("name",))
    if draft.description:
        put(0, "description", scalar(draft.description), ("description",))
    put(0, "notebook", scalar(draft.notebook), ("notebook",))
    put(0, "image", scalar(draft.image), ("image",))
    if draft.requirements or ("requirements",) in c:
        put(0, "requirements", scalar(draft.requirements), ("requirements",))
    if draft.resources:
        put(0, "resources", scalar(_ordered(draft.resources)), ("resources",))
    if draft.env:
        put(0, "env", scalar(draft.env), ("env",))
    if draft.setup:
        put(0, "setup", spec(draft.setup, "setup"), ("setup",))
    if draft.parameters_cell:
        put(0, "parametersCell", str(draft.parameters_cell), ("parametersCell",))
    put(0, "steps", None, ("steps",))
    for s in draft.steps:
        put(2, s.name, None, ("steps", s.name))
        put(4, "cells", spec(s.cells, "step:" + s.name), ("steps", s.name, "cells"))
        if s.after:
            put(4, "after", scalar(s.after), ("steps", s.name, "after"))
        if s.image:
            put(4, "image", scalar(s.image), ("steps", s.name, "image"))
        if s.resources:
            put(4, "resources", scalar(_ordered(s.resources)), ("steps", s.name, "resources"))
        if s.cache is not None:
            put(4, "cache", scalar(s.cache), ("steps", s.name, "cache"))
    if draft.skip:
        put(0, "skip", "[" + spec(draft.skip, "skip").strip("[]") + "]", ("skip",))
    if draft.parameters:
        put(0, "parameters", None, ("parameters",))
        for key, value in draft.parameters.items():
            text = scalar({"default": value}) if isinstance(value, dict) else scalar(value)
            put(2, key, text, ("parameters", key))
    else:
        notes("parameters")
    if draft.metrics:
        put(0, "metrics", None, ("metrics",))
        for key, goal in draft.metrics.items():
            put(2, key, goal, ("metrics", key))
    else:
        notes("metrics")
    if draft.tuning:
        t = draft.tuning
        put(0, "tuning", None, ("tuning",))
        for key in (
            "objective",
            "algorithm",
            "settings",
            "maxTrials",
            "parallelTrials",
            "maxFailedTrials",
            "goal",
            "additionalMetrics",
        ):
            if key in t and t[key] not in (None, {}, []):
                put(2, key, scalar(t[key]), ("tuning", key))
        put(2, "search", None, ("tuning", "search"))
        for key, space in t["search"].items():
            put(4, key, scalar(space), ("tuning", "search", key))
    else:
        notes("tuning")
    if draft.volumes:
        put(0, "volumes", None, ("volumes",))
        for i, v in enumerate(draft.volumes):
            lines.append(
                f"  - {scalar(v)}"
                + (f"  # {c[('volumes', str(i))]}" if ("volumes", str(i)) in c else "")
            )
    if draft.deploy:
        put(0, "deploy", scalar(draft.deploy), ("deploy",))
    return "\n".join(lines) + "\n"
