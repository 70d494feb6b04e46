"""Cell drift: the lock file that remembers which cells each step holds, and the fix for it.

Cell numbers shift when a cell is inserted or deleted above them, and a range like `cells: 8-9`
then silently takes other cells. `nbflow lock` records, beside the manifest, the nbformat id and
a hash of the source of every code cell that setup, the parameters cell, skip and each step hold
(`nbflow.lock.json`). When the lock exists, `nbflow validate` compares and reports a part of the
manifest whose cells are no longer the ones locked (NBF208), once per part, with the numbers
that would take the locked cells again; `nbflow lock --fix` writes those numbers into the
manifest, changing nothing else in it, and locks again. Editing a cell's code is not drift:
only which cells a step holds is compared (the hash finds a cell whose id changed, as when it
was cut and pasted).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow import codes
from nbflow.check.manifest import Manifest
from nbflow.check.project import Project
from nbflow.diagnostics import Diagnostic, Location, error
from nbflow.load.notebook import Cell, Notebook, cell_ranges, cell_runs, with_gaps
from nbflow.load.yaml_positions import YamlDoc, YamlPath

LOCK_NAME = "nbflow.lock.json"
LOCK_VERSION = 1
FIX_COMMAND = "nbflow lock --fix"
# diagnostics that cell numbers gone stale cause, and that drift explains better
DRIFT_CASCADE = frozenset(
    c.id
    for c in (
        codes.CELL_OUT_OF_RANGE,
        codes.CELL_OWNED_TWICE,
        codes.FORGOTTEN_CELL,
        codes.NOT_A_CODE_CELL,
        codes.EMPTY_STEP,
    )
)
# ... and, when the parameters cell moved, what reading another cell as it causes
PARAMETERS_CASCADE = frozenset(
    c.id
    for c in (
        codes.PARAMETERS_CELL_MISSING,
        codes.PARAMETER_NOT_ASSIGNED,
        codes.PARAMETER_NOT_LITERAL,
        codes.PARAMETER_TYPE_MISMATCH,
        codes.PARAMETER_NOT_DECLARED,
        codes.PARAMETERS_CELL_SYNTAX,
    )
)


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


def source_hash(cell: Cell) -> str:
    """A short hash of a cell's source, blind to trailing whitespace."""
    text = "\n".join(line.rstrip() for line in cell.source.strip().splitlines())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def lock_data(project: Project) -> dict[str, Any]:
    nb = project.notebook
    parts = _project_groups(project)
    return {
        "version": LOCK_VERSION,
        "notebook": project.manifest.notebook,
        "cells": {g: _ids(nb, cells) for g, cells in parts.items()},
        "hashes": {g: [source_hash(nb.cells[c - 1]) for c in cells] for g, cells in parts.items()},
    }


def write_lock(project: Project) -> Path:
    """Write (or rewrite) the lock of a valid project; return its path."""
    if any(c.id is None for c in project.notebook.cells):
        from nbflow.errors import UsageError

        raise UsageError(
            f"{project.notebook.path} has cells without ids (nbformat < 4.5): "
            "run `nbflow lock` on it to add them"
        )
    import tempfile

    path = project.root / LOCK_NAME
    # a new file, then renamed over the lock: a lock that is a symlink is replaced, not followed
    # (it could point at any file the user can write: docs/security.md)
    fd, partial = tempfile.mkstemp(prefix=f".{LOCK_NAME}.", dir=project.root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(lock_data(project), indent=2) + "\n")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return path


def add_cell_ids(path: Path) -> int:
    """Give every cell of the notebook at `path` an id, as Jupyter does when it saves a
    notebook older than nbformat 4.5 (upgraded to 4.5, random 8-hex-digit ids); return how
    many cells got one (0: the file is left untouched)."""
    import warnings

    import nbformat
    from nbformat.corpus.words import generate_corpus_id as random_cell_id

    with warnings.catch_warnings():  # nbformat warns about the very ids this adds
        warnings.simplefilter("ignore")
        raw = json.loads(path.read_text(encoding="utf-8"))
        missing = sum(1 for c in raw.get("cells", []) if isinstance(c, dict) and not c.get("id"))
        if not missing or raw.get("nbformat") != 4:
            return 0
        nb = nbformat.from_dict(raw)
        nb.nbformat_minor = max(int(raw.get("nbformat_minor", 0)), 5)
        taken = {c.get("id") for c in nb.cells}
        for cell in nb.cells:
            if not cell.get("id"):
                new = random_cell_id()
                while new in taken:
                    new = random_cell_id()
                cell["id"] = new
                taken.add(new)
        nbformat.write(nb, str(path))
    return missing


