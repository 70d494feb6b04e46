"""`nbflow run`: generated pipelines run end to end on this machine with kfp.local, through the
library (`nbflow.local.run.run`) and through the CLI in-process, as a user runs them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbflow.cli.main import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from nbflow.local.run import RunError, RunResult, parse_parameters, run
from tests.support.cli import Result, run_cli
from tests.support.processes import alive, wait_for
from tests.support.projects import load, md, tagged, write_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One kfp.local state folder for the library runs of this module."""
    return tmp_path_factory.mktemp("state")


def statuses(result: RunResult) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def cli_json(r: Result) -> dict[str, Any]:
    assert 'File "/' not in r.err, r.err  # no traceback of nbflow's or kfp's own code
    return json.loads(r.out)


def json_statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in doc["steps"]}


# -- data of every serializer kind, parallel branches, reports -----------------------------------

KINDS_CELLS = [
    "import numpy as np",
    tagged("scale = 2", "parameters"),
    md("## Load"),
    """\
import pandas as pd
from sklearn.linear_model import LinearRegression

arr = np.arange(6, dtype=float).reshape(3, 2)
frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
model = LinearRegression().fit(arr[:, :1], arr[:, 1])

class Box:
    def __init__(self, v):
        self.v = v

bundle = {"f": lambda v: v * 3, "box": Box(5)}
print("loaded", arr.shape)""",
    """\
left = float(arr.sum()) * scale + bundle["f"](1)
print(f"left={left}")""",
    """\
assert type(bundle["box"]).__name__ == "Box" and list(frame.columns) == ["a", "b"]
right = int(frame["a"].sum()) + bundle["box"].v + round(float(model.predict(np.array([[10.0]]))[0]), 6)
print("letters", "".join(frame["b"]))""",
    """\
total = left + right
print(f"total is {total}")""",
]
KINDS_MANIFEST = """
name: kinds
setup: 1
steps:
  load: {cells: 4}
  left: {cells: 5}
  right: {cells: 6}
  join: {cells: 7}
parameters: {scale: 2}
metrics: {total: maximize}
"""


def test_every_kind_of_value_crosses_steps_and_branches_join(tmp_path: Path, state: Path) -> None:
    project = load(write_project(tmp_path / "kinds", KINDS_CELLS, KINDS_MANIFEST))
    plan = {s.name: s for s in project.plan.steps}
    # left and right read only load's output; join reads both
    assert plan["left"].upstream == ("load",) and plan["right"].upstream == ("load",)
    assert set(plan["join"].upstream) == {"left", "right"}
    seen: list[tuple[str, str]] = []
    result = run(project, state_dir=state, progress=lambda s: seen.append((s.name, s.status)))
    assert result.ok, [s.error for s in result.steps]
    assert statuses(result) == dict.fromkeys(("load", "left", "right", "join"), "succeeded")
    # left: 15 * 2 + 3; right: 6 + 5 + 11
    assert result.metrics == {"total": 55.0}
    order = [name for name, status in seen if status == "running"]
    # kfp.local runs one task at a time; the two branches in either order
    assert order[0] == "load" and set(order[1:3]) == {"left", "right"} and order[3] == "join"

    # each variable was saved by the serializer of its kind
    [folder] = (state / "artifacts").glob("kinds-*")
    kinds = {
        out.name: json.loads((out / "nbflow.json").read_text())["serializer"]
        for out in (folder / "step-load").glob("out_*")
    }
    assert kinds == {
        "out_arr": "numpy",
        "out_frame": "parquet",
        "out_model": "joblib",
        "out_bundle": "cloudpickle",
    }

    # a report per step, with what the step printed; run.json beside them
    reports = {s.name: Path(s.report or "") for s in result.steps}
    assert all(p.is_file() and p.parent == result.run_dir / "reports" for p in reports.values())
    assert all("<html" in p.read_text(encoding="utf-8")[:500].lower() for p in reports.values())
    assert "loaded (3, 2)" in reports["load"].read_text(encoding="utf-8")
    assert "left=33.0" in reports["left"].read_text(encoding="utf-8")
    assert "letters xyz" in reports["right"].read_text(encoding="utf-8")
    assert "total is 55.0" in reports["join"].read_text(encoding="utf-8")
    assert "total is 55.0" in Path(result.steps[3].log or "").read_text(encoding="utf-8")
    recorded = json.loads((result.run_dir / "run.json").read_text())
    assert recorded["ok"] is True and recorded["metrics"] == {"total": 55.0}
    assert recorded["parameters"] == {"scale": 2}
    assert (state / "runs" / "latest" / "run.json").is_file()


