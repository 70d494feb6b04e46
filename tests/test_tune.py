"""`nbflow tune`: samplers per Katib algorithm, the search loop on real local runs, its files.

The end-to-end tests tune a two-step notebook: `prepare` reads no parameter (so it runs in the
first trial and hits the cache after), `score` computes `-(x - 3) ** 2` (minus 1 when `shift` is
"b") and fails for x > 4.5.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import math
import os
import textwrap
from pathlib import Path

import pytest

from nbflow.check.manifest import ALGORITHMS
from nbflow.errors import EnvironmentProblem, UsageError
from nbflow.local import tune as tune_mod
from nbflow.local.tune import SAMPLERS, Dimension, TrialResult, judge, resolve_search, tune
from tests.support.cli import run_cli, run_subprocess
from tests.support.processes import alive, processes_mentioning, wait_for
from tests.support.projects import load, tagged, write_project

CELLS = [
    "import math",
    tagged('x = 1.0\nshift = "a"', "parameters"),
    "base = sum(math.sin(i) for i in range(100)) * 0",
    'if x > 4.5:\n    raise ValueError(f"x too large: {x}")\nscore = -(x - 3) ** 2 - (0 if shift == "a" else 1) + base',
]


def project_with(root: Path, tuning: str) -> Path:
    """The two-step project, with `tuning` (YAML, any indentation) as its tuning block."""
    block = textwrap.indent(textwrap.dedent(tuning).strip("\n"), "  ")
    manifest = (
        "name: quad\nsetup: 1\nsteps:\n  prepare: {cells: 3}\n  score: {cells: 4}\n"
        "parameters: {x: 1.0, shift: a}\nmetrics: {score: maximize}\ntuning:\n" + block + "\n"
    )
    return write_project(root, CELLS, manifest)


def read_results(folder: Path) -> tuple[dict, list[dict]]:
    data = json.loads((folder / "trials.json").read_text())
    with (folder / "trials.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return data, rows


def assert_consistent(folder: Path, trials: int) -> tuple[dict, list[dict]]:
    """CSV rows == JSON trials == the trials run, field by field."""
    data, rows = read_results(folder)
    assert len(data["trials"]) == len(rows) == trials
    for t, row in zip(data["trials"], rows, strict=True):
        assert int(row["number"]) == t["number"]
        assert row["state"] == t["state"]
        assert row[data["objective"]] == ("" if t["value"] is None else repr(t["value"]))
        for name, value in t["parameters"].items():
            assert row[name] == str(value)
    assert not list(folder.glob(".*.tmp"))
    return data, rows


# -- samplers -------------------------------------------------------------------------------------

DIMS = [
    Dimension("x", "float", 0.0, 6.0, 0.5),
    Dimension("n", "int", 1, 9, 2),
    Dimension("shift", "categorical", values=("a", "b")),
]


def test_every_katib_algorithm_has_an_entry() -> None:
    assert set(SAMPLERS) == set(ALGORITHMS)


@pytest.mark.parametrize(
    ("algorithm", "cls", "check"),
    [
        ("random", "RandomSampler", None),
        ("grid", "GridSampler", None),
        ("tpe", "TPESampler", lambda s: s._multivariate is False),
        ("multivariate-tpe", "TPESampler", lambda s: s._multivariate is True),
        ("sobol", "QMCSampler", lambda s: s._qmc_type == "sobol"),
    ],
)
def test_sampler_per_algorithm(algorithm, cls, check) -> None:
    import optuna

    sampler = SAMPLERS[algorithm]({}, DIMS, [])
    assert isinstance(sampler, getattr(optuna.samplers, cls))
    if check is not None:
        assert check(sampler)


@pytest.mark.parametrize(
    ("algorithm", "module", "cls"),
    [("bayesianoptimization", "torch", "GPSampler"), ("cmaes", "cmaes", "CmaEsSampler")],
)
def test_sampler_that_needs_a_package(algorithm, module, cls) -> None:
    import optuna

    dims = DIMS[:2]
    if importlib.util.find_spec(module) is None:
        with pytest.raises(
            EnvironmentProblem,
            match=rf"(?s){algorithm} algorithm is not available locally.*pip install {module}",
        ):
            SAMPLERS[algorithm]({}, dims, [])
    else:
        assert isinstance(SAMPLERS[algorithm]({}, dims, []), getattr(optuna.samplers, cls))


def test_hyperband_is_refused_clearly() -> None:
    with pytest.raises(
        UsageError, match=r"(?s)hyperband algorithm is not supported by `nbflow tune`.*`epochs`"
    ):
        SAMPLERS["hyperband"]({"r_l": 9, "resource_name": "epochs"}, DIMS, [])


def test_settings_map_to_optuna() -> None:
    from optuna.samplers._tpe.sampler import hyperopt_default_gamma

    tpe = SAMPLERS["tpe"](
        {
            "n_startup_trials": 3,
            "n_ei_candidates": 5,
            "random_state": 7,
            "gamma": 0.25,
            "prior_weight": 2.0,
        },
        DIMS,
        [],
    )
    assert (tpe._n_startup_trials, tpe._n_ei_candidates) == (3, 5)
    assert tpe._parzen_estimator_parameters.prior_weight == 2.0
    # Katib's tpe is hyperopt's: gamma is its fraction of sqrt(n) "good" trials
    assert [tpe._gamma(n) for n in range(1, 500)] == [
        hyperopt_default_gamma(n) for n in range(1, 500)
    ]


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "grid"])
def test_random_state_seeds_the_sampler(algorithm) -> None:
    import optuna

    def first_points(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=SAMPLERS[algorithm]({"random_state": seed}, DIMS, []))
        out = []
        for _ in range(3):
            trial = study.ask()
            out.append({d.name: d.suggest(trial) for d in DIMS})
            study.tell(trial, 0.0)
        return out

    assert first_points(5) == first_points(5)


def test_grid_points_and_search_space(tmp_path) -> None:
    assert Dimension("f", "float", 0.0, 0.3, 0.1).grid() == [0.0, 0.1, 0.2, 0.3]
    assert Dimension("n", "int", 1, 9, 3).grid() == [1, 4, 7]
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: random
        maxTrials: 4
        search:
          x: {min: 0, max: 0.35, step: 0.1}
          shift: [a, b]
        """,
    )
    spec = resolve_search(load(root))
    x, shift = spec.dimensions
    # the range ends on its last step, so that Optuna need not adjust it (with a warning)
    assert (x.kind, x.low, x.high, x.step) == ("float", 0.0, 0.3, 0.1)
    assert (shift.kind, shift.values) == ("categorical", ("a", "b"))


