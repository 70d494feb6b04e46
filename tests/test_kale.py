"""Importing Kale notebooks (nbflow.authoring.kale): golden cases, Kale's cell-assignment rules, untranslatable
tags, stripping Kale's tags, and a run of an imported project on this machine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from nbflow.authoring.kale import KALE_METADATA_KEY, import_kale, is_kale_tag, strip_kale, uses_kale
from nbflow.check.validate import validate_manifest
from nbflow.load.notebook import load_notebook
from tests.support.cases import CASES
from tests.support.projects import Cell, write_notebook
from tests.test_init import DIGITS, case_names, check_golden, copy_case, run_init


@pytest.mark.parametrize("case", case_names("kale-"))
def test_kale_golden(capsys, case, tmp_path):
    check_golden(capsys, case, tmp_path)


def test_full_case_translates_every_kind(tmp_path, capsys):
    nb = copy_case("kale-full", tmp_path)
    r = run_init(capsys, str(nb))
    assert r.code == 0
    report, project = validate_manifest(nb.parent / "nbflow.yaml")
    assert report.ok and project is not None
    m = project.manifest
    steps = {s.name: s for s in project.steps}
    # a step runs over the untagged cells after it, across a `skip` cell
    assert steps["load-data"].cells == (6, 7, 10)
    assert project.setup == (2, 3, 4) and project.parameters_cell == 5
    assert project.skip == (9, 14, 15)
    assert m.steps["train"].after == ("load-data",) and m.steps["evaluate"].after == ("train",)
    assert m.steps["train"].resources is not None and m.steps["train"].resources.gpu == 1
    assert m.steps["train"].image and m.steps["train"].cache is False
    assert m.steps["load-data"].resources is not None
    assert (m.steps["load-data"].resources.cpu, m.steps["load-data"].resources.memory) == (
        "2",
        "4Gi",
    )
    assert m.resources is not None and m.resources.memory == "1Gi"  # steps_defaults
    assert {p.name: p.type for p in project.parameters} == {
        "n_estimators": "int",
        "max_depth": "int",
        "criterion": "str",
        "bootstrap": "bool",
        "val_frac": "float",
    }
    assert {k: v.goal for k, v in m.metrics.items()} == {
        "accuracy": "maximize",
        "val_loss": "minimize",
    }
    t = m.tuning
    assert t is not None and t.objective == "accuracy" and t.algorithm == "bayesianoptimization"
    assert (t.maxTrials, t.parallelTrials, t.maxFailedTrials, t.goal) == (20, 4, 2, 0.95)
    assert t.settings == {"random_state": 10, "acq_func": "EI"}
    assert t.search["max_depth"].values == (2, 4, 8) and t.search["n_estimators"].step == 10
    assert [v.claim or v.size for v in m.volumes] == ["churn-data", "5Gi"]
    assert m.env == {"KALE_VOLUME_CHURN_DATA": "/data"}
    assert m.deploy.kfp == "api" and m.deploy.host == "http://ml-pipeline.kubeflow.svc:8888"
    assert m.description == "Predict churn with a random forest."


def test_untranslatable_tags_are_reported_with_their_cell(tmp_path, capsys):
    nb = copy_case("kale-full", tmp_path)
    r = run_init(capsys, str(nb))
    assert r.code == 0
    assert "nbflow: warning: churn.ipynb: cell 6: tag `annotation:team:ml` not translated" in r.err
    assert "nbflow: warning: churn.ipynb: cell 6: tag `label:tier:gold` not translated" in r.err
    assert "cell 12: tag `secret:db-credentials:password:DB_PASSWORD` not translated" in r.err
    assert "cell 12: limit:ephemeral-storage:1Gi not translated" in r.err
    assert "volume `legacy` of type `pv` not translated" in r.err


def test_strip_kale_tags(tmp_path, capsys):
    nb = copy_case("kale-full", tmp_path)
    r = run_init(capsys, str(nb), "--strip-kale-tags")
    assert r.code == 0, r.err
    assert "removed Kale's tags and metadata from churn.ipynb" in r.out
    raw = json.loads(nb.read_text())
    assert KALE_METADATA_KEY not in raw["metadata"]
    tags = [t for c in raw["cells"] for t in c["metadata"].get("tags", [])]
    assert tags == ["remove-output"]  # other tags stay
    assert all("tags" not in c["metadata"] or c["metadata"]["tags"] for c in raw["cells"])
    # the manifest still describes the stripped notebook
    report, project = validate_manifest(nb.parent / "nbflow.yaml")
    assert report.ok and project is not None
    # and the stripped notebook is a plain one now
    assert not uses_kale(load_notebook(nb, nb.name))
    assert strip_kale(nb) is False


def test_strip_is_refused_while_the_manifest_has_errors(tmp_path, capsys):
    path = _kale_notebook(
        tmp_path / "bad.ipynb",
        [("x = 1", ["pipeline-parameters"]), ("y = x + 1", ["step:work"])],
        {"pipeline_name": "bad", "katib_metadata": {
            "objective": {"objectiveMetricName": "acc"},
            "parameters": [
                {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "0", "max": "3"}}]}},
    )  # fmt: skip
    before = path.read_bytes()
    r = run_init(capsys, str(path), "--strip-kale-tags")
    assert r.code == 1
    assert path.read_bytes() == before
    assert "left bad.ipynb unchanged" in r.err
    assert (
        "TODO: Katib's objective, not printed in Kale's pipeline-metrics cell"
        in (tmp_path / "nbflow.yaml").read_text()
    )


def _kale_notebook(
    path: Path, cells: list[tuple[str, list[str]]], meta: dict[str, Any] | None = None
) -> Path:
    """`md:` before a source makes a markdown cell; `meta` is Kale's notebook metadata."""
    return write_notebook(
        path,
        [
            Cell(source[3:], "markdown", tags=tuple(tags))
            if source.startswith("md:")
            else Cell(source, tags=tuple(tags))
            for source, tags in cells
        ],
        None if meta is None else {KALE_METADATA_KEY: meta},
    )