# -- parameters and the cache, through the CLI ---------------------------------------------------

CHAIN_CELLS = [
    "import numpy as np",
    tagged("scale = 2\nlabel = 'x'", "parameters"),
    "a = np.arange(4)",
    "b = a * scale",
    "total = float(b.sum())\nprint(label, total)",
]
CHAIN_MANIFEST = """
name: chain
setup: 1
steps:
  one: {cells: 3}
  two: {cells: 4}
  three: {cells: 5}
parameters: {scale: 2, label: x}
metrics: {total: maximize}
"""


def test_cache_and_parameters_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "chain", CHAIN_CELLS, CHAIN_MANIFEST)
    path = str(root)

    r = run_cli(capsys, "run", path, "--json")
    assert r.code == EXIT_OK, r.err
    doc = cli_json(r)
    assert json_statuses(doc) == {"one": "succeeded", "two": "succeeded", "three": "succeeded"}
    assert doc["metrics"] == {"total": 12.0}
    assert "run succeeded" in r.err and "3 succeeded" in r.err

    # the same run again: everything from the cache, the metric still reported
    runs = root / ".nbflow" / "runs"
    before = set(runs.iterdir())
    r = run_cli(capsys, "run", path)
    assert r.code == EXIT_OK, r.err
    assert r.out == "total=12\n"
    assert "3 cached" in r.err
    # the task that provides the step runtime too: it ran once, in the first run (a task that
    # runs leaves a log; one served from the cache does not)
    [second] = set(runs.iterdir()) - before
    [first] = before - {runs / "latest"}
    assert (first / "logs" / "nbflow-runtime.log").is_file()
    assert not (second / "logs" / "nbflow-runtime.log").exists()

    # a parameter read only by `two`: `one` stays cached, `two` and what follows run again
    r = run_cli(capsys, "run", path, "-p", "scale=3", "--json")
    assert r.code == EXIT_OK, r.err
    doc = cli_json(r)
    assert json_statuses(doc) == {"one": "cached", "two": "succeeded", "three": "succeeded"}
    assert doc["parameters"] == {"scale": 3, "label": "x"}  # typed: an int
    assert doc["metrics"] == {"total": 18.0}

    # --no-cache runs every step; the runtime, which depends on nothing, still comes from the cache
    before = set(runs.iterdir())
    r = run_cli(capsys, "run", path, "-p", "scale=3", "--no-cache", "--json")
    assert r.code == EXIT_OK, r.err
    assert set(json_statuses(cli_json(r)).values()) == {"succeeded"}
    [no_cache] = set(runs.iterdir()) - before
    assert not (no_cache / "logs" / "nbflow-runtime.log").exists()

    # a string parameter read by the last step only
    r = run_cli(capsys, "run", path, "-p", "scale=3", "-p", "label=hello world", "--json")
    doc = cli_json(r)
    assert json_statuses(doc) == {"one": "cached", "two": "cached", "three": "succeeded"}
    report = Path(doc["steps"][2]["report"]).read_text(encoding="utf-8")
    assert "hello world 18.0" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "scal=3"], "`scal` is not a parameter of chain (did you mean `scale`?)"),
        (["-p", "scale=three"], "parameter `scale` is int; `three` is not"),
        (["-p", "scale"], "parameter `scale` is not name=value"),
        (["-p", "nothing=1"], "`nothing` is not a parameter of chain (parameters: scale, label)"),
    ],
)
def test_bad_parameters_exit_2_before_running(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "chain", CHAIN_CELLS, CHAIN_MANIFEST)
    r = run_cli(capsys, "run", str(root), *args)
    assert r.code == EXIT_USAGE
    assert r.err == f"nbflow: {message}\n"
    assert not (root / ".nbflow").exists()


