"""Cell drift: the lock file that remembers which cells each step holds.

Cell numbers shift when a cell is inserted or deleted above them, and a range like `cells: 8-9`
then silently takes other cells. `nbflow lock` records, beside the manifest, the nbformat id of
every cell that setup, the parameters cell, skip and each step hold (`nbflow.lock.json`); when
the lock exists, `nbflow validate` compares and reports a step whose cells are no longer the
ones locked (NBF208), so the drift is caught on the pull request that caused it. Editing a
cell's code is not drift: only which cells a step holds is compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbflow import codes
from nbflow.check.manifest import Manifest
from nbflow.check.project import Project
from nbflow.diagnostics import Diagnostic, Location, error
from nbflow.load.notebook import Notebook
from nbflow.load.yaml_positions import YamlDoc

LOCK_NAME = "nbflow.lock.json"
LOCK_VERSION = 1


def groups(
    nb: Notebook,
    setup: tuple[int, ...],
    skip: tuple[int, ...],
    parameters_cell: int | None,
    steps: dict[str, tuple[int, ...]],
) -> dict[str, tuple[int, ...]]:
    """The code cells each part of the manifest holds, by the names the lock uses."""

    def code(cells: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(c for c in cells if nb.cells[c - 1].type == "code")

    out = {"setup": code(setup), "skip": code(skip)}
    if parameters_cell is not None:
        out["parameters"] = (parameters_cell,)
    out.update({f"step:{name}": code(cells) for name, cells in steps.items()})
    return out


def _project_groups(project: Project) -> dict[str, tuple[int, ...]]:
    steps = {s.name: s.cells for s in project.steps}
    return groups(project.notebook, project.setup, project.skip, project.parameters_cell, steps)


def _ids(nb: Notebook, cells: tuple[int, ...]) -> list[str | None]:
    return [nb.cells[c - 1].id for c in cells]


def lock_data(project: Project) -> dict[str, Any]:
    return {
        "version": LOCK_VERSION,
        "notebook": project.manifest.notebook,
        "cells": {
            g: _ids(project.notebook, cells) for g, cells in _project_groups(project).items()
        },
    }


def write_lock(project: Project) -> Path:
    """Write (or rewrite) the lock of a valid project; return its path."""
    if any(c.id is None for c in project.notebook.cells):
        from nbflow.errors import UsageError

        raise UsageError(
            f"{project.notebook.path} has cells without ids (nbformat < 4.5): "
            "open and save it with Jupyter, then lock it"
        )
    path = project.root / LOCK_NAME
    path.write_text(json.dumps(lock_data(project), indent=2) + "\n", encoding="utf-8")
    return path


def check_lock(
    root: Path, manifest: Manifest, doc: YamlDoc, nb: Notebook, current: dict[str, tuple[int, ...]]
) -> list[Diagnostic]:
    """NBF208 for every group whose cells are not the locked ones; nothing without a lock.

    Runs on what the structural rules resolved, even when they found errors: drift explains
    them (a step that lost its code cells, a forgotten cell) better than they do."""
    path = root / LOCK_NAME
    if not path.is_file():
        return []
    shown = str(Path(doc.path).parent / LOCK_NAME)
    try:
        locked = json.loads(path.read_text(encoding="utf-8"))
        cells = locked["cells"]
        assert isinstance(cells, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return [
            error(
                codes.CELL_DRIFT,
                f"{shown} is not a lock nbflow can read",
                Location(shown, 1, 1),
                hint="rewrite it with `nbflow lock`",
            )
        ]
    if locked.get("notebook") != manifest.notebook:
        return [
            error(
                codes.CELL_DRIFT,
                f"{shown} locks {locked.get('notebook')}, but the manifest's notebook is {manifest.notebook}",
                doc.locate(("notebook",)),
                hint="run `nbflow lock` to record the new notebook's cells",
            )
        ]
    out: list[Diagnostic] = []
    by_id = {c.id: c.number for c in nb.cells if c.id}
    for group, numbers in current.items():
        now = _ids(nb, numbers)
        before = cells.get(group)
        if before is None or now == before:
            continue
        kind, _, name = group.partition(":")
        where = (
            ("steps", name, "cells")
            if kind == "step"
            else ({"setup": ("setup",), "skip": ("skip",), "parameters": ("parametersCell",)}[kind])
        )
        what = f"step `{name}`" if kind == "step" else kind
        detail = [
            f"its cell `{cid}` is now cell {by_id[cid]}"
            for cid in before
            if cid in by_id and cid not in now
        ]
        detail += [f"its cell `{cid}` was deleted" for cid in before if cid not in by_id]
        detail += [
            f"it now takes cell {n} (`{cid}`)"
            for n, cid in zip(numbers, now, strict=True)
            if cid not in before
        ]
        out.append(
            error(
                codes.CELL_DRIFT,
                f"{what} no longer holds the cells recorded in {LOCK_NAME}"
                + (": " + "; ".join(detail) if detail else ""),
                doc.locate(where),
                hint="a cell was inserted, deleted or moved above: fix the numbers (or name cells with "
                "`id:`), then run `nbflow lock` to record the change",
            )
        )
    return out