def test_log_with_step_is_a_usage_error(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: tpe
        maxTrials: 4
        search:
          x: {min: 0.1, max: 5, step: 0.1, log: true}
        """,
    )
    with pytest.raises(UsageError, match="both `log` and `step`"):
        resolve_search(load(root))


def test_grid_trials_capped_at_its_size_and_parallel_at_the_cpus(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: grid
        maxTrials: 4
        parallelTrials: 4
        search:
          x: {min: 1, max: 4, step: 1}
        """,
    )
    spec = resolve_search(load(root), trials=10)
    assert spec.max_trials == 4
    assert any("the grid has 4 points" in n for n in spec.notes)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert spec.parallel == min(4, cpus or 1)
    assert resolve_search(load(root), parallel=3).parallel == 3


def test_judge_a_run() -> None:
    ok = {"ok": True, "steps": [], "metrics": {"score": -1.0}}
    assert judge(ok, "score") == ("complete", -1.0, None)
    state, value, error = judge({"ok": True, "steps": [], "metrics": {"other": 1.0}}, "score")
    assert (state, value) == ("failed", None)
    assert "objective `score` is missing from the trial's metrics (metrics: other)" in error
    state, _, error = judge(
        {"ok": False, "steps": [{"name": "score", "status": "failed", "error": "boom"}]}, "score"
    )
    assert state == "failed" and error == "step `score` failed: boom"
    assert judge({"ok": True, "steps": [], "metrics": {"score": math.nan}}, "score")[0] == "failed"


def test_cli_refusals_exit_2(tmp_path, capsys) -> None:
    hb = project_with(
        tmp_path / "hb",
        """
        objective: score
        algorithm: hyperband
        settings: {r_l: 9, resource_name: x}
        maxTrials: 9
        parallelTrials: 9
        search:
          x: {min: 1, max: 4}
        """,
    )
    r = run_cli(capsys, "tune", str(hb))
    assert r.code == 2 and "hyperband algorithm is not supported" in r.err
    plain = write_project(tmp_path / "plain", ["x = 1"], "name: plain\nsteps:\n  one: {cells: 1}\n")
    r = run_cli(capsys, "tune", str(plain))
    assert r.code == 2 and "no `tuning` block" in r.err
    r = run_cli(capsys, "tune", str(hb), "--trials", "0")
    assert r.code == 2 and "--trials must be at least 1" in r.err
    if importlib.util.find_spec("torch") is None:
        bo = project_with(
            tmp_path / "bo",
            """
            objective: score
            algorithm: bayesianoptimization
            maxTrials: 4
            search:
              x: {min: 1, max: 4}
            """,
        )
        r = run_cli(capsys, "tune", str(bo))
        assert (
            r.code == 2
            and "needs `torch`, which is not installed" in r.err
            and "pip install torch" in r.err
        )