def test_parameter_types(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        [
            tagged("i = 1\nf = 1.5\nb = True\ns = 'a'\nl = [1]\nd = {'k': 1}", "parameters"),
            "x = (i, f, b, s, l, d)",
        ],
        """
        name: types
        steps: {one: {cells: 2}}
        parameters: {i: 1, f: 1.5, b: true, s: a, l: [1], d: {default: {k: 1}}}
        """,
    )
    project = load(root)
    pairs = ["i=7", "f=2", "b=no", "s=7", "l=[1, 2]", 'd={"k": 2}']
    assert parse_parameters(project, pairs) == {
        "i": 7,
        "f": 2.0,
        "b": False,
        "s": "7",
        "l": [1, 2],
        "d": {"k": 2},
    }
    with pytest.raises(RunError, match=re.escape("parameter `l` is list; `{}` is not")):
        parse_parameters(project, ["l={}"])
    with pytest.raises(RunError, match="parameter `b` is bool; `maybe` is not"):
        parse_parameters(project, ["b=maybe"])


# -- failures ------------------------------------------------------------------------------------

FAIL_CELLS = [
    "x = 1",
    'y = x + 1\nprint("before the error")\nraise ValueError("boom")',
    "w = y + 1",
]
FAIL_MANIFEST = """
name: fails
steps:
  first: {cells: 1}
  bad: {cells: 2}
  after: {cells: 3}
"""


def test_a_failing_cell_fails_the_run_naming_cell_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "fails", FAIL_CELLS, FAIL_MANIFEST)
    r = run_cli(capsys, "run", str(root), "--json")
    assert r.code == EXIT_INPUT
    assert "Traceback (most recent call last)" in r.err  # the user's traceback, shown ...
    assert 'File "<cell 2>", line 3' in r.err
    assert "step 'bad' failed in cell 2 of nb.ipynb, line 3: ValueError: boom" in r.err
    assert 'File "/' not in r.err  # ... without nbflow's or kfp's frames
    doc = cli_json(r)
    assert doc["ok"] is False
    assert json_statuses(doc) == {"first": "succeeded", "bad": "failed", "after": "not-run"}
    error = doc["steps"][1]["error"]
    assert (
        error.splitlines()[0] == "step 'bad' failed in cell 2 of nb.ipynb, line 3: ValueError: boom"
    )
    assert "executor_input" not in error and "outputFile" not in error  # no kfp chatter
    assert "run failed" in r.err
    # the failed step's report still holds what it printed, and the error
    report = Path(doc["steps"][1]["report"]).read_text(encoding="utf-8")
    assert "before the error" in report and "boom" in report
    assert Path(doc["steps"][0]["report"]).is_file()
    assert doc["steps"][2]["report"] is None
    assert (Path(doc["run_dir"]) / "run.json").is_file()

    # again: the first step comes from the cache, and its report with it
    r = run_cli(capsys, "run", str(root), "--json")
    doc = cli_json(r)
    assert json_statuses(doc) == {"first": "cached", "bad": "failed", "after": "not-run"}
    assert Path(doc["steps"][0]["report"]).is_file()


@pytest.mark.parametrize(
    ("cell", "variable", "type_name"),
    [
        ("g = (i for i in range(3))", "g", "generator"),
        ("import os\nh = open(os.devnull)", "h", "_io.TextIOWrapper"),
    ],
)
def test_a_value_that_cannot_cross_fails_naming_variable_step_and_type(
    cell: str, variable: str, type_name: str, tmp_path: Path, state: Path
) -> None:
    root = write_project(
        tmp_path / "unsavable",
        [cell, f"n = len(list({variable}))"],
        "name: unsavable\nsteps:\n  make: {cells: 1}\n  use: {cells: 2}\n",
    )
    result = run(load(root), state_dir=state)
    assert not result.ok
    assert statuses(result) == {"make": "failed", "use": "not-run"}
    error = result.steps[0].error or ""
    assert error.startswith(f"step 'make': cannot save variable '{variable}' of type {type_name}")
    assert "hint:" in error


