"""Notebook loading (nbformat v4) and cell addressing.

Cells are numbered from 1 in notebook order, counting every cell (markdown too), as the user
sees them top to bottom. A cell may also be named by its nbformat id (`id:<cell id>`), which
survives inserting a cell above it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow import codes
from nbflow.diagnostics import Diagnostic, Location, error


@dataclass(frozen=True, slots=True)
class Cell:
    number: int  # 1-based
    id: str | None
    type: str  # code | markdown | raw
    source: str
    tags: tuple[str, ...] = ()

    @property
    def first_line(self) -> str:
        for line in self.source.splitlines():
            if line.strip():
                return line.strip()
        return ""


@dataclass(frozen=True)
class Notebook:
    path: str  # as shown to the user
    cells: tuple[Cell, ...]
    metadata: dict[str, Any]
    nbformat_minor: int

    def cell(self, number: int) -> Cell | None:
        return self.cells[number - 1] if 0 < number <= len(self.cells) else None

    def by_id(self, cell_id: str) -> Cell | None:
        for c in self.cells:
            if c.id == cell_id:
                return c
        return None

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.type == "code")


def cell_owners(
    setup: Iterable[int],
    skip: Iterable[int],
    parameters_cell: int | None,
    steps: Iterable[tuple[str, Iterable[int]]],
) -> dict[int, str]:
    """Which part of a manifest holds each cell: `setup`, `skip`, `parameters` or `step:<name>`
    (where a cell is claimed twice, the later claim in that order)."""
    owners = dict.fromkeys(setup, "setup")
    owners.update(dict.fromkeys(skip, "skip"))
    if parameters_cell:
        owners[parameters_cell] = "parameters"
    for name, cells in steps:
        owners.update(dict.fromkeys(cells, f"step:{name}"))
    return owners


def cell_runs(numbers: Iterable[int]) -> list[int | str]:
    """Cell numbers as the manifest writes them, consecutive ones as a range:
    `[3, 4, 5, 9]` -> `["3-5", 9]`."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return [r[0] if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs]


def cell_ranges(numbers: Iterable[int]) -> str:
    """`[3, 4, 5, 9]` as `3-5, 9`."""
    return ", ".join(str(r) for r in cell_runs(numbers))


def with_gaps(numbers: Iterable[int], fillable: Callable[[int], bool]) -> list[int]:
    """`numbers`, sorted, plus every gap between two of them whose cells are all `fillable`
    (a markdown cell between two cells of a step stays inside its range)."""
    ordered = sorted(set(numbers))
    filled = ordered[:1]
    for n in ordered[1:]:
        gap = range(filled[-1] + 1, n)
        if all(fillable(g) for g in gap):
            filled.extend(gap)
        filled.append(n)
    return filled


class NotebookError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def load_notebook(
    path: Path,
    shown: str,
    referenced_at: Location | None = None,
    *,
    root: Path | None = None,
    text: str | None = None,
) -> Notebook:
    """Read and validate a notebook; raise NotebookError with a diagnostic on any problem.

    `root`: the repository the notebook must lie in (a manifest's notebook), None for one the
    operator names; either way it must be a regular file under a size cap (nbflow.load.inputs).
    `text` is the notebook's content where it is not (yet) what the file holds: an editor's
    unsaved state (the path is still confined to `root`)."""
    from nbflow.load.inputs import InputRefused, confined, read_input

    where = referenced_at or Location(shown)
    try:
        if text is None:
            text = read_input(path, root=root, kind="notebook").decode("utf-8")
        elif root is not None:
            with contextlib.suppress(FileNotFoundError):  # not saved yet
                confined(path, root)
    except FileNotFoundError:
        raise NotebookError(
            error(
                codes.NOTEBOOK_NOT_FOUND,
                f"notebook not found: {shown}",
                where,
                hint="`notebook` is relative to the manifest's folder",
            )
        ) from None
    except InputRefused as exc:
        raise NotebookError(error(codes.FILE_REFUSED, f"notebook {shown} {exc}", where)) from None
    except UnicodeDecodeError as exc:
        raise NotebookError(
            error(
                codes.NOTEBOOK_INVALID,
                f"cannot read notebook {shown}: not UTF-8 (byte {exc.start + 1})",
                where,
            )
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)
        raise NotebookError(
            error(codes.NOTEBOOK_INVALID, f"cannot read notebook {shown}: {reason}", where)
        ) from None
    try:
        raw = json.loads(text)
        deep = too_deep(raw)
    except RecursionError:
        deep = True
    except json.JSONDecodeError as exc:
        raise NotebookError(
            error(
                codes.NOTEBOOK_INVALID,
                f"notebook is not valid JSON: {exc.msg}",
                Location(shown, exc.lineno, exc.colno),
                hint="the file may be corrupt or have an unresolved merge conflict",
            )
        ) from None
    except ValueError as exc:  # an integer of thousands of digits, which int() refuses
        raise NotebookError(
            error(
                codes.NOTEBOOK_INVALID,
                f"notebook holds a value nbflow cannot read: {exc}",
                Location(shown, 1, 1),
            )
        ) from None
    if deep:
        raise NotebookError(
            error(
                codes.NESTED_TOO_DEEP,
                f"{shown} is nested more than {MAX_DEPTH} levels deep: not a notebook nbflow reads",
                Location(shown, 1, 1),
            )
        )
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise NotebookError(
            error(
                codes.NOTEBOOK_INVALID,
                f"{shown} is not a Jupyter notebook (no `nbformat` field)",
                Location(shown, 1, 1),
            )
        )
    major = raw["nbformat"]
    if major > 4:
        raise NotebookError(
            error(
                codes.NOTEBOOK_VERSION,
                f"notebook format v{major} is newer than this nbflow understands (v4)",
                Location(shown, 1, 1),
                hint="upgrade nbflow, or save the notebook as nbformat 4",
            )
        )
    if _plainly_valid_v4(raw):  # the common case, without importing nbformat
        transient = ("orig_nbformat", "orig_nbformat_minor", "signature")  # nbformat drops these
        metadata = {k: v for k, v in raw["metadata"].items() if k not in transient}
        return _notebook(shown, raw["cells"], metadata, raw["nbformat_minor"])
    import nbformat

    captured: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            # nbformat warns (MissingIDFieldWarning...) where we report: keep stderr clean
            warnings.simplefilter("ignore")
            nb = nbformat.reads(
                text,  # older formats (v3) are upgraded to v4 by nbformat
                as_version=4,
                capture_validation_error=captured,
            )
    except Exception as exc:  # nbformat raises bare exceptions for structurally broken files
        raise NotebookError(
            error(codes.NOTEBOOK_INVALID, f"invalid notebook: {exc}", Location(shown, 1, 1))
        ) from None
    if "ValidationError" in captured:
        invalid = captured["ValidationError"]
        where_in = "/".join(str(p) for p in getattr(invalid, "absolute_path", ()) or ())
        message = str(getattr(invalid, "message", invalid)).splitlines()[0]
        raise NotebookError(
            error(
                codes.NOTEBOOK_INVALID,
                f"notebook does not follow the nbformat v4 schema: {message}"
                + (f" (at {where_in})" if where_in else ""),
                Location(shown, 1, 1),
                hint="open and save it with Jupyter, or fix the JSON by hand",
            )
        )
    return _notebook(shown, nb.cells, dict(nb.metadata), nb.nbformat_minor)