def _import(tmp_path: Path, cells: list[tuple[str, list[str]]], meta: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    path = _kale_notebook(tmp_path / "k.ipynb", cells, meta)
    return import_kale(load_notebook(path, path.name), folder=tmp_path)


def test_kale_assignment_rules(tmp_path):
    draft, notes = _import(
        tmp_path,
        [
            ("lead = 0", []),  # 1: before any tag: no Kale step
            ("import os", ["imports"]),
            ("import sys", []),  # 3: continues imports
            ("a = 1", ["pipeline-parameters"]),
            ("md:## text", []),
            ("b = a", ["block:first"]),  # 6: Kale 1.x name of step:
            ("scratch = 1", ["skip", "step:ignored"]),  # 7: skip wins and is transparent
            ("c = b", []),  # 8: continues `first`
            ("d = c", ["step:second", "prev:first", "step:other"]),
            ("e = d", ["step:first"]),  # 10: back to `first`
            ("print(e)", ["pipeline-metrics"]),
            ("print(d)", []),  # 12: continues the metrics
        ],
    )
    assert draft.setup == [2, 3] and draft.parameters_cell == 4
    assert {s.name: s.cells for s in draft.steps} == {"first": [6, 8, 10], "second": [9]}
    assert draft.steps[1].after == ["first"]
    assert draft.skip == [1, 7, 11, 12]
    assert list(draft.metrics) == ["e", "d"]
    messages = [str(n) for n in notes]
    assert (
        "k.ipynb: cell 1: untagged and before any Kale tag, so in no Kale step: skipped" in messages
    )
    assert any("cell 9: tag `step:other` not translated" in m for m in messages)


def test_uses_kale_and_tags():
    assert (
        is_kale_tag("step:train")
        and is_kale_tag("limit:nvidia.com/gpu:1")
        and is_kale_tag("block:x")
    )
    assert (
        is_kale_tag("cache:disabled") and is_kale_tag("image:python:3.12") and is_kale_tag("skip")
    )
    assert (
        not is_kale_tag("parameters")
        and not is_kale_tag("step:Bad")
        and not is_kale_tag("cache:maybe")
    )


def test_metadata_edge_cases(tmp_path):
    draft, notes = _import(
        tmp_path,
        [("lr = 0.1\nname = 'x'", ["pipeline-parameters"]), ("loss = lr", ["step:fit"]), ("print(loss)", ["pipeline-metrics"])],
        {
            "pipeline_name": "edge",
            "steps_defaults": {"limits": {"cpu": "1"}, "labels": {"a": "b"}, "enable_caching": False},
            "volumes": [{"name": "tmp", "type": "new_pvc", "mount_point": "/tmp/x"}, {"name": "c", "type": "clone", "mount_point": "/c"}],
            "katib_metadata": {
                "parameters": [{"name": "lr", "parameterType": "categorical", "feasibleSpace": {"list": ["0.1", "0.2"]}},
                               {"name": "name", "parameterType": "categorical", "feasibleSpace": {"list": ["x", "y"]}}],
                "objective": {"type": "minimize", "objectiveMetricName": "val-loss"},
                "algorithm": {"algorithmName": "pbt", "earlyStopping": {"x": 1}},
            },
            "katib_run": False,
        },
    )  # fmt: skip
    assert draft.resources == {"cpu": "1"} and draft.steps[0].cache is False
    assert draft.volumes == [{"name": "tmp", "mountPath": "/tmp/x", "size": "1Gi"}]
    assert draft.tuning is not None
    assert draft.tuning["algorithm"] == "random" and draft.tuning["objective"] == "val_loss"
    assert draft.tuning["search"] == {"lr": [0.1, 0.2], "name": ["x", "y"]}
    assert (
        draft.tuning["maxTrials"],
        draft.tuning["parallelTrials"],
        draft.tuning["maxFailedTrials"],
    ) == (12, 3, 3)
    assert draft.metrics == {"loss": "minimize", "val_loss": "minimize"}
    assert draft.comments[("tuning",)] == "Kale's katib_run was off"
    text = " | ".join(str(n) for n in notes)
    for expected in (
        "labels not translated",
        "type `clone` not translated",
        "`pbt` not translated",
        "early stopping",
    ):
        assert expected in text


def test_no_steps_gives_one_empty_step_to_fill(tmp_path):
    draft, notes = _import(tmp_path, [("import os", ["imports"])], {"pipeline_name": "empty"})
    assert [s.name for s in draft.steps] == ["main"] and draft.steps[0].cells == []
    assert any("no cell is tagged step:<name>" in str(n) for n in notes)


@pytest.mark.slow
def test_imported_project_runs_here(tmp_path, capsys):
    """A Kale notebook, imported, runs with `nbflow run`'s engine (kfp.local) on this machine."""
    from nbflow.check.validate import load_project
    from nbflow.local.run import run

    nb = copy_case("kale-iris-run", tmp_path)
    assert run_init(capsys, str(nb)).code == 0
    report, project = load_project(nb.parent)
    assert report.ok and project is not None
    result = run(project, cache=False)
    assert result.ok, [(s.name, s.status, s.error) for s in result.steps]
    assert [s.name for s in result.steps] == ["load-data", "split", "train", "evaluate"]
    assert 0.8 < result.metrics["accuracy"] <= 1.0


def test_strip_keeps_an_old_notebook_readable(tmp_path):
    """nbformat 4.4 (no cell ids): stripping writes the same format back, with no warning."""
    raw = json.loads((CASES / "notebooks" / "no-ids.ipynb").read_text())
    raw["metadata"][KALE_METADATA_KEY] = {"pipeline_name": "old"}
    raw["cells"][-1].setdefault("metadata", {})["tags"] = ["step:work", "keep-me"]
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(raw))
    assert strip_kale(path) is True
    after = json.loads(path.read_text())
    assert after["nbformat_minor"] == raw["nbformat_minor"]
    assert KALE_METADATA_KEY not in after["metadata"]
    assert after["cells"][-1]["metadata"]["tags"] == ["keep-me"]


