"""report.html of `nbflow tune`: history with best so far and integer trial numbers, parameter
importances from Optuna, slice plots, the best trial's rerun command, every trial linked."""

from __future__ import annotations

import base64
import html
import re
import shlex
from pathlib import Path

import pytest

from nbflow.local.tune import Dimension, TrialResult
from nbflow.local.tune import report as tune_report
from nbflow.local.tune.results import TuneResult

DIMS = [
    Dimension("lr", "float", 0.001, 1.0, None, True),
    Dimension("depth", "int", 1, 5, 1),
    Dimension("kind", "categorical", values=("a", "b c")),
]


def tune_result(folder: Path) -> TuneResult:
    trials = [
        TrialResult(i, {"lr": lr, "depth": d, "kind": k}, state, value, seconds=1.0,
                    run_dir=str(folder.parent.parent / "runs" / f"run-{i}"))
        for i, (lr, d, k, state, value) in enumerate(
            [(0.01, 1, "a", "complete", 0.5), (0.1, 3, "b c", "complete", 0.75),
             (0.5, 5, "a", "failed", None), (0.123456789, 2, "b c", "complete", 0.7)],
            start=1,
        )
    ]  # fmt: skip
    return TuneResult("demo", "acc", "maximize", "random", "RandomSampler", folder, "completed",
                      "4 trials", trials, 4, 1, None, None, [], 12.0)  # fmt: skip


def study_of(result: TuneResult):  # type: ignore[no-untyped-def]
    import optuna
    from optuna.distributions import CategoricalDistribution as Cat
    from optuna.distributions import FloatDistribution as Float
    from optuna.distributions import IntDistribution as Int

    dists = {"lr": Float(0.001, 1.0, log=True), "depth": Int(1, 5), "kind": Cat(["a", "b c"])}
    study = optuna.create_study(direction="maximize")
    for t in result.trials:
        state = (
            optuna.trial.TrialState.COMPLETE
            if t.value is not None
            else optuna.trial.TrialState.FAIL
        )
        study.add_trial(optuna.trial.create_trial(
            params=t.parameters, distributions=dists, value=t.value, state=state))  # fmt: skip
    return study


def svg_of(page: str, element_id: str) -> str:
    m = re.search(
        rf'<img src="data:image/svg\+xml;base64,([^"]+)" alt="[^"]+" id="{element_id}">', page
    )
    assert m, f"no {element_id} plot"
    return base64.b64decode(m.group(1)).decode("utf-8")


def test_the_page_has_history_importances_slices_best_and_trials(tmp_path: Path) -> None:
    result = tune_result(tmp_path / "tune" / "20260101")
    page = tune_report.render(
        result, dimensions=DIMS, study=study_of(result), project_path="my proj"
    )
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    # matplotlib writes each text of its SVG in a comment: the trial axis has whole numbers only
    history = svg_of(page, "history")
    xticks = re.findall(r'<g id="xtick_\d+">.*?<!-- (.*?) -->', history, re.DOTALL)
    assert xticks and all(re.fullmatch(r"[−-]?\d+", t) for t in xticks), xticks
    assert "best so far" in history
    assert "fANOVA" in svg_of(page, "importances")
    slices = svg_of(page, "slices")
    assert all(f"<!-- {name} -->" in slices for name in ("lr", "depth"))
    # the best trial, and the exact command that reruns it (the full float, quoted for sh)
    assert "trial #2: acc = <b>0.75</b>" in page
    command = html.unescape(re.search(r'<pre class="cmd" id="rerun">(.*?)</pre>', page).group(1))
    assert shlex.split(command) == ["nbflow", "run", "my proj", "-p", "lr=0.1", "-p", "depth=3",
                                    "-p", "kind=b c"]  # fmt: skip
    # every trial is a row linking its run report, relative to the tuning folder
    rows = re.findall(r'<tr data-trial="(\d+)"', page)
    assert rows == ["1", "2", "3", "4"] and '<tr data-trial="2" class="best">' in page
    assert page.count('href="../../runs/run-') == 5  # 4 trials and the best trial's line


def test_a_float_beyond_six_digits_is_rerun_exactly(tmp_path: Path) -> None:
    result = tune_result(tmp_path)
    result.trials[1].value = 0.1
    result.trials[3].value = 0.9
    assert "lr=0.123456789" in (tune_report.rerun_command(result, ".") or "")


def test_without_complete_trials_there_is_no_best_and_no_importance(tmp_path: Path) -> None:
    result = tune_result(tmp_path)
    for t in result.trials:
        t.state, t.value = "failed", None
    page = tune_report.render(result, dimensions=DIMS, study=None)
    assert 'id="best">no trial completed' in page and "needs two or more" in page
    assert tune_report.importances(None) == {}


@pytest.mark.parametrize("name", ["<b>x</b>", "a&b"])
def test_names_are_escaped(tmp_path: Path, name: str) -> None:
    result = tune_result(tmp_path)
    result.objective = name
    page = tune_report.render(result, dimensions=DIMS)
    assert name not in page


def test_an_interrupted_search_gets_its_tables_without_plots(tmp_path: Path) -> None:
    result = tune_result(tmp_path)
    page = tune_report.render(result, dimensions=DIMS, plots=False)
    assert "no plots" in page and "<img" not in page and 'id="rerun"' in page
