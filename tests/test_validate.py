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
NOTEBOOK = CASES / "notebooks" / "base.ipynb"


def _write(tmp_path: Path, text: str) -> Path:
    """The manifest `text` in tmp_path, beside a copy of its notebook (a manifest names only
    files of its own folder outside git)."""
    (tmp_path / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    path = tmp_path / "nbflow.yaml"
    path.write_text(text.replace("../../notebooks/base.ipynb", NOTEBOOK.name))
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
    assert project is None and bad.code == "NBF608" and "line 5 of " in bad.message
    assert (Path(bad.location.file).name, bad.location.line, bad.location.column) == (
        "requirements.txt",
        5,
        3,
    )

    from nbflow.cli.reporters import render_text

    # named by its line, never quoted: no message or code frame shows a requirements file
    assert "pandas" not in render_text(report, color=False)

    (tmp_path / "requirements.txt").write_text(
        "numpy==2.1  # arrays\nfoo[bar]>=1,<2 ; python_version >= '3.9'\n"
    )
    report, project = validate_manifest(_write(tmp_path, text))
    assert project is not None, [d.message for d in report.diagnostics]
    assert project.requirements == ("numpy==2.1", "foo[bar]>=1,<2 ; python_version >= '3.9'")


def test_the_manifest_must_be_a_small_regular_file(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo" / "nbflow.yaml"
    fifo.parent.mkdir()
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    report, _ = validate_manifest(fifo)
    # read through nbflow.load.inputs: refused as file-refused (trust-secrets), not waited on
    assert [
        (d.code, d.message.endswith("is not a regular file (it is a FIFO)")) for d in report
    ] == [("NBF013", True)]
    big = _write(tmp_path, BASE + "description: |\n" + ("  " + "x" * 99 + "\n") * 11_000)
    report, _ = validate_manifest(big)
    assert [d.code for d in report] == ["NBF010"] and "larger than 1 MiB" in report.errors[
        0
    ].message
    report, _ = validate_manifest(tmp_path / "nb\0.yaml")
    assert [d.code for d in report] == ["NBF001"]


def test_a_long_document_stops_at_the_value_limit(tmp_path: Path, monkeypatch) -> None:
    """At the value past the limit, not after reading it all: the limit bounds a load's time."""
    from nbflow.load import yaml_positions

    monkeypatch.setattr(yaml_positions, "MAX_VALUES", 1_000)
    path = _write(tmp_path, BASE + "x: [" + "1, " * 5_000 + "]\n")
    report, _ = validate_manifest(path)
    (d,) = report.errors
    assert d.code == "NBF010" and "more than 1,000 values" in d.message
    assert d.location.line == len(BASE.splitlines()) + 1
    # the composer stopped within the list: about 1,000 values in, not at its end
    assert 3 * 900 < (d.location.column or 0) < 3 * 1_000


def test_a_nul_in_the_notebook_path_is_a_diagnostic(tmp_path: Path) -> None:
    path = _write(
        tmp_path, BASE.replace("notebook: ../../notebooks/base.ipynb", 'notebook: "nb\\0.ipynb"')
    )
    report, project = validate_manifest(path)
    assert project is None and [(d.code, d.location.line) for d in report.errors] == [("NBF104", 3)]


def test_surrogate_escapes_are_joined_or_refused() -> None:
    """JSON writes a character beyond U+FFFF as two escapes; YAML read them as two lone
    surrogates, which protobuf could not encode (a crash in build)."""
    import pytest

    from nbflow.load.yaml_positions import YamlLoadError, load_text

    doc = load_text('k: "\\ud83d\\ude00"\n"\\ud800\\udc00": 1\n', "t.yaml")
    assert doc.data == {"k": "\U0001f600", "\U00010000": 1}
    assert doc.locate(("\U00010000",), key=True).line == 2
    with pytest.raises(YamlLoadError) as info:
        load_text('a: 1\nk: "x\\ud800"\n', "t.yaml")
    assert info.value.diagnostic.code == "NBF002" and info.value.diagnostic.location.line == 2


def test_relative_paths_and_package_installs_are_named_at_their_cells(tmp_path: Path) -> None:
    from nbflow.check.validate import load_project
    from tests.support.projects import write_project

    root = write_project(
        tmp_path,
        [
            "%pip install -q pandas\nimport pandas as pd",  # 1 setup
            "df = pd.read_csv('data.csv')\nextra = pd.read_csv('missing/extra.csv')",  # 2
            "df.to_csv('out.csv')\nurl = pd.read_csv('https://example.com/x.csv')",  # 3
            "import logging\nlog = logging.getLogger('sklearn.base')",  # 4
            "pd.read_csv('skipped.csv')",  # 5 skipped
        ],
        """
        name: files
        setup: 1
        steps:
          load: {cells: [2, 4]}
          save: {cells: 3}
        skip: [5]
        """,
    )
    (root / "data.csv").write_text("a\n1\n")
    report, project = load_project(root)
    assert project is not None and report.ok
    found = sorted(
        (d.code, d.location.cell, d.location.cell_line, d.message)
        for d in report.diagnostics
        if d.code in ("NBF708", "NBF709")
    )
    assert [(code, cell, line) for code, cell, line, _ in found] == [
        ("NBF708", 1, 1),
        ("NBF709", 2, 1),
        ("NBF709", 2, 2),
        ("NBF709", 3, 1),
    ]
    messages = [m for *_, m in found]
    assert "cell 1 (setup) installs packages (`%pip install -q pandas`)" in messages[0]
    assert "reads `data.csv`" in messages[1] and "re-runs it when the file changes" in messages[1]
    assert "reads `missing/extra.csv`" in messages[2] and "not beside the notebook" in messages[2]
    assert "writes `out.csv`" in messages[3] and "no other step sees it" in messages[3]


def test_forgotten_cells_are_one_diagnostic_with_their_ranges(tmp_path: Path) -> None:
    # a manifest that covers part of the notebook: steps load and split only, no skip
    text = BASE.replace("  train:\n    cells: 7\n  evaluate:\n    cells: 8\n", "")
    text = text.replace("skip: [9]\n", "").replace("metrics:\n  accuracy: maximize\n", "")
    report, _ = validate_manifest(_write(tmp_path, text))
    forgotten = [d for d in report.diagnostics if d.code == "NBF205"]
    assert len(forgotten) == 1, [d.message for d in report.diagnostics]
    assert forgotten[0].message == "3 code cells are in no step, setup or skip: cells 7-9"
    assert "`skip: [7-9]`" in (forgotten[0].hint or "")
    assert [r.cell for r in forgotten[0].related] == [7, 8, 9]


def test_cells_addressed_by_tag_follow_the_notebook(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.support.cli import run_cli
    from tests.support.projects import md, tagged, write_notebook

    cells = [
        tagged("import math", "setup"),
        tagged("x = 2.0", "load"),
        tagged("y = math.sqrt(x)", "fit"),
        tagged("z = y * 2", "fit"),
    ]
    nb = write_notebook(tmp_path / "nb.ipynb", cells)
    (tmp_path / "nbflow.yaml").write_text(
        "apiVersion: nbflow/v1\nname: p\nnotebook: nb.ipynb\nsetup: tag:setup\n"
        "steps:\n  load:\n    cells: tag:load\n  fit:\n    cells: [tag:fit]\n"
    )
    report, project = validate_manifest(tmp_path / "nbflow.yaml")
    assert project is not None, [d.message for d in report.diagnostics]
    assert project.step("fit").cells == (3, 4) and project.setup == (1,)
    # inserting cells anywhere changes nothing: no numbers to go stale, no lock drift
    assert run_cli(capsys, "lock", str(tmp_path)).code == 0
    write_notebook(nb, [md("# Title"), *cells[:2], tagged("w = 1", "fit"), *cells[2:]])
    report, project = validate_manifest(tmp_path / "nbflow.yaml")  # the lock agrees
    assert project is not None and project.step("fit").cells == (4, 5, 6), report.diagnostics
    # a tag no cell has is an error with a suggestion
    (tmp_path / "nbflow.yaml").write_text(
        (tmp_path / "nbflow.yaml").read_text().replace("tag:load", "tag:laod")
    )
    report, _ = validate_manifest(tmp_path / "nbflow.yaml", lock=False)
    (d,) = [d for d in report.diagnostics if d.code == "NBF203"]
    assert "is tagged `laod`" in d.message and d.hint == "did you mean `tag:load`?"


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