def test_a_missing_requirement_stops_the_run_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        tmp_path / "reqs",
        ["x = 1"],
        """
        name: reqs
        requirements: [surely-not-installed-pkg==1.0, "numpy<1"]
        steps: {one: {cells: 1}}
        """,
    )
    r = run_cli(capsys, "run", str(root))
    assert r.code == EXIT_USAGE
    assert "surely-not-installed-pkg==1.0" in r.err and "numpy<1 (installed: " in r.err
    assert "Traceback" not in r.err
    assert not (root / ".nbflow").exists()


def test_retries_rerun_a_failed_step(tmp_path: Path, state: Path) -> None:
    marker = tmp_path / "attempted"
    root = write_project(
        tmp_path / "flaky",
        [
            "import pathlib",
            f"marker = pathlib.Path({str(marker)!r})\n"
            "if not marker.exists():\n"
            "    marker.touch()\n"
            "    raise RuntimeError('first attempt fails')\n"
            "done = 1",
        ],
        "name: flaky\nsetup: 1\nsteps:\n  flaky: {cells: 2, retries: 1}\n",
    )
    seen: list[str] = []
    result = run(load(root), state_dir=state, progress=lambda s: seen.append(s.status))
    assert result.ok, result.steps[0].error
    assert result.steps[0].attempts == 2
    assert seen == ["running", "failed", "retrying", "running", "succeeded"]
    assert result.steps[0].error is None  # the first attempt's error is gone
    log = Path(result.steps[0].log or "").read_text(encoding="utf-8")
    assert "first attempt fails" in log  # but both attempts are in the log


def test_names_that_shadow_generated_code_and_an_int_default_for_a_float(
    tmp_path: Path, state: Path
) -> None:
    # parameters named like the generated module's globals and the components' own arguments;
    # `C: {type: float, default: 1}`: kfp refuses an int for a float input unless nbflow converts it;
    # a step and parameters named like the runtime task, its function and its output
    names = {"dsl": 1, "pipeline": 2, "json": 3, "NamedTuple": 4, "report": 5, "metrics": 6}
    names |= {"runtime": 7, "nbflow_runtime": 8, "zlib": 9}
    root = write_project(
        tmp_path / "names",
        [
            tagged("\n".join(f"{k} = {v}" for k, v in names.items()) + "\nC = 1", "parameters"),
            "x = " + " + ".join(names) + " + C",
            "total = x * 1.0",
        ],
        """
        name: names
        steps:
          first-step: {cells: 2}
          runtime: {cells: 3}
        parameters: {dsl: 1, pipeline: 2, json: 3, NamedTuple: 4, report: 5, metrics: 6, runtime: 7, nbflow_runtime: 8, zlib: 9, C: {type: float, default: 1}}
        metrics: {total: maximize}
        """,
    )
    project = load(root)
    result = run(project, state_dir=state)
    assert result.ok, [s.error for s in result.steps]
    assert result.metrics == {"total": 46.0} and result.parameters["C"] == 1.0
    result = run(project, state_dir=state, parameters={"C": 2, "report": 10})
    assert result.metrics == {"total": 52.0}
    with pytest.raises(RunError, match="not parameters of names: nope"):
        run(project, state_dir=state, parameters={"nope": 1})


def test_a_compiled_pipeline_is_never_read_back_from_the_state_folder(tmp_path: Path) -> None:
    """`nbflow run` once reused `.nbflow/build/<hash>/pipeline.yaml`, code that anyone able to
    write that folder could have planted; now each run compiles its own (issue 12, item 1)."""
    import hashlib

    from nbflow.generate.kfp_source import generate

    root = write_project(
        tmp_path / "p",
        ["x = 2", "y = x * 3"],
        "name: planted\nsteps:\n  a: {cells: 1}\n  b: {cells: 2}\nmetrics: {y: maximize}\n",
    )
    project = load(root)
    digest = hashlib.sha256(generate(project, "local").encode()).hexdigest()[:16]
    planted = root / ".nbflow" / "build" / digest / "pipeline.yaml"
    planted.parent.mkdir(parents=True)
    planted.write_text("planted: [this is not the pipeline\n")
    result = run(project)
    assert result.ok and result.metrics == {"y": 6}
    assert planted.read_text() == "planted: [this is not the pipeline\n"
    (ran,) = [p for p in (root / ".nbflow" / "runs").iterdir() if not p.is_symlink()]
    assert (ran / "pipeline.yaml").read_text().startswith("# PIPELINE DEFINITION")