# -- searches, end to end -------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_covers_every_combination_upstream_runs_once(tmp_path, capsys) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: grid
        maxTrials: 6
        parallelTrials: 1
        search:
          x: {min: 2, max: 4, step: 1}
          shift: [a, b]
        """,
    )
    r = run_cli(capsys, "tune", str(root))
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["best: score=0 with x=3, shift=a", "score=0"]
    folder = root / ".nbflow" / "tune" / "latest"
    data, _ = assert_consistent(folder, 6)
    assert sorted((t["parameters"]["x"], t["parameters"]["shift"]) for t in data["trials"]) == [
        (x, s) for x in (2.0, 3.0, 4.0) for s in ("a", "b")
    ]
    assert data["state"] == "completed"
    assert data["best"]["parameters"] == {"x": 3.0, "shift": "a"}
    # prepare reads no searched parameter: it ran in trial 1 only, every later trial hit the cache
    statuses = [t["steps"] for t in data["trials"]]
    assert statuses[0] == {"prepare": "succeeded", "score": "succeeded"}
    assert all(s == {"prepare": "cached", "score": "succeeded"} for s in statuses[1:])
    assert data["step_runs"] == {
        "prepare": {"ran": 1, "cached": 5, "not_run": 0},
        "score": {"ran": 6, "cached": 0, "not_run": 0},
    }
    for t in data["trials"]:  # the counts come from the runs themselves
        run = json.loads((Path(t["run_dir"]) / "run.json").read_text())
        assert {s["name"]: s["status"] for s in run["steps"]} == t["steps"]
    assert (folder / "objective.png").stat().st_size > 1000
    assert "prepare 1 ran/5 cached, score 6 ran/0 cached" in r.err
    # the report beside trials.csv, with the command that reruns the best trial
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert f"nbflow run {root} -p x=3 -p shift=a" in page
    # trials leave runs/latest alone: it is the user's last `nbflow run`, not the last trial
    assert not (root / ".nbflow" / "runs" / "latest").exists()


@pytest.mark.slow
def test_stops_at_goal(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: tpe
        settings: {random_state: 1}
        maxTrials: 5
        parallelTrials: 2
        goal: -1
        search:
          x: {min: 2.5, max: 3.5}
        """,
    )
    result = tune(load(root))
    assert result.state == "goal" and result.ok
    assert len(result.trials) == 1 and result.trials[0].value >= -1
    assert "reached the goal score >= -1" in result.reason
    assert_consistent(result.dir, 1)


@pytest.mark.slow
def test_failed_trials_count_against_max_failed(tmp_path, capsys) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: grid
        maxTrials: 4
        parallelTrials: 1
        maxFailedTrials: 1
        search:
          x: [3.0, 5.0, 6.0, 7.0]
        """,
    )
    r = run_cli(capsys, "tune", str(root), "--json")
    assert r.code == 1, r.err
    data = json.loads(r.out)
    states = [t["state"] for t in data["trials"]]
    assert states.count("failed") == 2 and len(states) <= 3  # stopped once 2 > maxFailedTrials
    assert data["state"] == "failed"
    assert data["reason"] == "2 trials failed, more than maxFailedTrials (1)"
    assert all("x too large" in t["error"] for t in data["trials"] if t["state"] == "failed")
    assert_consistent(Path(data["dir"]), len(states))


@pytest.mark.slow
def test_all_trials_failed(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: grid
        maxTrials: 2
        search:
          x: [5.0, 6.0]
        """,
    )
    result = tune(load(root))
    assert result.state == "failed" and not result.ok and result.best is None
    assert result.reason == "no trial succeeded"
    assert [t.state for t in result.trials] == ["failed", "failed"]


