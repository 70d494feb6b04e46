"""The validator's library API: what a Project holds, and one-pass reporting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import nbflow
from nbflow.check.project import Project
from nbflow.check.validate import validate_manifest
from nbflow.dataflow.plan import Plan
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
    assert dict(project.plan.step("train").inputs) == {"X_train": "split", "y_train": "split"}


def test_a_project_is_made_once_with_its_plan(tmp_path: Path) -> None:
    # the plan is a field like the others, not an optional one filled in after construction
    plan = {f.name: f for f in dataclasses.fields(Project)}["plan"]
    assert plan.default is dataclasses.MISSING and plan.default_factory is dataclasses.MISSING
    _, project = validate_manifest(_write(tmp_path, BASE))
    assert project is not None and isinstance(project.plan, Plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.plan = project.plan  # type: ignore[misc]
    # nothing sets a field of frozen data after it was made (the manifest's pydantic validators
    # fill in inferred types while the model is being made: that is construction)
    package = Path(nbflow.__file__).parent
    setters = [
        p.name for p in package.rglob("*.py") if "object.__setattr__" in p.read_text("utf-8")
    ]
    assert setters == ["manifest.py"]


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
