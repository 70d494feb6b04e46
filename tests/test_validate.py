"""The validator's library API: what a Project holds, and one-pass reporting."""

from __future__ import annotations

from pathlib import Path

from nbflow.check.validate import validate_manifest
from tests.support.cases import CASES

BASE = (CASES / "valid" / "minimal" / "nbflow.yaml").read_text()
NOTEBOOK = str(CASES / "notebooks" / "base.ipynb")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nbflow.yaml"
    path.write_text(text.replace("../../notebooks/base.ipynb", NOTEBOOK))
    return path


def test_step_resources_override_the_defaults_key_by_key(tmp_path: Path) -> None:
    text = BASE.replace(
        "image: python:3.11-slim\n", "image: python:3.11-slim\nresources: {cpu: '2', memory: 4Gi}\n"
    )
    text = text.replace("    cells: 7\n", "    cells: 7\n    resources: {gpu: 1}\n")
    report, project = validate_manifest(_write(tmp_path, text))
    assert project is not None, [d.message for d in report.diagnostics]
    train = project.step("train").resources
    assert train is not None and (train.cpu, train.memory, train.gpu) == ("2", "4Gi", 1)
    load = project.step("load").resources
    assert load is not None and (load.cpu, load.gpu) == ("2", None)


def test_a_typo_does_not_hide_the_problems_behind_it(tmp_path: Path) -> None:
    text = BASE.replace("    cells: 8\n", "    cells: 8\n    after: [trian]\n    retires: 2\n")
    report, _ = validate_manifest(_write(tmp_path, text))
    assert sorted(d.code for d in report.diagnostics) == ["NBF101", "NBF301"]


def test_project_resolves_cells_parameters_and_plan(tmp_path: Path) -> None:
    report, project = validate_manifest(_write(tmp_path, BASE))
    assert project is not None and report.ok
    assert project.setup == (2,) and project.parameters_cell == 3 and project.skip == (9,)
    assert [(s.name, s.cells) for s in project.steps] == [
        ("load", (4,)),
        ("split", (6,)),
        ("train", (7,)),
        ("evaluate", (8,)),
    ]
    assert {p.name: (p.type, p.default) for p in project.parameters} == {
        "C": ("float", 1.0),
        "gamma": ("float", 0.001),
        "kernel": ("str", "rbf"),
    }
    assert project.plan is not None
    assert dict(project.plan.step("train").inputs) == {"X_train": "split", "y_train": "split"}


def test_a_requirements_file_is_checked_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# pinned\nnumpy==2.1  # arrays\n\n  scikit-learn >= 1.5\n  pandas=2.2\nfoo[bar]>=1,<2 ; python_version >= '3.9'\n"
    )
    text = BASE.replace(
        "image: python:3.11-slim\n", "image: python:3.11-slim\nrequirements: requirements.txt\n"
    )
    report, project = validate_manifest(_write(tmp_path, text))
    (bad,) = report.diagnostics
    assert project is None and bad.code == "NBF608" and "`pandas=2.2`" in bad.message
    assert (Path(bad.location.file).name, bad.location.line, bad.location.column) == (
        "requirements.txt",
        5,
        3,
    )

    from nbflow.cli.reporters import render_text

    assert "  pandas=2.2\n" in render_text(report, color=False)  # the code frame shows the line

    (tmp_path / "requirements.txt").write_text(
        "numpy==2.1  # arrays\nfoo[bar]>=1,<2 ; python_version >= '3.9'\n"
    )
    report, project = validate_manifest(_write(tmp_path, text))
    assert project is not None, [d.message for d in report.diagnostics]
    assert project.requirements == ("numpy==2.1", "foo[bar]>=1,<2 ; python_version >= '3.9'")


def test_unsaved_manifest_and_notebook_text_are_validated_instead_of_the_files(
    tmp_path: Path,
) -> None:
    import json

    from tests.support.projects import notebook_json, write_project

    root = write_project(
        tmp_path, ["x = 1", "y = x + 1"], "name: demo\nsteps:\n  a: {cells: 1-2}\n"
    )
    manifest = root / "nbflow.yaml"
    assert validate_manifest(manifest)[0].ok
    # on screen, the notebook lost its second cell and the manifest names a third
    report, _ = validate_manifest(
        manifest,
        notebook_text=json.dumps(notebook_json(["x = 1"])),
        manifest_text=manifest.read_text().replace("1-2", "1-3"),
    )
    from nbflow import codes

    assert [d.code for d in report.errors] == [codes.CELL_OUT_OF_RANGE.id]
    assert "has 1 cells" in report.errors[0].message
    assert validate_manifest(manifest)[0].ok  # the files themselves are untouched