def _workers_of(manifest: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--worker" in cmd and str(manifest).encode() in cmd:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_parallel_trials(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: random
        settings: {random_state: 3}
        maxTrials: 4
        search:
          x: {min: 0, max: 4.5}
        """,
    )
    seen: list[tuple[int, str]] = []
    result = tune(load(root), parallel=2, progress=lambda t: seen.append((t.number, t.state)))
    assert result.state == "completed" and result.parallel == 2
    assert [t.state for t in result.trials] == ["complete"] * 4
    assert result.step_runs()["prepare"] == {"ran": 1, "cached": 3, "not_run": 0}
    assert len({t.run_dir for t in result.trials}) == 4
    # trials 2 and 3 were running at the same time
    first_seen: dict[int, int] = {}
    for i, (n, _) in enumerate(seen):
        first_seen.setdefault(n, i)
    completed_at = {n: i for i, (n, s) in enumerate(seen) if s == "complete"}
    assert first_seen[3] < completed_at[2]
    assert_consistent(result.dir, 4)
    assert _workers_of(root / "nbflow.yaml") == []


@pytest.mark.slow
def test_interrupt_leaves_consistent_files(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: random
        maxTrials: 6
        search:
          x: {min: 0, max: 4.5}
        """,
    )

    def progress(trial: TrialResult) -> None:
        # Ctrl-C while trial 2 runs in its worker
        if trial.number == 2 and any(s == "running" for s in trial.steps.values()):
            raise KeyboardInterrupt

    result = tune(load(root), parallel=2, progress=progress)
    assert result.state == "interrupted"
    states = [t.state for t in result.trials]
    # trial 2 is stopped while it runs. The other worker's trials (3, and more when trial 2's
    # worker is slow to report, as on a loaded machine) may finish or be stopped: a race this
    # test does not decide. What it decides: trial 2 is interrupted, none is left running, and
    # the files agree with the trials there are.
    assert states[:2] == ["complete", "interrupted"], states
    assert all(s in ("complete", "interrupted") for s in states[2:]), states
    data, _ = assert_consistent(result.dir, len(states))
    assert data["state"] == "interrupted"
    page = (result.dir / "report.html").read_text(encoding="utf-8")
    assert "no plots: the search was interrupted" in page and 'id="trials"' in page
    assert _workers_of(root / "nbflow.yaml") == []