MAX_DEPTH = 100  # JSON nesting: a notebook is ~5 deep, widget state in its metadata some more


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON data nests more than `limit` deep, found without recursion (which the
    data would overflow: that is what is being checked)."""
    level: list[Any] = [data]
    for _ in range(limit + 1):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _notebook(shown: str, raw_cells: list[Any], metadata: dict[str, Any], minor: int) -> Notebook:
    cells = tuple(
        Cell(
            number=i,
            id=c.get("id"),
            type=c.get("cell_type", "code"),
            source=c.get("source", "")
            if isinstance(c.get("source"), str)
            else "".join(c.get("source", [])),
            tags=tuple(str(t) for t in c.get("metadata", {}).get("tags", []) or []),
        )
        for i, c in enumerate(raw_cells, start=1)
    )
    return Notebook(path=shown, cells=cells, metadata=metadata, nbformat_minor=minor)


def _plainly_valid_v4(raw: dict[str, Any]) -> bool:
    """Whether nbformat would read `raw` as it is and find it valid: format 4 at a minor version
    nbformat has a schema for, valid against that schema, and (from 4.5) every cell with an id
    of its own. Checked against nbformat's own schema file, compiled by fastjsonschema as
    nbformat does, but without importing nbformat and the jsonschema package it imports: ~0.1 s
    of a build. Anything else is read by nbformat, which upgrades, repairs and reports."""
    minor = raw.get("nbformat_minor")
    cells = raw.get("cells")
    if raw.get("nbformat") != 4 or type(minor) is not int or not isinstance(cells, list):
        return False
    validator = _v4_validator(minor)
    if validator is None:
        return False
    import fastjsonschema

    try:
        validator(raw)
    except fastjsonschema.JsonSchemaException:
        return False
    if minor >= 5:
        ids = [c.get("id") for c in cells]
        return len(set(ids)) == len(ids)
    return True


@functools.cache
def _v4_validator(minor: int) -> Callable[[Any], Any] | None:
    """The validator of nbformat's v4.<minor> schema that fastjsonschema generates, as nbformat
    builds it: nbflow ships it as a module (nbflow/load/nbformat_schemas, generated at
    development time) and uses it only while the installed nbformat's schema file is the one it
    was generated from. No code is compiled or loaded from anywhere else (docs/security.md)."""
    import hashlib
    import importlib
    import importlib.util

    from nbflow.load.nbformat_schemas import MINORS

    if minor not in MINORS:
        return None
    spec = importlib.util.find_spec("nbformat")  # finds the package; doesn't import it
    if spec is None or not spec.submodule_search_locations:
        return None
    schema = Path(spec.submodule_search_locations[0]) / "v4" / f"nbformat.v4.{minor}.schema.json"
    try:
        digest = hashlib.sha256(schema.read_bytes()).hexdigest()
        module = importlib.import_module(f"nbflow.load.nbformat_schemas.v4_{minor}")
    except (OSError, ImportError):  # no schema file, or fastjsonschema missing
        return None
    if digest != module.SCHEMA_SHA256:  # another nbformat: let it check its own schema
        return None
    validate: Callable[[Any], Any] = module.validate
    return validate