def test_strip_on_a_plain_notebook_changes_nothing(tmp_path, capsys):
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "digits.ipynb")
    before = (tmp_path / "digits.ipynb").read_bytes()
    r = run_init(capsys, str(tmp_path / "digits.ipynb"), "--strip-kale-tags")
    assert r.code == 0
    assert "left digits.ipynb unchanged: it has no Kale tags" in r.err
    assert (tmp_path / "digits.ipynb").read_bytes() == before


def test_a_bare_skip_tag_is_not_kale(tmp_path):
    path = _kale_notebook(tmp_path / "s.ipynb", [("x = 1", ["skip"]), ("y = 2", [])])
    assert not uses_kale(load_notebook(path, path.name))
    path = _kale_notebook(tmp_path / "s.ipynb", [("x = 1", ["skip"]), ("y = 2", [])], {})
    assert uses_kale(load_notebook(path, path.name))


def test_katib_panel_leftovers_make_a_draft_that_validates(tmp_path, capsys):
    nb = copy_case("kale-katib-grid", tmp_path)
    r = run_init(capsys, str(nb))
    assert r.code == 0, r.err
    report, project = validate_manifest(nb.parent / "nbflow.yaml")
    assert report.ok and not report.warnings and project is not None
    m = project.manifest
    # parameters printed by the metrics cell are not metrics; a negated metric is maximized
    assert {k: v.goal for k, v in m.metrics.items()} == {
        "mse": "minimize",
        "negative_mse": "maximize",
    }
    t = m.tuning
    assert t is not None and t.algorithm == "grid"
    assert t.settings == {"random_state": 7}  # Bayesian optimisation's settings left out
    assert t.search["lr"].values == (0.0001, 0.001, 0.01, 0.1)  # numbers, not strings
    assert {p.name: p.type for p in project.parameters}["lr"] == "float"
    assert t.search["batch_size"].values == (16, 32)  # Katib's `bs`
    assert "dropout" not in t.search
    assert t.maxTrials == 4 * 3 * 2 * 2  # capped at the grid's combinations
    assert "Katib parameter `dropout` assigned in no pipeline-parameters cell" in r.err
    text = (nb.parent / "nbflow.yaml").read_text()
    assert "# TODO: check: Kale's Katib parameter `bs` is not a pipeline parameter" in text