@pytest.mark.slow
def test_cli_interrupted_exits_130(tmp_path, capsys, monkeypatch) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: random
        maxTrials: 3
        parallelTrials: 1
        search:
          x: {min: 0, max: 4.5}
        """,
    )
    update = tune_mod.TrialLog.update

    def update_then_ctrl_c(self, trial):  # the user presses Ctrl-C as trial 2 starts
        update(self, trial)
        if trial.number == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(tune_mod.TrialLog, "update", update_then_ctrl_c)
    r = run_cli(capsys, "tune", str(root))
    assert r.code == 130
    assert r.out.startswith("best: score=")
    data, _ = assert_consistent(root / ".nbflow" / "tune" / "latest", 2)
    assert [t["state"] for t in data["trials"]] == ["complete", "interrupted"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_in_a_terminal_or_sigterm_exits_130(tmp_path, sig) -> None:
    """A real SIGINT to `nbflow tune` (its workers have their own session, as a terminal's
    Ctrl-C reaches the search only), or a SIGTERM: exit 130, the running trials interrupted,
    no worker left, nor any step process of a worker."""
    import signal
    import subprocess
    import sys
    import time

    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: random
        maxTrials: 40
        parallelTrials: 2
        search:
          x: {min: 0, max: 4.5}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "tune", str(root), "--parallel", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    results = root / ".nbflow" / "tune"
    while proc.poll() is None:  # until two trials are complete (a hang: pytest-timeout)
        files = list(results.glob("*/trials.json"))
        if (
            files
            and sum(t["state"] == "complete" for t in json.loads(files[0].read_text())["trials"])
            >= 2
        ):
            break
        time.sleep(0.1)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.startswith("best: score=")
    data, _ = assert_consistent(
        results / "latest",
        len(json.loads((results / "latest" / "trials.json").read_text())["trials"]),
    )
    assert data["state"] == "interrupted"
    assert "interrupted" in [t["state"] for t in data["trials"]]
    assert all(t["state"] in ("complete", "interrupted") for t in data["trials"])
    assert _workers_of(root / "nbflow.yaml") == []
    # the steps: their command lines hold their artifacts' paths, under the project
    wait_for(lambda: processes_mentioning(str(root)) == [], timeout=60, what="the steps to end")
    assert f"(interrupted by {sig})" in err


@pytest.mark.slow
def test_cli_as_a_subprocess(tmp_path) -> None:
    root = project_with(
        tmp_path,
        """
        objective: score
        algorithm: grid
        maxTrials: 1
        search:
          x: [3.0]
        """,
    )
    r = run_subprocess("tune", str(root))
    assert r.code == 0, r.err
    assert r.out == "best: score=0 with x=3\nscore=0\n"
    assert "trial 1/1  score=0  x=3" in r.err


def test_a_worker_fails_its_trials_when_the_manifest_changed(tmp_path: Path) -> None:
    """The manifest was edited (here: a step reads a name no cell defines) after the search
    validated it: the worker answers each trial with the errors, as a list, and goes on."""
    import subprocess
    import sys

    root = project_with(tmp_path / "p", "objective: score\nsearch:\n  x: {min: 0, max: 4}")
    manifest = root / "nbflow.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("score: {cells: 4}", "score: {cells: 2-4}"),
        encoding="utf-8",
    )
    worker = subprocess.run(
        [sys.executable, "-m", "nbflow.local.tune", "--worker", str(manifest), str(tmp_path)],
        input='{"parameters": {"x": 1.0}}\n',
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert worker.returncode == 0, worker.stderr
    (event,) = [json.loads(line) for line in worker.stdout.splitlines()]
    assert event["event"] == "error"
    first, *errors = event["error"].splitlines()
    assert first.startswith("the project has ") and first.endswith(" error(s) now:")
    assert errors and all("nbflow.yaml:" in e and "[NBF" in e for e in errors)


@pytest.mark.parametrize("case", ["grid-too-large", "search-step-too-small"])
def test_a_search_tune_cannot_enumerate_is_a_diagnostic_not_a_crash(capsys, case: str) -> None:
    """A 10^11-point grid was a MemoryError in `nbflow tune`, a step of 1e-300 a
    decimal.InvalidOperation: validation refuses both first, with a line."""
    from tests.support.cases import CASES
    from tests.support.cli import run_cli

    r = run_cli(capsys, "tune", str(CASES / "invalid" / case))
    assert r.code == 1 and ("NBF512" in r.err or "NBF503" in r.err), r.err
    assert "Traceback" not in r.out + r.err


@pytest.mark.slow
def test_sigterm_stops_the_steps_running_in_the_search_and_in_its_workers(tmp_path) -> None:
    """Trials whose step waits: the first one, in the search's own process, returns; those in
    the two workers wait. SIGTERM to `nbflow tune` alone ends every one of their processes."""
    import signal
    import subprocess
    import sys

    marks = tmp_path / "marks"
    marks.mkdir()
    root = write_project(
        tmp_path / "waits",
        [
            "import os, pathlib, time",
            tagged("x = 1.0", "parameters"),
            f"marks = pathlib.Path({str(marks)!r})\n"
            "first = not (marks / 'seen').exists()\n"
            "(marks / 'seen').touch()\n"
            "(marks / str(os.getpid())).touch()\n"
            "while not first and not (marks / 'go').exists():\n"
            "    time.sleep(0.05)\n"
            "score = -x * x",
        ],
        "name: waits\nsetup: 1\nsteps:\n  score: {cells: 3}\nparameters: {x: 1.0}\n"
        "metrics: {score: maximize}\ntuning:\n  objective: score\n  algorithm: random\n"
        "  maxTrials: 6\n  parallelTrials: 2\n  search:\n    x: {min: 0, max: 4}\n",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "tune", str(root), "--parallel", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    steps: list[int] = []
    try:
        steps = wait_for(
            lambda: (
                (p := [int(m.name) for m in marks.iterdir() if m.name.isdigit()])
                and len(p) >= 3
                and p
            ),
            what="a step in each worker",
        )
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "(interrupted by SIGTERM)" in err
        wait_for(lambda: not any(alive(p) for p in steps), timeout=60, what=f"{steps} to end")
        assert _workers_of(root / "nbflow.yaml") == []
    finally:  # whatever the test finds, no process of it outlives it
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in steps:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_bug_in_a_worker_fails_its_trial_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    """An unexpected exception while a worker runs a trial reaches the search as one line
    (the trial fails, the worker goes on), never as a traceback in the trial's error."""
    import subprocess
    import sys

    root = project_with(
        tmp_path / "p", "objective: score\nmaxTrials: 2\nsearch:\n  x: {min: 0, max: 4}"
    )
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    # the worker's interpreter imports this first: its run() then fails as a bug would
    (hooks / "sitecustomize.py").write_text(
        "import nbflow.local.run as r\n"
        "def run(*a, **k):\n"
        "    raise ValueError('boom\\nsecond line')\n"
        "r.run = run\n",
        encoding="utf-8",
    )
    repo = str(Path(__file__).resolve().parents[1])
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbflow.local.tune",
            "--worker",
            str(root / "nbflow.yaml"),
            str(tmp_path),
        ],
        input='{"parameters": {"x": 1.0}}\n{"parameters": {"x": 2.0}}\n',
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), repo])},
    )
    assert worker.returncode == 0, worker.stderr
    events = [json.loads(line) for line in worker.stdout.splitlines()]
    assert [e["event"] for e in events] == ["error", "error"]
    assert events[0]["error"] == "internal error (please report): ValueError: boom second line"
    assert "Traceback" not in worker.stderr
