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
    assert any("its cell `cell-7` is now cell 8" in d["message"] for d in drift)
    assert any("it now takes cell 6 (`new-cell`)" in d["message"] for d in drift)
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
    shutil.copy(CASES / "notebooks" / "no-ids.ipynb", project / "nb.ipynb")
    r = run_cli(capsys, "lock", str(project))
    assert r.code == 2 and "cells without ids" in r.err


def test_lock_replaces_a_symlink_rather_than_writing_through_it(
    capsys, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A repository's `nbflow.lock.json` may be a symlink to any file the user can write
    (~/.bashrc): `nbflow lock` replaces the link with the lock, leaving its target alone."""
    victim = tmp_path_factory.mktemp("outside") / "victim"
    victim.write_text("keep me\n")
    (project / "nbflow.lock.json").symlink_to(victim)
    r = run_cli(capsys, "lock", str(project))
    assert r.code == 0, r.out + r.err
    assert victim.read_text() == "keep me\n"
    lock = project / "nbflow.lock.json"
    assert not lock.is_symlink() and json.loads(lock.read_text())["cells"]
    assert sorted(p.name for p in project.iterdir()) == [
        "nb.ipynb",
        "nbflow.lock.json",
        "nbflow.yaml",
    ]