def test_cell_code_holding_kfp_placeholders_reaches_the_step_byte_for_byte(
    tmp_path: Path, state: Path
) -> None:
    # kfp.local, like the cluster's launcher, substitutes `{{$...}}` and `/kfp-workspace` in the
    # container's command, where the component's source goes: the cells' code must not be there
    # as text (`{{$}}` used to crash the step, the artifact path silently became `null`)
    texts = [
        "{{$}}",
        "{{$.outputs.artifacts['report'].path}}",
        "/kfp-workspace",
        "{{workflow.name}}",
    ]
    out = tmp_path / "seen.json"
    root = write_project(
        tmp_path / "placeholders",
        [
            "import json",
            "texts = [" + ", ".join(json.dumps(t) for t in texts) + "]\n"
            "for t in texts:\n"
            "    print('seen:', t)\n"
            f"open({str(out)!r}, 'w').write(json.dumps(texts))",
        ],
        "name: placeholders\nsetup: 1\nsteps:\n  show: {cells: 2}\n",
    )
    result = run(load(root), state_dir=state)
    assert result.ok, result.steps[0].error
    assert json.loads(out.read_text(encoding="utf-8")) == texts
    log = Path(result.steps[0].log or "").read_text(encoding="utf-8")
    for t in texts:
        assert f"seen: {t}\n" in log


# -- stopping a run, and the processes and files a run leaves -----------------------------------


def sleepy_project(folder: Path) -> tuple[Path, Path, Path]:
    """A project whose step `nap` starts a child process, writes the pids of its shell, itself
    and the child into `pids`, and waits until the file `go` exists; then `after` runs."""
    pids, go = folder / "pids", folder / "go"
    root = write_project(
        folder / "sleepy",
        [
            "import os, pathlib, subprocess, sys, time",
            "child = subprocess.Popen([sys.executable, '-c', "
            "'import time\\nwhile True: time.sleep(0.05)'])\n"
            f"pathlib.Path({str(pids)!r}).write_text("
            "f'{os.getppid()} {os.getpid()} {child.pid}\\n')\n"
            f"while not pathlib.Path({str(go)!r}).exists():\n"
            "    time.sleep(0.05)\n"
            "x = 1",
            "y = x + 1",
        ],
        "name: sleepy\nsetup: 1\nsteps:\n  nap: {cells: 2}\n  after: {cells: 3}\n",
    )
    return root, pids, go


def started_pids(pids: Path) -> list[int]:
    text = pids.read_text() if pids.exists() else ""
    return [int(p) for p in text.split()] if text.endswith("\n") else []