# -- where the locked cells are now ----------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """A part of the manifest whose cells are no longer the locked ones."""

    group: str  # setup, skip, parameters, step:<name>
    path: YamlPath  # where its cells are written
    now: tuple[int, ...]  # the code cells its numbers take today
    locked: tuple[int, ...]  # where the locked cells are today (deleted ones left out)
    deleted: tuple[str, ...]  # ids of locked cells no longer in the notebook
    spec: Any  # the corrected value (int, "4-5" or a list), or None: all its cells were deleted
    detail: tuple[str, ...]

    @property
    def what(self) -> str:
        kind, _, name = self.group.partition(":")
        return f"step `{name}`" if kind == "step" else kind

    @property
    def spec_text(self) -> str:
        return format_spec(self.spec)

    @property
    def fix(self) -> str:
        """What the fix writes, as a user reads it: `step `train` cells: 8`, `skip: [15]`."""
        key = f"{self.path[-1]}: {self.spec_text}"
        return f"{self.what} {key}" if self.group.startswith("step:") else key


def _path(group: str) -> YamlPath:
    kind, _, name = group.partition(":")
    if kind == "step":
        return ("steps", name, "cells")
    return {"setup": ("setup",), "skip": ("skip",), "parameters": ("parametersCell",)}[kind]


def read_lock(root: Path, repository: Path | None = None) -> dict[str, Any] | None:
    """The lock beside a manifest: None when there is none; raises ValueError when unreadable,
    and nbflow.load.inputs.InputRefused when it is not a file of the manifest's repository
    (`repository`, found from `root` when None) that nbflow reads."""
    from nbflow.load.inputs import read_input, repository_root

    path = root / LOCK_NAME
    if not os.path.lexists(path):
        return None
    try:
        raw = read_input(path, root=repository or repository_root(root), kind="lock")
        data = json.loads(raw)  # a ValueError too for a number of thousands of digits
    except (OSError, UnicodeDecodeError):  # a dangling symlink included; no bytes quoted
        raise ValueError("unreadable") from None
    except RecursionError:  # nested deeper than json can read
        raise ValueError("nested too deeply") from None
    if not isinstance(data, dict) or not _lock_shape(data.get("cells")):
        raise ValueError("no `cells` mapping of cell id lists")
    if not isinstance(data.get("notebook"), str):
        raise ValueError("no `notebook`")
    return data


def _lock_shape(cells: Any) -> bool:
    """`cells` as `nbflow lock` writes it: group name -> list of cell ids (null for none)."""
    return isinstance(cells, dict) and all(
        isinstance(ids, list) and all(i is None or isinstance(i, str) for i in ids)
        for ids in cells.values()
    )


def drifts(
    locked: dict[str, Any], doc: YamlDoc, nb: Notebook, current: dict[str, tuple[int, ...]]
) -> list[Drift]:
    """Every part of the manifest whose cells differ from the lock's, with the numbers that
    take the locked cells again."""
    cells: dict[str, Any] = locked["cells"]
    raw_hashes = locked.get("hashes")
    hashes: dict[str, Any] = raw_hashes if isinstance(raw_hashes, dict) else {}
    by_id = {c.id: c.number for c in nb.cells if c.id}
    known = {cid for ids in cells.values() if isinstance(ids, list) for cid in ids}
    # a locked cell whose id is gone is found again by its source, among cells the lock
    # does not know (a cell cut and pasted gets a new id in some frontends)
    unknown_by_hash: dict[str, list[int]] = {}
    for c in nb.code_cells:
        if c.id not in known:
            unknown_by_hash.setdefault(source_hash(c), []).append(c.number)

    found: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}
    for group, before in cells.items():
        if not isinstance(before, list) or (group.startswith("step:") and group not in current):
            continue  # a step renamed or removed: nothing to renumber
        if not _by_number(_raw(doc, _path(group))):
            continue  # cells named by id or tag: which cells they take is what the user says
        sums = hashes.get(group) if isinstance(hashes.get(group), list) else None
        where: list[int] = []
        gone: list[str] = []
        for i, cid in enumerate(before):
            if cid in by_id:
                where.append(by_id[cid])
                continue
            h = sums[i] if sums is not None and i < len(sums) else None
            again = unknown_by_hash.get(h, []) if h else []
            if len(again) == 1:
                where.append(again.pop())  # claimed: no other locked cell takes it
            else:
                gone.append(str(cid))
        found[group] = (tuple(sorted(where)), tuple(gone))

    claimed = {n for numbers, _ in found.values() for n in numbers}
    out: list[Drift] = []
    for group, (numbers, deleted) in found.items():
        # the parameters cell resolves to nothing when its number now points at markdown
        now = current.get(group, ())
        if numbers == now and not deleted:
            continue
        path = _path(group)
        spec = _corrected(doc, path, numbers, nb, claimed, known) if numbers else None
        detail: list[str] = []
        if numbers:
            detail.append(f"the locked cells are now {_cells(numbers)}")
        detail += [f"its cell `{cid}` was deleted" for cid in deleted]
        detail += [
            f"cell {n} (`{nb.cells[n - 1].id}`) is not one of them" for n in now if n not in numbers
        ]
        out.append(Drift(group, path, now, numbers, deleted, spec, tuple(detail)))
    return out


