"""nbflow lock and the cell-drift check (NBF208)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from tests.support.cases import CASES
from tests.support.cli import run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(CASES / "notebooks" / "base.ipynb", tmp_path / "nb.ipynb")
    text = (
        (CASES / "valid" / "minimal" / "nbflow.yaml")
        .read_text()
        .replace("../../notebooks/base.ipynb", "nb.ipynb")
    )
    (tmp_path / "nbflow.yaml").write_text(text)
    return tmp_path


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def test_lock_records_each_steps_cell_ids(capsys, project: Path) -> None:
    r = run_cli(capsys, "lock", str(project))
    assert r.code == 0 and "locked:" in r.out
    lock = json.loads((project / "nbflow.lock.json").read_text())
    assert lock["cells"]["step:train"] == ["cell-7"]
    assert lock["cells"]["setup"] == ["cell-2"] and lock["cells"]["parameters"] == ["cell-3"]
    assert run_cli(capsys, "validate", str(project)).code == 0


def test_an_inserted_cell_is_drift_and_relocking_clears_it(capsys, project: Path) -> None:
    run_cli(capsys, "lock", str(project))

    def insert(nb) -> None:  # type: ignore[no-untyped-def]
        cell = nbformat.v4.new_code_cell("print('new')")
        cell["id"] = "new-cell"
        nb.cells.insert(5, cell)

    _edit(project / "nb.ipynb", insert)
    r = run_cli(capsys, "validate", "--format", "json", str(project))
    drift = [d for d in json.loads(r.out)["diagnostics"] if d["code"] == "NBF208"]
    assert r.code == 1
    assert {d["location"]["line"] for d in drift} == {
        10,
        12,
        14,
        15,
    }  # split, train, evaluate, skip
    assert any("the locked cells are now cell 8" in d["message"] for d in drift)
    assert any("cell 6 (`new-cell`) is not one of them" in d["message"] for d in drift)
    # the user fixes the numbers and records the new layout
    text = (project / "nbflow.yaml").read_text()
    text = text.replace("cells: 6\n", "cells: 7\n").replace(
        "cells: 7\n  evaluate", "cells: 8\n  evaluate"
    )
    text = text.replace("    cells: 8\nskip: [9]", "    cells: 9\nskip: [6, 10]")
    (project / "nbflow.yaml").write_text(text)
    assert run_cli(capsys, "lock", str(project)).code == 0
    assert run_cli(capsys, "validate", "--strict", str(project)).code == 0


def test_editing_code_is_not_drift(capsys, project: Path) -> None:
    run_cli(capsys, "lock", str(project))

    def change(nb) -> None:  # type: ignore[no-untyped-def]
        nb.cells[6].source += "\n# tuned"

    _edit(project / "nb.ipynb", change)
    assert run_cli(capsys, "validate", str(project)).code == 0


def test_unreadable_lock_and_notebook_without_ids(capsys, project: Path) -> None:
    (project / "nbflow.lock.json").write_text("{not json")
    r = run_cli(capsys, "validate", str(project))
    assert r.code == 1 and "NBF208" in r.out and "not a lock nbflow can read" in r.out
    (project / "nbflow.lock.json").unlink()


def test_lock_adds_ids_to_a_notebook_older_than_4_5(capsys, project: Path) -> None:
    shutil.copy(CASES / "notebooks" / "no-ids.ipynb", project / "nb.ipynb")
    r = run_cli(capsys, "lock", str(project))
    assert r.code == 0, r.err
    assert "added ids to 9 cells of" in r.out and "locked:" in r.out
    raw = json.loads((project / "nb.ipynb").read_text())
    assert raw["nbformat_minor"] == 5
    ids = [c["id"] for c in raw["cells"]]
    assert len(set(ids)) == 9 and all(len(i) == 8 for i in ids)
    # the second time there is nothing to add, and the notebook is left as it is
    before = (project / "nb.ipynb").read_bytes()
    r = run_cli(capsys, "lock", str(project))
    assert "added ids" not in r.out and (project / "nb.ipynb").read_bytes() == before
    assert run_cli(capsys, "validate", "--strict", str(project)).code == 0


# -- lock --fix on the digits example: the manifest follows the notebook ---------------------------

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"


@pytest.fixture
def digits(tmp_path: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "digits"
    shutil.copytree(DIGITS, folder)
    text = (folder / "nbflow.yaml").read_text()
    text = text.replace("    cells: 5-6\n", "    cells: 5-6  # load, and look at a few\n")
    (folder / "nbflow.yaml").write_text(text)
    assert run_cli(capsys, "lock", str(folder)).code == 0
    return folder


def _codes(capsys, folder: Path) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    r = run_cli(capsys, "validate", "--format", "json", str(folder))
    return [(d["code"], d["location"]["line"]) for d in json.loads(r.out)["diagnostics"]]


def _fix_and_check(capsys, folder: Path, replacements: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    before = (folder / "nbflow.yaml").read_text()
    expected = before
    for old, new in replacements:
        assert old in expected
        expected = expected.replace(old, new)
    r = run_cli(capsys, "lock", "--fix", str(folder))
    assert r.code == 0, r.err
    assert (folder / "nbflow.yaml").read_text() == expected  # byte for byte, comment kept
    assert run_cli(capsys, "validate", "--strict", str(folder)).code == 0
    # fixed and locked: a second run changes nothing
    assert "fixed:" not in run_cli(capsys, "lock", "--fix", str(folder)).out
    assert (folder / "nbflow.yaml").read_text() == expected


def test_inserted_markdown_cell_one_diagnostic_per_part_then_fix(capsys, digits: Path) -> None:
    def insert(nb) -> None:  # type: ignore[no-untyped-def]
        cell = nbformat.v4.new_markdown_cell("A note on the data")
        cell["id"] = "note"
        nb.cells.insert(3, cell)

    _edit(digits / "digits.ipynb", insert)
    # one NBF208 for each part that moved, nothing else (no NBF205/NBF207 cascade)
    assert _codes(capsys, digits) == [
        ("NBF208", 11),
        ("NBF208", 13),
        ("NBF208", 15),
        ("NBF208", 20),
        ("NBF208", 21),
    ]
    r = run_cli(capsys, "validate", str(digits))
    assert "`nbflow lock --fix` writes `cells: 6-7` and locks again" in r.out
    assert "the locked cells are now cells 6-7" in r.out
    _fix_and_check(
        capsys,
        digits,
        [
            ("cells: 5-6  #", "cells: 6-7  #"),
            ("cells: 8\n", "cells: 9\n"),
            ("cells: 10\n", "cells: 11\n"),
            ("cells: 12-13\n", "cells: 13-14\n"),
            ("skip: [14]", "skip: [15]"),
        ],
    )


def test_deleted_cell_fix(capsys, digits: Path) -> None:
    def delete(nb) -> None:  # type: ignore[no-untyped-def]
        del nb.cells[5]  # cell 6, the second of `load`

    _edit(digits / "digits.ipynb", delete)
    r = run_cli(capsys, "validate", str(digits))
    assert r.code == 1 and "its cell `c06` was deleted" in r.out
    assert "NBF205" not in r.out and "NBF202" not in r.out
    _fix_and_check(
        capsys,
        digits,
        [
            ("cells: 5-6  #", "cells: 5  #"),
            ("cells: 8\n", "cells: 7\n"),
            ("cells: 10\n", "cells: 9\n"),
            ("cells: 12-13\n", "cells: 11-12\n"),
            ("skip: [14]", "skip: [13]"),
        ],
    )


def test_moved_cell_fix(capsys, digits: Path) -> None:
    def move(nb) -> None:  # type: ignore[no-untyped-def]
        nb.cells.append(nb.cells.pop(12))  # cell 13 (evaluate's plot) after the scratch cell

    _edit(digits / "digits.ipynb", move)
    assert [c for c, _ in _codes(capsys, digits)] == ["NBF208", "NBF208"]
    _fix_and_check(
        capsys,
        digits,
        [("cells: 12-13\n", "cells: [12, 14]\n"), ("skip: [14]", "skip: [13]")],
    )


def test_a_cell_whose_id_changed_is_found_by_its_source(capsys, digits: Path) -> None:
    def cut_and_paste(nb) -> None:  # type: ignore[no-untyped-def]
        cell = nb.cells.pop(9)  # train's cell, pasted back above the Train heading
        cell["id"] = "pasted"
        nb.cells.insert(8, cell)

    _edit(digits / "digits.ipynb", cut_and_paste)
    _fix_and_check(capsys, digits, [("cells: 10\n", "cells: 9\n")])


def test_a_part_whose_cells_were_all_deleted_is_left_to_the_user(capsys, digits: Path) -> None:
    def delete(nb) -> None:  # type: ignore[no-untyped-def]
        del nb.cells[7]  # preprocess's only cell

    _edit(digits / "digits.ipynb", delete)
    before = (digits / "nbflow.yaml").read_text()
    lock = (digits / "nbflow.lock.json").read_text()
    r = run_cli(capsys, "lock", "--fix", str(digits))
    assert "step `preprocess`: choose its cells by hand, then lock" in r.err
    assert r.code == 1 and "locked:" not in r.out
    assert (digits / "nbflow.lock.json").read_text() == lock  # the drift is not recorded
    after = (digits / "nbflow.yaml").read_text()
    assert "    cells: 9\n" in after and after != before  # the others followed
    assert "preprocess:\n    cells: 8\n" in after  # this one is as it was


def test_block_list_is_rewritten_as_a_flow_list(capsys, digits: Path) -> None:
    text = (digits / "nbflow.yaml").read_text().replace("skip: [14]", "skip:\n  - 14  # scratch")
    (digits / "nbflow.yaml").write_text(text)
    assert run_cli(capsys, "lock", str(digits)).code == 0

    def insert(nb) -> None:  # type: ignore[no-untyped-def]
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("top"))

    _edit(digits / "digits.ipynb", insert)
    assert run_cli(capsys, "lock", "--fix", str(digits)).code == 0
    out = (digits / "nbflow.yaml").read_text()
    assert "skip: [15]\nparameters:" in out and "setup: 3\n" in out
    assert run_cli(capsys, "validate", "--strict", str(digits)).code == 0


def test_a_kale_notebook_without_ids_is_locked(capsys, tmp_path: Path) -> None:
    # Kale 2.3.0's own test notebook: nbformat 4.5 in name, but its cells have no ids
    src = Path(__file__).resolve().parent / "kale_cases" / "kale-upstream-mount-pvc"
    shutil.copy(src / "mount_pvc.ipynb", tmp_path / "mount_pvc.ipynb")
    assert run_cli(capsys, "init", str(tmp_path / "mount_pvc.ipynb")).code == 0
    r = run_cli(capsys, "lock", str(tmp_path))
    assert r.code == 0 and "added ids to 3 cells" in r.out, r.err
    assert all(c.get("id") for c in json.loads((tmp_path / "mount_pvc.ipynb").read_text())["cells"])
    assert run_cli(capsys, "validate", "--strict", str(tmp_path)).code == 0


def test_pre_commit_hook_runs_lock_fix() -> None:
    from ruamel.yaml import YAML

    from nbflow.cli.main import parser

    hooks = YAML(typ="safe").load(Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml")
    (hook,) = [h for h in hooks if h["id"] == "nbflow-lock-fix"]
    argv = [*hook["entry"].split()[1:], *hook["args"]]
    args = parser().parse_args(argv)
    assert args.command == "lock" and args.fix and args.paths == ["."]


def test_parameters_cell_number_follows_too(capsys, digits: Path) -> None:
    text = (
        (digits / "nbflow.yaml").read_text().replace("setup: 2\n", "setup: 2\nparametersCell: 3\n")
    )
    (digits / "nbflow.yaml").write_text(text)
    assert run_cli(capsys, "lock", str(digits)).code == 0

    def insert(nb) -> None:  # type: ignore[no-untyped-def]
        nb.cells.insert(2, nbformat.v4.new_markdown_cell("About the parameters"))

    _edit(digits / "digits.ipynb", insert)
    r = run_cli(capsys, "validate", str(digits))
    assert "`nbflow lock --fix` writes `parametersCell: 4`" in r.out and "NBF206" not in r.out
    # moved the other way, it points at the setup cell: no NBF204/NBF40x cascade either
    _edit(digits / "digits.ipynb", lambda nb: nb.cells.pop(2))
    _edit(digits / "digits.ipynb", lambda nb: nb.cells.insert(1, nbformat.v4.new_code_cell("")))
    r = run_cli(capsys, "validate", "--format", "json", str(digits))
    assert {d["code"] for d in json.loads(r.out)["diagnostics"]} == {"NBF208"}
    _edit(digits / "digits.ipynb", lambda nb: nb.cells.pop(1))
    _edit(digits / "digits.ipynb", insert)
    _fix_and_check(
        capsys,
        digits,
        [
            ("parametersCell: 3\n", "parametersCell: 4\n"),
            ("cells: 5-6  #", "cells: 6-7  #"),
            ("cells: 8\n", "cells: 9\n"),
            ("cells: 10\n", "cells: 11\n"),
            ("cells: 12-13\n", "cells: 13-14\n"),
            ("skip: [14]", "skip: [15]"),
        ],
    )


@pytest.mark.parametrize(
    ("written", "spec", "expected"),
    [
        ("    cells: 5-6  # look\n", 7, "    cells: 7  # look\n"),
        ("    cells: '5-6'\n", "8-9", "    cells: 8-9\n"),
        ('    cells: "5"  # q\n', [8, "10-11"], "    cells: [8, 10-11]  # q\n"),
        ("    cells: [5, 7-8]   # spaced\n", [6, "8-9"], "    cells: [6, 8-9]   # spaced\n"),
        ("    cells:\n      - 5\n      - 7\n", [6, 8], "    cells: [6, 8]\n"),
        ("    {cells: 5, after: [a]}\n", 9, "    {cells: 9, after: [a]}\n"),
    ],
)
def test_fixed_text_changes_only_the_value(written: str, spec: object, expected: str) -> None:
    from nbflow.check.lock import fixed_text
    from nbflow.load.yaml_positions import load_text

    head = "# top comment\napiVersion: nbflow/v1\nsteps:\n  load:\n"
    tail = "  train:  # keep\n    cells: 12\n"
    if written.lstrip().startswith("{"):
        head, written, expected = (
            head[:-1],
            written.replace("    ", " ", 1),
            expected.replace("    ", " ", 1),
        )
    out = fixed_text(head + written + tail, {("steps", "load", "cells"): spec})
    assert out == head + expected + tail
    assert load_text(out, "m.yaml").data["steps"]["load"]["cells"] == spec


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # a RecursionError in json.loads, once a traceback
        json.dumps({"version": 1, "notebook": "nb.ipynb", "cells": {"step:train": 7}}),
        json.dumps({"version": 1, "notebook": "nb.ipynb", "cells": {"step:train": [7]}}),
        json.dumps({"version": 1, "notebook": ["nb.ipynb"], "cells": {}}),
        json.dumps({"version": 1, "notebook": "nb.ipynb", "cells": []}),
        '{"version": 1, "notebook": "nb.ipynb", "cells": {}, "pad": "' + "x" * 5 * 2**20 + '"}',
    ],
    ids=["deep", "int-cells", "int-ids", "list-notebook", "list-cells", "too-large"],
)
def test_a_lock_of_any_shape_is_a_diagnostic(capsys, project: Path, text: str) -> None:
    (project / "nbflow.lock.json").write_text(text)
    r = run_cli(capsys, "validate", str(project))
    assert r.code == 1 and "not a lock nbflow can read" in r.out, r.out + r.err
    assert "Traceback" not in r.out + r.err
