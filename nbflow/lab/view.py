"""What the JupyterLab panel shows of a notebook's pipeline, as JSON-ready data.

One function, `project_view`, validates the manifest with the notebook (their unsaved text
when the editor sends it) and returns the cells' owners, the steps in DAG order with their
cells, the edges with the variables they carry, parameters, metrics and every diagnostic, its
file given relative to the server's root. A manifest with errors still gives the owners of
the cells it can resolve, so that the badges stay while the user fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow.check.validate import MANIFEST_NAME
from nbflow.diagnostics import Diagnostic, Location, Report
from nbflow.load.notebook import Notebook, cell_owners, cell_ranges

__all__ = ["find_manifest", "project_view"]


@dataclass(frozen=True)
class Paths:
    """Absolute paths, and the root that the shown paths are relative to."""

    root: Path
    notebook: Path
    manifest: Path | None

    def shown(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def find_manifest(notebook: Path) -> Path | None:
    """The `nbflow.yaml` beside the notebook when it names this notebook."""
    candidate = notebook.parent / MANIFEST_NAME
    if not candidate.is_file():
        return None
    named = _named_notebook(candidate.read_text(encoding="utf-8", errors="replace"))
    if named is None:
        return candidate  # a manifest too broken to say: show it, with its diagnostics
    return candidate if (candidate.parent / named).resolve() == notebook.resolve() else None


def _named_notebook(text: str) -> str | None:
    from nbflow.load.yaml_positions import YamlLoadError, load_text

    try:
        data = load_text(text, MANIFEST_NAME).data
    except YamlLoadError:
        return None
    name = data.get("notebook") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def project_view(
    paths: Paths, *, notebook_text: str | None = None, manifest_text: str | None = None
) -> dict[str, Any]:
    """The panel's data for `paths.notebook` (see the module's docstring)."""
    from nbflow.check.validate import validate_manifest
    from nbflow.load.notebook import NotebookError, load_notebook

    base: dict[str, Any] = {
        "notebook": paths.shown(paths.notebook),
        "manifest": paths.shown(paths.manifest) if paths.manifest else None,
    }
    if paths.manifest is None:
        return {
            **base,
            "valid": False,
            "cells": [],
            "steps": [],
            "edges": [],
            "parameters": [],
            "metrics": [],
            "diagnostics": [],
            "manifestText": None,
        }
    text = (
        manifest_text
        if manifest_text is not None
        else paths.manifest.read_text(encoding="utf-8", errors="replace")
    )
    report, project = validate_manifest(
        paths.manifest, manifest_text=text, notebook_text=notebook_text
    )
    try:
        nb: Notebook | None = load_notebook(
            paths.notebook, paths.shown(paths.notebook), text=notebook_text
        )
    except NotebookError:
        nb = None
    owners, steps, edges = _structure(project, text, nb, paths)
    manifest = project.manifest if project is not None else _manifest(text)
    return {
        **base,
        "manifestText": text,
        "valid": report.ok,
        "name": manifest.name if manifest is not None else None,
        "cells": [
            {
                "index": c.number - 1,
                "number": c.number,
                "id": c.id,
                "owner": owners.get(c.number, ""),
            }
            for c in (nb.cells if nb is not None else ())
        ],
        "steps": steps,
        "edges": edges,
        "parameters": [
            {"name": n, "type": p.type, "default": p.default, "description": p.description}
            for n, p in (manifest.parameters.items() if manifest is not None else ())
        ],
        "metrics": [
            {"name": n, "goal": m.goal, "description": m.description}
            for n, m in (manifest.metrics.items() if manifest is not None else ())
        ],
        "diagnostics": [_diagnostic(d, paths) for d in _sorted(report)],
    }


def _structure(
    project: Any, text: str, nb: Notebook | None, paths: Paths
) -> tuple[dict[int, str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Owners per cell number, steps (DAG order when there is a plan) and edges."""
    if project is not None and project.plan is not None:
        plan = project.plan
        owners = cell_owners(
            project.setup,
            project.skip,
            project.parameters_cell,
            ((s.name, s.cells) for s in project.steps),
        )
        declared = {s.name: s.cells for s in project.steps}
        steps = [
            {
                "name": s.name,
                "cells": list(declared.get(s.name, s.cells)),
                "range": cell_ranges(declared.get(s.name, s.cells)),
                "upstream": list(s.upstream),
                "parameters": list(s.parameters),
                "metrics": list(s.metrics),
                "inputs": [{"variable": v, "from": src} for v, src in s.inputs],
            }
            for s in plan.steps
        ]
        edges = [
            {"from": e.src, "to": e.dst, "variables": list(e.variables), "afterOnly": e.after_only}
            for e in plan.edges
        ]
        return owners, steps, edges
    if nb is None:
        return {}, [], []
    manifest = _manifest(text)
    if manifest is None:
        return {}, [], []
    from nbflow.check.rules import Checker
    from nbflow.load.yaml_positions import load_text

    checker = Checker(manifest, nb, load_text(text, paths.shown(paths.manifest or paths.root)))
    checker.ownership()
    r = checker.resolved
    by_step = r.steps or {}
    owners = cell_owners(r.setup, r.skip, r.parameters_cell, by_step.items())
    steps = [
        {
            "name": name,
            "cells": list(cells),
            "range": cell_ranges(cells),
            "upstream": [],
            "parameters": [],
            "metrics": [],
            "inputs": [],
        }
        for name, cells in by_step.items()
    ]
    return owners, steps, []


def _manifest(text: str) -> Any:
    from nbflow.check.validate import manifest_model
    from nbflow.load.yaml_positions import YamlLoadError, load_text

    try:
        return manifest_model(load_text(text, MANIFEST_NAME))[1]
    except YamlLoadError:
        return None


def _sorted(report: Report) -> list[Diagnostic]:
    return report.sorted()


def _diagnostic(d: Diagnostic, paths: Paths) -> dict[str, Any]:
    loc = d.location
    out: dict[str, Any] = {
        "code": d.code,
        "title": d.title,
        "severity": d.severity.value,
        "message": d.message,
        "hint": d.hint,
        **_location(loc, paths),
    }
    related = [_location(r, paths) for r in d.related]
    out["related"] = related
    # the notebook cells it is about: where it is, else where its related locations are (a
    # step that reads an undefined name is reported at the step, its cell is related)
    out["cells"] = sorted(
        {r["cell"] for r in [out, *related] if r["target"] == "notebook" and r["cell"]}
    )
    return out


def _location(loc: Location, paths: Paths) -> dict[str, Any]:
    # diagnostics name files as `nbflow validate` would: relative to the working directory
    where = (Path.cwd() / loc.file).resolve() if loc.file else None
    if where is not None and where == paths.notebook.resolve():
        target = "notebook"
    elif where is not None and paths.manifest is not None and where == paths.manifest.resolve():
        target = "manifest"
    else:
        target = "other"
    try:
        file = where.relative_to(paths.root.resolve()).as_posix() if where else None
    except ValueError:
        file = None  # outside the root: not for this client to open
    return {
        "file": file,
        "target": target,
        "line": loc.line,
        "column": loc.column,
        "cell": loc.cell,
        "cellLine": loc.cell_line,
    }
