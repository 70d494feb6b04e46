"""Edits of `nbflow.yaml` that move cells between its parts: a step (existing or new), `setup`,
`skip` and the parameters cell.

The manifest is edited as the user wrote it (ruamel.yaml round trip): comments, key order,
quoting and the form of untouched cell lists are kept, and only the lists that change are
rewritten. A cell lives in one place, so assigning cells first takes them out of wherever
they were; a step left with no cells is removed, as its `cells` could not be empty.

    text = assign(manifest_text, notebook, cells=[7, 8], target=Target.step("features"))

This is the one implementation of these edits: the JupyterLab extension calls it through its
server, never edits the YAML itself.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow.errors import UsageError
from nbflow.load.notebook import Notebook, cell_runs

__all__ = ["Target", "assign", "assign_file", "parse_target"]

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")
_KINDS = ("step", "setup", "skip", "parameters")


@dataclass(frozen=True)
class Target:
    """Where cells go: `step` (with a step name, created when new), `setup`, `skip` or
    `parameters` (exactly one cell)."""

    kind: str
    step: str | None = None

    @classmethod
    def of_step(cls, name: str) -> Target:
        return cls("step", name)

    def __str__(self) -> str:
        return f"step `{self.step}`" if self.kind == "step" else self.kind


def parse_target(text: str) -> Target:
    """`setup`, `skip`, `parameters` or `step:<name>`."""
    kind, _, name = text.partition(":")
    if kind not in _KINDS or (kind == "step") != bool(name):
        raise UsageError(f"unknown target `{text}`: use setup, skip, parameters or step:<name>")
    return Target(kind, name or None)


def assign(text: str, nb: Notebook, cells: Iterable[int], target: Target) -> str:
    """The manifest `text` with `cells` (1-based numbers, counting every cell of `nb`) moved
    to `target`. Raises UsageError for a request that cannot be done: cells that don't exist,
    a step name that is not a DNS-1123 label, several cells for the parameters cell, a manifest
    that is not a YAML mapping with `steps`."""
    from nbflow.check.manifest import DNS_LABEL

    wanted = sorted(set(cells))
    if not wanted:
        raise UsageError("no cells to assign")
    bad = [c for c in wanted if nb.cell(c) is None]
    if bad:
        raise UsageError(f"cell {bad[0]} does not exist: {nb.path} has {len(nb.cells)} cells")
    if target.kind not in _KINDS:
        raise UsageError(f"unknown target `{target.kind}`")
    if target.kind == "step" and (not target.step or not DNS_LABEL.match(target.step)):
        raise UsageError(
            f"step name `{target.step}` is not a DNS-1123 label: lowercase letters, digits "
            "and `-`, starting and ending with a letter or digit"
        )
    if target.kind == "parameters" and len(wanted) != 1:
        raise UsageError("the parameters cell is one cell: select exactly one")

    yaml = _yaml(text)
    try:
        data = yaml.load(text)
    except Exception as exc:  # ruamel's errors have no common base worth naming here
        raise UsageError(f"the manifest is not valid YAML, fix it first: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        raise UsageError("the manifest has no `steps` mapping to edit: fix it first")
    steps = data["steps"]
    taken = set(wanted)

    # out of every place they are in now
    for key in ("setup", "skip"):
        if key in data:
            kept = _without(data[key], taken, nb)
            if kept is None:
                del data[key]
            elif kept is not data[key]:
                data[key] = kept
    if "parametersCell" in data and _numbers(data["parametersCell"], nb) & taken:
        del data["parametersCell"]
    for name in list(steps):
        step = steps[name]
        if not isinstance(step, dict) or "cells" not in step:
            continue
        kept = _without(step["cells"], taken, nb)
        if kept is None:
            if not (target.kind == "step" and target.step == name):
                del steps[name]
            else:
                step["cells"] = None
        elif kept is not step["cells"]:
            step["cells"] = kept

    # into the target
    if target.kind == "parameters":
        _put(data, "parametersCell", wanted[0], before="steps")
    elif target.kind in ("setup", "skip"):
        current = data.get(target.kind)
        value = _with(current, wanted, nb)
        if target.kind == "setup":
            _put(data, "setup", value, before="steps")
        else:
            _put(data, "skip", value, after="steps")
    else:
        assert target.step is not None
        if target.step in steps:
            step = steps[target.step]
            step["cells"] = _with(step.get("cells"), wanted, nb)
        else:
            from ruamel.yaml.comments import CommentedMap

            new = CommentedMap()
            new["cells"] = _with(None, wanted, nb)
            steps.insert(_step_position(steps, wanted[0], nb), target.step, new)

    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def assign_file(
    manifest: Path,
    cells: Iterable[int],
    target: Target,
    *,
    notebook_text: str | None = None,
    expected_text: str | None = None,
) -> str:
    """Apply `assign` to the manifest file and write it; returns the new text. `notebook_text`
    is the notebook as the editor shows it (cell numbers are those on screen). With
    `expected_text`, refuse (UsageError) when the file no longer holds it: someone changed it
    since it was read, and writing would lose that change."""
    from nbflow.check.validate import shown_path
    from nbflow.load.notebook import NotebookError, load_notebook
    from nbflow.load.yaml_positions import YamlLoadError, load_text

    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {shown_path(manifest)}: {exc.strerror}") from None
    if expected_text is not None and text != expected_text:
        raise UsageError(
            f"{shown_path(manifest)} changed on disk since it was read: reload it first"
        )
    try:
        name = load_text(text, shown_path(manifest)).data.get("notebook")
    except (YamlLoadError, AttributeError):
        name = None
    if not isinstance(name, str):
        raise UsageError(f"{shown_path(manifest)} names no notebook: fix it first")
    nb_path = manifest.parent / name
    try:
        nb = load_notebook(nb_path, shown_path(nb_path), text=notebook_text)
    except NotebookError as exc:
        raise UsageError(exc.diagnostic.message) from None
    new = assign(text, nb, cells, target)
    if new != text:
        manifest.write_text(new, encoding="utf-8")
    return new


# -- cell lists -------------------------------------------------------------------------------


def _items(spec: Any) -> list[Any]:
    if spec is None:
        return []
    return list(spec) if isinstance(spec, list) else [spec]


def _item_numbers(item: Any, nb: Notebook) -> list[int]:
    """The cells one entry names; [] for an entry that names none (it is validation's job to
    say so)."""
    if isinstance(item, bool):
        return []
    if isinstance(item, int):
        return [item]
    if isinstance(item, str):
        if item.strip().startswith("id:"):
            cell = nb.by_id(item.strip()[3:])
            return [cell.number] if cell else []
        m = _RANGE.match(item)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            return list(range(lo, hi + 1))
    return []


def _numbers(spec: Any, nb: Notebook) -> set[int]:
    return {n for item in _items(spec) for n in _item_numbers(item, nb)}


def _without(spec: Any, taken: set[int], nb: Notebook) -> Any:
    """`spec` less the `taken` cells: the same object when none of them is in it, None when
    nothing is left; entries that don't name a taken cell are kept as written."""
    items = _items(spec)
    if not any(set(_item_numbers(i, nb)) & taken for i in items):
        return spec
    out: list[Any] = []
    for item in items:
        numbers = _item_numbers(item, nb)
        if not set(numbers) & taken:
            out.append(item)
        else:
            out.extend(cell_runs([n for n in numbers if n not in taken]))
    return _shaped(out, spec) if out else None