def _cells(numbers: tuple[int, ...]) -> str:
    return f"cell{'s' * (len(numbers) > 1)} {cell_ranges(list(numbers))}"


def _raw(doc: YamlDoc, path: YamlPath) -> Any:
    node: Any = doc.data
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
    return node


def _by_number(raw: Any) -> bool:
    """Whether a cells value is written with numbers only (`id:`/`tag:` entries don't drift)."""
    items = raw if isinstance(raw, list) else [raw]
    return bool(items) and all(
        isinstance(i, int) or (isinstance(i, str) and ":" not in i) for i in items
    )


def _corrected(
    doc: YamlDoc,
    path: YamlPath,
    numbers: tuple[int, ...],
    nb: Notebook,
    claimed: set[int],
    known: set[Any],
) -> Any:
    """The value to write at `path` so that it takes `numbers` again, in the shape it had:
    a number, a range, or a list. Markdown, empty and new cells between two of them, that no
    other part holds, stay inside the range (as they were before the edit)."""
    raw = _raw(doc, path)
    filled = with_gaps(numbers, lambda g: g not in claimed and _inside(nb.cells[g - 1], known))
    items = cell_runs(filled)
    if isinstance(raw, list) or len(items) > 1:
        return items
    return items[0]


def _inside(cell: Cell, known: set[Any]) -> bool:
    return cell.type != "code" or not cell.source.strip() or cell.id not in known


def format_spec(spec: Any) -> str:
    if isinstance(spec, list):
        return "[" + ", ".join(str(i) for i in spec) + "]"
    return str(spec)


def check_lock(
    root: Path,
    manifest: Manifest,
    doc: YamlDoc,
    nb: Notebook,
    current: dict[str, tuple[int, ...]],
    *,
    repository: Path | None = None,
) -> tuple[list[Diagnostic], frozenset[str]]:
    """NBF208 for every part whose cells are not the locked ones; nothing without a lock.
    Also the diagnostics that stale numbers cause, and so that the drift explains: those of
    `DRIFT_CASCADE`, and the parameters cell's when it moved. A lock that is not a file
    nbflow reads (nbflow.load.inputs) is NBF013.

    Runs on what the structural rules resolved, even when they found errors: drift explains
    them (a step that lost its code cells, a forgotten cell) better than they do."""
    from nbflow.load.inputs import InputRefused

    shown = str(Path(doc.path).parent / LOCK_NAME)
    try:
        locked = read_lock(root, repository)
    except InputRefused as exc:
        return [error(codes.FILE_REFUSED, f"{shown} {exc}", Location(shown, 1, 1))], frozenset()
    except ValueError:
        return [
            error(
                codes.CELL_DRIFT,
                f"{shown} is not a lock nbflow can read",
                Location(shown, 1, 1),
                hint="rewrite it with `nbflow lock`",
            )
        ], frozenset()
    if locked is None:
        return [], frozenset()
    if locked.get("notebook") != manifest.notebook:
        return [
            error(
                codes.CELL_DRIFT,
                # the lock's own text is not quoted: only the manifest and notebook ever are
                f"{shown} locks another notebook than the manifest's {manifest.notebook}",
                doc.locate(("notebook",)),
                hint="run `nbflow lock` to record the new notebook's cells",
            )
        ], frozenset()
    out: list[Diagnostic] = []
    found = drifts(locked, doc, nb, current)
    for d in found:
        key = d.path[-1]
        if d.spec is not None:
            hint = f"`{FIX_COMMAND}` writes `{key}: {d.spec_text}` and locks again"
        else:
            hint = (
                "fix the numbers (or name cells with `id:` or `tag:`), then run `nbflow lock` "
                "to record the change"
            )
        out.append(
            error(
                codes.CELL_DRIFT,
                f"{d.what} no longer holds the cells recorded in {LOCK_NAME}"
                + (": " + "; ".join(d.detail) if d.detail else ""),
                doc.locate(d.path),
                hint=hint,
            )
        )
    explained = set(DRIFT_CASCADE) if found else set()
    if any(d.group == "parameters" for d in found):
        explained |= PARAMETERS_CASCADE
    return out, frozenset(explained)


