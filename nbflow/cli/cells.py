"""`nbflow cells`: the notebook's cells with their numbers, ids and owning step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbflow.check.validate import MANIFEST_NAME, shown_path
from nbflow.diagnostics import Report
from nbflow.errors import UsageError
from nbflow.load.notebook import NotebookError, cell_owners, load_notebook


def cell_table(
    notebook: str, manifest: str | None = None
) -> tuple[list[dict[str, Any]], Report | None]:
    """One row per cell; `owner` filled from the manifest when there is one that parses."""
    nb_path = Path(notebook)
    try:
        nb = load_notebook(nb_path, shown_path(nb_path))
    except NotebookError as exc:
        raise UsageError(exc.diagnostic.message) from None
    owners: dict[int, str] = {}
    report = None
    candidate = Path(manifest) if manifest else nb_path.parent / MANIFEST_NAME
    if manifest and not candidate.exists():
        raise UsageError(f"no manifest at {manifest}")
    if candidate.exists():
        owners, report = _owners(candidate, nb_path, explicit=manifest is not None)
    rows = [
        {
            "number": c.number,
            "id": c.id,
            "type": c.type,
            "owner": owners.get(c.number)
            or ("-" if owners and c.type == "code" and c.source.strip() else ""),
            "first_line": c.first_line[:80],
        }
        for c in nb.cells
    ]
    return rows, report


def _owners(manifest: Path, nb_path: Path, explicit: bool) -> tuple[dict[int, str], Report | None]:
    from pydantic import ValidationError

    from nbflow.check.manifest import Manifest
    from nbflow.check.rules import Checker
    from nbflow.load.yaml_positions import YamlLoadError, load_file

    try:
        doc = load_file(manifest, shown_path(manifest))
        m = Manifest.model_validate(doc.data)
    except (YamlLoadError, ValidationError):
        import sys

        print(
            f"nbflow: {shown_path(manifest)} has errors (see `nbflow validate`): owners not shown",
            file=sys.stderr,
        )
        return {}, None
    if (manifest.parent / m.notebook).resolve() != nb_path.resolve():
        if explicit:
            raise UsageError(
                f"{shown_path(manifest)} is the manifest of {m.notebook}, not of {nb_path.name}"
            )
        return {}, None
    nb = load_notebook(nb_path, shown_path(nb_path))
    checker = Checker(m, nb, doc)
    checker.ownership()
    r = checker.resolved
    return cell_owners(r.setup, r.skip, r.parameters_cell, (r.steps or {}).items()), None