def nbflow_run(
    root: Path, tmp: Path, preexec: Callable[[], object] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "TMPDIR": str(tmp)},
        preexec_fn=preexec,
    )


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str], pids: Path) -> Any:
    """Whatever the test finds, no process of it outlives it."""
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in started_pids(pids):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_to_nbflow_alone_stops_the_step_and_every_process_it_started(
    sig: str, tmp_path: Path
) -> None:
    """`kill -TERM <nbflow's pid>` (a CI job cancelled, a container stopped), SIGINT to that pid
    alone, SIGHUP (the terminal closed): as Ctrl-C, the step and its children end with the run."""
    root, pids_file, _ = sleepy_project(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = nbflow_run(root, tmp)
    with reaped(proc, pids_file):
        pids = wait_for(lambda: started_pids(pids_file), what="the step to start its child")
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_INTERRUPTED, err
        assert f"nbflow: interrupted by {sig}: stopped step `nap` and the processes it started" in (
            err
        )
        assert "nap    stopped after" in err
        assert "Traceback" not in err
        wait_for(lambda: not any(alive(p) for p in pids), timeout=60, what=f"{pids} to end")
    # the step's temporary files went with the run: kfp's ephemeral_component.py, the
    # runtime's nbflow-ipython-* folder
    assert sorted(tmp.iterdir()) == []
    doc = json.loads((root / ".nbflow" / "runs" / "latest" / "run.json").read_text())
    assert doc["interrupted"] == sig and doc["ok"] is False
    assert json_statuses(doc) == {"nap": "stopped", "after": "not-run"}


def test_an_ignored_sighup_stays_ignored_and_a_step_s_leftover_children_end_with_it(
    tmp_path: Path,
) -> None:
    """`nohup nbflow run`: SIGHUP is ignored, the run goes on. The child the step left running
    (holding the step's output pipe) ends when the step ends, as in a pod, and the run does
    not wait for it."""
    root, pids_file, go = sleepy_project(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = nbflow_run(root, tmp, lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    with reaped(proc, pids_file):
        pids = wait_for(lambda: started_pids(pids_file), what="the step to start its child")
        proc.send_signal(signal.SIGHUP)
        go.touch()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_OK, err
        wait_for(lambda: not alive(pids[2]), timeout=60, what="the step's child to end")
    assert sorted(tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("sig", "meaning"),
    [
        ("SIGKILL", "often the out-of-memory killer, when the step needed more memory"),
        ("SIGTERM", "another process or the system asked it to stop"),
    ],
)
def test_a_step_killed_by_a_signal_names_it_and_what_it_usually_means(
    sig: str, meaning: str, tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads $TMPDIR again
    root = write_project(
        tmp_path / "killed",
        ["import os, signal", f"x = 1\nos.kill(os.getpid(), signal.{sig})", "y = x"],
        "name: killed\nsetup: 1\nsteps:\n  first: {cells: 2}\n  second: {cells: 3}\n",
    )
    result = run(load(root), state_dir=state)
    assert statuses(result) == {"first": "failed", "second": "not-run"}
    number = int(getattr(signal, sig))
    assert (result.steps[0].error or "").startswith(
        f"step 'first' was killed by {sig} (signal {number}) in cell 2: {meaning}"
    )
    # nothing of the step is left in $TMPDIR, though its process had no time to clean up
    assert sorted(tmp.iterdir()) == []


@pytest.mark.parametrize("engine", ["nbflow", "kfp-local"])
def test_a_step_s_output_is_written_once(tmp_path: Path, state: Path, engine: str) -> None:
    root = write_project(
        tmp_path / "chatty",
        ["for i in range(2000):\n    print(f'line {i} of the step')\nx = 1"],
        "name: chatty\nsteps:\n  talk: {cells: 1}\n",
    )
    result = run(load(root), state_dir=state, engine=engine, cache=False)
    assert result.ok
    logs = result.run_dir / "logs"
    assert (logs / "talk.log").read_text().count("line 1999 of the step\n") == 1
    if engine == "nbflow":
        return  # no kfp.local log
    kfp_log = (logs / "kfp-local.log").read_text()
    assert "of the step" not in kfp_log
    assert "Executing task 'step-talk'" in kfp_log  # kfp's own lines stay there


def _file_size_limit(size: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_an_output_too_large_to_write_says_so_not_open_files(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "big",
        ["blob = b'x' * (4 << 20)", "n = len(blob)"],
        "name: big\nsteps:\n  make: {cells: 1}\n  use: {cells: 2}\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nbflow", "run", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=_file_size_limit(1 << 20),
    )
    assert proc.returncode == EXIT_INPUT, proc.stderr
    doc = json.loads(proc.stdout)
    error = doc["steps"][0]["error"]
    assert error.startswith("step 'make': cannot save variable 'blob' of type bytes: ")
    assert "File too large" in error
    assert "hint: the file is larger than allowed here (`ulimit -f`" in error
    assert "open files" not in error


def test_logs_that_cannot_be_written_end_the_run_with_a_message(tmp_path: Path) -> None:
    """The step prints more than the file size limit lets nbflow write into its log (kfp.local,
    where nbflow writes the step's log; under the nbflow engine the step writes it itself)."""
    root = write_project(
        tmp_path / "loud",
        ["for i in range(13000):\n    print('z' * 99)"],
        "name: loud\nsteps:\n  shout: {cells: 1}\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nbflow", "run", str(root), "--engine", "kfp-local"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=_file_size_limit(1 << 20),
    )
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "nbflow: cannot write the run's logs in " in proc.stderr
    assert "File too large; a file grew past the size limit (`ulimit -f`" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_compiled_pipeline_cut_short_is_compiled_again(tmp_path: Path) -> None:
    """A run killed while it wrote its compiled pipeline once left half a pipeline.yaml that
    every later run took for the pipeline; now no run reads another's: each compiles its own
    into its run folder (and nothing into a shared `build/`)."""
    state = tmp_path / "state"
    root = write_project(tmp_path / "cut", ["x = 1", "y = x + 1"], CUT_MANIFEST)
    first = run(load(root), state_dir=state, cache=False)
    assert first.ok
    [ir] = [p for p in state.glob("runs/*/pipeline.yaml") if not p.parent.is_symlink()]
    text = ir.read_text(encoding="utf-8")
    ir.write_text(text[: len(text) // 2], encoding="utf-8")
    again = run(load(root), state_dir=state, cache=False)
    assert again.ok and statuses(again) == {"one": "succeeded", "two": "succeeded"}
    irs = [p for p in state.glob("runs/*/pipeline.yaml") if not p.parent.is_symlink()]
    assert len(irs) == 2 and text in {p.read_text(encoding="utf-8") for p in irs}
    assert not (state / "build").exists()


CUT_MANIFEST = "name: cut\nsteps:\n  one: {cells: 1}\n  two: {cells: 2}\n"


def test_step_output_that_is_not_utf8_is_logged_with_replacement_characters(
    tmp_path: Path,
) -> None:
    root = write_project(
        tmp_path / "bytes",
        ["import os\nos.write(1, b'caf\\xe9 \\xff\\n')\nx = 1"],
        "name: bytes\nsteps:\n  raw: {cells: 1}\n",
    )
    result = run(load(root), state_dir=tmp_path / "state")
    assert result.ok, result.steps[0].error
    assert "caf\ufffd \ufffd\n" in Path(result.steps[0].log or "").read_text(encoding="utf-8")


def test_a_state_folder_that_cannot_be_written_is_an_environment_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        tmp_path / "blocked", ["x = 1"], "name: blocked\nsteps: {one: {cells: 1}}\n"
    )
    (root / ".nbflow").write_text("a file where the run's folder should be\n")
    r = run_cli(capsys, "run", str(root))
    assert r.code == EXIT_USAGE
    assert "nbflow: cannot write the run's folder " in r.err
    assert "Traceback" not in r.err


def test_a_step_refuses_a_runtime_archive_that_is_not_the_one_built_in(tmp_path: Path) -> None:
    """The runtime's archive is an artifact like any other: whoever can write the artifact
    store could swap it. A step checks its SHA-256 before importing anything of it."""
    import io
    import zipfile

    state = tmp_path / "state"
    root = write_project(tmp_path / "p", ["x = 2"], "name: swapped\nsteps:\n  a: {cells: 1}\n")
    project = load(root)
    assert run(project, state_dir=state).ok
    [artifact] = state.glob("artifacts/*/nbflow-runtime/runtime")
    marker = tmp_path / "planted-runtime-ran"
    planted = io.BytesIO()
    with zipfile.ZipFile(planted, "w") as archive:
        code = f"open({str(marker)!r}, 'w').close()\ndef run(*args, **kwargs):\n    pass\n"
        archive.writestr("nbflow_runtime/__init__.py", code)
    artifact.write_bytes(planted.getvalue())
    # the step runs again; the runtime task, which depends on nothing, comes from the cache
    result = run(project, state_dir=state, cache=False)
    assert not result.ok
    [step] = result.steps
    assert "before the step runtime started" in (step.error or "")
    log = Path(step.log or "").read_text(encoding="utf-8")
    assert "the nbflow runtime artifact is not the one this pipeline was built with" in log
    assert not marker.exists()
