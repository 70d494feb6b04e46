"""Small notebook + manifest projects, written into a folder for a test or a benchmark.

    root = write_project(tmp_path, [
        "import numpy as np",                       # cell 1: code
        md("## Load"),                              # cell 2: markdown
        tagged("n = 3", "parameters"),              # cell 3: the parameters cell
        "x = np.arange(n)",                         # cell 4
    ], '''
        name: demo
        setup: 1
        steps:
          load: {cells: 4}
        parameters: {n: 3}
    ''')

A manifest is YAML text (dedented; `apiVersion` and `notebook` are added when missing) or a
dict. Cell ids are fixed (`cell-1`, `cell-2`, ...), so the same cells give the same file.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOTEBOOK = "nb.ipynb"


@dataclass(frozen=True)
class Cell:
    source: str
    kind: str = "code"  # code, markdown, raw
    tags: tuple[str, ...] = ()
    outputs: tuple[dict[str, Any], ...] = ()
    execution_count: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def md(source: str) -> Cell:
    return Cell(source, "markdown")


def tagged(source: str, *tags: str) -> Cell:
    return Cell(source, tags=tags)


def notebook_json(
    cells: Sequence[str | Cell], metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    out = []
    for i, raw in enumerate(cells, 1):
        cell = raw if isinstance(raw, Cell) else Cell(raw)
        meta = dict(cell.metadata)
        if cell.tags:
            meta["tags"] = list(cell.tags)
        node: dict[str, Any] = {
            "cell_type": cell.kind,
            "id": f"cell-{i}",
            "metadata": meta,
            "source": cell.source,
        }
        if cell.kind == "code":
            node["execution_count"] = cell.execution_count
            node["outputs"] = [dict(o) for o in cell.outputs]
        out.append(node)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            **(metadata or {}),
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(
    path: Path, cells: Sequence[str | Cell], metadata: Mapping[str, Any] | None = None
) -> Path:
    """A notebook of `cells`; `metadata` goes beside the kernelspec in the notebook's metadata."""
    path.write_text(json.dumps(notebook_json(cells, metadata), indent=1) + "\n", encoding="utf-8")
    return path


def manifest_text(manifest: str | Mapping[str, Any], notebook: str = NOTEBOOK) -> str:
    if isinstance(manifest, str):
        text = textwrap.dedent(manifest).strip("\n") + "\n"
        head = ""
        if "apiVersion:" not in text:
            head += "apiVersion: nbflow/v1\n"
        if "\nnotebook:" not in "\n" + text:
            head += f"notebook: {notebook}\n"
        return head + text
    import yaml

    data = {"apiVersion": "nbflow/v1", "notebook": notebook, **dict(manifest)}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def write_project(
    root: Path,
    cells: Sequence[str | Cell],
    manifest: str | Mapping[str, Any],
    *,
    notebook: str = NOTEBOOK,
) -> Path:
    """Write `root/<notebook>` and `root/nbflow.yaml`; return `root`."""
    root.mkdir(parents=True, exist_ok=True)
    write_notebook(root / notebook, cells)
    (root / "nbflow.yaml").write_text(manifest_text(manifest, notebook), encoding="utf-8")
    return root


def load(root: Path):  # type: ignore[no-untyped-def]
    """The validated Project of `root`; fails the test with the diagnostics when it has errors."""
    from nbflow.check.validate import load_project
    from nbflow.cli.reporters import render_text

    report, project = load_project(root)
    if project is None:
        raise AssertionError("the project does not validate:\n" + render_text(report))
    return project


def chain(steps: int) -> tuple[list[str | Cell], dict[str, Any]]:
    """The cells and manifest of a pipeline of `steps` one-cell steps, each reading the value
    of the one before (a long pipeline, for its size and build time)."""
    cells: list[str | Cell] = ["import math", "x0 = 1"]
    cells += [f"x{i} = math.floor(x{i - 1} * 1.5) + {i}" for i in range(1, steps)]
    manifest = {
        "name": f"chain-{steps}",
        "setup": 1,
        "steps": {f"s{i}": {"cells": i + 2} for i in range(steps)},
    }
    return cells, manifest


# A small project the JupyterLab tests share: a setup cell, a parameters cell, two steps, a skip.
DEMO_CELLS: list[Any] = [
    "import math",  # 1 setup
    md("## Load"),  # 2
    tagged("n = 3", "parameters"),  # 3
    "xs = list(range(n))",  # 4 load
    "ys = [math.sqrt(x) for x in xs]",  # 5 load
    "total = sum(ys)",  # 6 fit
    "print(total)",  # 7 skip
]
DEMO_MANIFEST = """\
name: demo
setup: 1
steps:
  load:
    cells: 4-5  # the data
  fit:
    cells: 6
skip: [7]
parameters:
  n: {type: int, default: 3}
metrics:
  total: maximize
"""