# -- writing the fix ---------------------------------------------------------------------------------


def fixed_text(text: str, edits: dict[YamlPath, Any]) -> str:
    """`text` with the values at the given paths replaced by the given cell specs, and every
    other byte (comments, quotes, order, blank lines) as it was. The values' spans come from
    ruamel.yaml's node marks."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    root = YAML(typ="rt", pure=True).compose(text)
    spans: list[tuple[int, int, str]] = []
    for path, spec in edits.items():
        node: Any = root
        key_node: Any = None
        for p in path:
            if not isinstance(node, MappingNode):
                node = None
                break
            match = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == p]
            if not match:
                node = None
                break
            key_node, node = match[0]
        if node is None or key_node is None:
            continue
        new = format_spec(spec)
        start, end = node.start_mark.index, node.end_mark.index
        if isinstance(node, SequenceNode) and not node.flow_style:
            # a block list becomes a flow list on the key's line
            start = text.index(":", key_node.end_mark.index) + 1
            end = len(text[:end].rstrip())
            new = " " + new
        spans.append((start, end, new))
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def fix_manifest(path: Path) -> list[Drift]:
    """Rewrite the cell numbers of the manifest at `path` so that each part takes the cells
    its lock recorded again (see `fixed_text`); return the drifts, fixed or not (a drift whose
    `spec` is None could not be: its cells were all deleted).
    Nothing is written without a lock or a drift, or when the manifest can't be read."""
    from nbflow.check.parse import manifest_model
    from nbflow.check.paths import shown_path
    from nbflow.check.rules import Checker
    from nbflow.load.inputs import InputRefused, repository_root
    from nbflow.load.notebook import NotebookError, load_notebook
    from nbflow.load.yaml_positions import YamlLoadError, load_file

    try:
        locked = read_lock(path.parent)
        doc = load_file(path, shown_path(path))
    except (ValueError, InputRefused, YamlLoadError):
        return []
    _, manifest = manifest_model(doc)
    if locked is None or manifest is None or locked.get("notebook") != manifest.notebook:
        return []
    nb_path = path.parent / manifest.notebook
    try:
        nb = load_notebook(nb_path, shown_path(nb_path), root=repository_root(path.parent))
    except NotebookError:
        return []
    checker = Checker(manifest, nb, doc)
    checker.run()
    r = checker.resolved
    found = drifts(locked, doc, nb, groups(nb, r.setup, r.skip, r.parameters_cell, r.steps or {}))
    edits = {d.path: d.spec for d in found if d.spec is not None}
    if edits:
        path.write_text(fixed_text(doc.text, edits), encoding="utf-8")
    return found


def prepare_notebook(manifest_path: Path) -> list[str]:
    """Give the cells of the manifest's notebook ids where it has none (nbformat < 4.5), so
    that it can be locked; return what was done, as lines to show."""
    from nbflow.check.paths import shown_path
    from nbflow.load.yaml_positions import YamlLoadError, load_file

    try:
        doc = load_file(manifest_path)
    except YamlLoadError:
        return []
    name = doc.data.get("notebook") if isinstance(doc.data, dict) else None
    if not isinstance(name, str):
        return []
    nb_path = manifest_path.parent / name
    try:
        added = add_cell_ids(nb_path)
    except (OSError, ValueError):
        return []  # validation reports the unreadable notebook
    if not added:
        return []
    return [
        f"added ids to {added} cell{'s' * (added != 1)} of {shown_path(nb_path)} "
        "(nbformat 4.5, as Jupyter does when it saves it)"
    ]
