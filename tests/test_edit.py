"""nbflow.authoring.edit: cells moved between steps, setup, skip and the parameters cell, with
the rest of the manifest kept as written."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from nbflow.authoring.edit import Target, assign, assign_file, parse_target
from nbflow.check.validate import validate_manifest
from nbflow.errors import UsageError
from nbflow.load.notebook import load_notebook
from tests.support.projects import DEMO_CELLS, write_project

CELLS = DEMO_CELLS
MANIFEST = """\
apiVersion: nbflow/v1
# the pipeline's name, also its KFP name
name: demo
notebook: nb.ipynb
setup: 1
steps:
  load:
    cells: 4-5   # the data
  fit:
    cells: [6]
    after: [load]
skip: [7]
parameters:
  n: {type: int, default: 3}
metrics:
  total: maximize
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, CELLS, MANIFEST)


def _edit(root: Path, cells: list[int], target: Target) -> str:
    nb = load_notebook(root / "nb.ipynb", "nb.ipynb")
    return assign((root / "nbflow.yaml").read_text(), nb, cells, target)


def _changed(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), n=0, lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_new_step_splits_a_range_and_goes_in_notebook_order(project: Path) -> None:
    new = _edit(project, [5], Target.of_step("transform"))
    assert _changed(MANIFEST, new) == [
        "-    cells: 4-5   # the data",
        "+    cells: 4     # the data",  # the comment keeps its column
        "+  transform:",
        "+    cells: 5",
    ]
    (project / "nbflow.yaml").write_text(new)
    report, built = validate_manifest(project / "nbflow.yaml")
    assert report.ok, [d.message for d in report.diagnostics]
    assert built is not None and [s.name for s in built.steps] == ["load", "transform", "fit"]


def test_existing_step_takes_cells_and_an_emptied_step_goes(project: Path) -> None:
    new = _edit(project, [6], Target.of_step("load"))
    assert _changed(MANIFEST, new) == [
        "-    cells: 4-5   # the data",
        "-  fit:",
        "-    cells: [6]",
        "-    after: [load]",
        "+    cells: 4-6   # the data",
    ]


def test_setup_skip_and_parameters_cell(project: Path) -> None:
    assert _changed(MANIFEST, _edit(project, [4], Target("setup"))) == [
        "-setup: 1",
        "+setup: [1, 4]",
        "-    cells: 4-5   # the data",
        "+    cells: 5     # the data",
    ]
    assert _changed(MANIFEST, _edit(project, [6], Target("skip"))) == [
        "-  fit:",
        "-    cells: [6]",
        "-    after: [load]",
        "-skip: [7]",
        "+skip: [6-7]",
    ]
    new = _edit(project, [3], Target("parameters"))
    assert _changed(MANIFEST, new) == ["+parametersCell: 3"]
    # and back out of it: the key goes
    nb = load_notebook(project / "nb.ipynb", "nb.ipynb")
    assert "parametersCell" not in assign(new, nb, [3], Target("skip"))


def test_a_key_that_is_missing_is_added_where_it_reads_well(tmp_path: Path) -> None:
    root = write_project(tmp_path, CELLS, "name: demo\nsteps:\n  all:\n    cells: 4-7\n")
    new = _edit(root, [1], Target("setup"))
    assert "name: demo\nsetup: 1\nsteps:\n" in new
    assert _edit(root, [7], Target("skip")).endswith("    cells: 4-6\nskip: 7\n")


def test_id_entries_are_kept_unless_their_cell_moves(tmp_path: Path) -> None:
    root = write_project(
        tmp_path, CELLS, "name: demo\nsteps:\n  a:\n    cells: [id:cell-4, 5]\n  b:\n    cells: 6\n"
    )
    assert "cells: [id:cell-4, 5-6]" in _edit(root, [6], Target.of_step("a"))
    assert "cells: [5]\n" in _edit(root, [4], Target.of_step("b"))


def test_block_lists_stay_block_lists(tmp_path: Path) -> None:
    manifest = "name: demo\nsteps:\n  a:\n    cells:\n      - 4\n      - 5\n"
    root = write_project(tmp_path, CELLS, manifest)
    new = _edit(root, [6], Target.of_step("a"))
    assert new.endswith("    cells:\n      - 4-6\n"), new


def test_requests_that_cannot_be_done(project: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        _edit(project, [99], Target("skip"))
    with pytest.raises(UsageError, match="DNS-1123"):
        _edit(project, [4], Target.of_step("Bad_Name"))
    with pytest.raises(UsageError, match="exactly one"):
        _edit(project, [3, 4], Target("parameters"))
    with pytest.raises(UsageError, match="no cells"):
        _edit(project, [], Target("skip"))
    (project / "nbflow.yaml").write_text("steps: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        _edit(project, [4], Target("skip"))


def test_parse_target() -> None:
    assert parse_target("step:train") == Target("step", "train")
    assert parse_target("skip") == Target("skip")
    for bad in ("step", "setup:x", "nothing"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_assign_file_uses_the_unsaved_notebook_and_refuses_a_stale_manifest(
    project: Path,
) -> None:
    manifest = project / "nbflow.yaml"
    on_screen = json.loads((project / "nb.ipynb").read_text())
    # the user inserted a cell above cell 4 without saving: cell 8 exists on screen only
    on_screen["cells"].insert(
        3,
        {
            "cell_type": "code",
            "id": "new",
            "metadata": {},
            "source": "m = 1",
            "outputs": [],
            "execution_count": None,
        },
    )
    new = assign_file(manifest, [8], Target("skip"), notebook_text=json.dumps(on_screen))
    assert "skip: [7-8]" in new and manifest.read_text() == new
    with pytest.raises(UsageError, match="changed on disk"):
        assign_file(manifest, [4], Target("skip"), expected_text=MANIFEST)
    assert manifest.read_text() == new