def _with(spec: Any, new: Sequence[int], nb: Notebook) -> Any:
    """`spec` plus the `new` cells: `id:` entries kept, numbers and ranges merged."""
    items = _items(spec)
    ids = [i for i in items if isinstance(i, str) and i.strip().startswith("id:")]
    numbers = {n for i in items if i not in ids for n in _item_numbers(i, nb)} | set(new)
    return _shaped([*ids, *cell_runs(sorted(numbers))], spec)


def _shaped(items: list[Any], like: Any) -> Any:
    """One entry as a scalar (`cells: 5-6`), several as a flow list (`[2, 5-6]`), as a block
    list when the old value was one."""
    from ruamel.yaml.comments import CommentedSeq

    if len(items) == 1 and not isinstance(like, list):
        return items[0]
    seq = CommentedSeq(items)
    block = isinstance(like, CommentedSeq) and not like.fa.flow_style()
    if not block:
        seq.fa.set_flow_style()
    return seq


# -- placing keys -----------------------------------------------------------------------------


def _put(
    data: Any, key: str, value: Any, *, before: str | None = None, after: str | None = None
) -> None:
    if key in data:
        data[key] = value
        return
    keys = list(data)
    if before in keys:
        data.insert(keys.index(before), key, value)
    elif after in keys:
        data.insert(keys.index(after) + 1, key, value)
    else:
        data[key] = value


def _step_position(steps: Any, first: int, nb: Notebook) -> int:
    """Where a new step goes among the steps: after the last one whose cells start before it,
    so that the manifest reads in notebook order."""
    position = 0
    for i, name in enumerate(steps):
        step = steps[name]
        numbers = _numbers(step.get("cells") if isinstance(step, dict) else None, nb)
        if numbers and min(numbers) < first:
            position = i + 1
    return position


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt", pure=True)
    y.preserve_quotes = True
    y.width = 4096  # never rewrap a long line the user wrote on one
    mapping, sequence, offset = _indents(text)
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    return y


def _indents(text: str) -> tuple[int, int, int]:
    """The manifest's own indentation (mapping, sequence, dash offset), so that the lines
    the edit does not touch come back as they were."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = 2
    for prev, line in itertools.pairwise(lines):
        if prev.rstrip().endswith(":") and not line.lstrip().startswith("- "):
            step = len(line) - len(line.lstrip()) - (len(prev) - len(prev.lstrip()))
            if step > 0:
                mapping = step
                break
    offset = 0
    for prev, line in itertools.pairwise(lines):
        if prev.rstrip().endswith(":") and line.lstrip().startswith("- "):
            offset = max(0, (len(line) - len(line.lstrip())) - (len(prev) - len(prev.lstrip())))
            break
    return mapping, max(mapping, offset + 2), offset
