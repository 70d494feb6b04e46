"""nbflow's local engine (`nbflow.local.engine` and the modules it uses): the compiled IR read
as tasks, the ExecutorInput, cache keys, warm processes, steps in parallel by the DAG, the step
runtime's structured events; and both engines giving the same outputs for the examples."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nbflow.cli.main import EXIT_OK, EXIT_USAGE
from nbflow.local import warm
from nbflow.local.cache import Cache, task_key
from nbflow.local.engine import read_events
from nbflow.local.executor_input import Artifact, build, read_outputs
from nbflow.local.ir import IRError, pipeline_from_ir
from nbflow.local.run import RunError, run
from nbflow.local.worker import _fill, python_component_source
from tests.support.cli import run_cli
from tests.support.projects import Cell, load, tagged, write_project
from tests.test_examples import EXAMPLES, EXPECTED

# -- the IR as tasks -----------------------------------------------------------------------------


def _ir(tasks: dict[str, Any]) -> dict[str, Any]:
    comp = {"executorLabel": "exec-x", "outputDefinitions": {"artifacts": {}}}
    return {
        "pipelineInfo": {"name": "p"},
        "components": {"comp-x": comp},
        "deploymentSpec": {"executors": {"exec-x": {"container": {"image": "i"}}}},
        "root": {
            "dag": {"tasks": tasks},
            "inputDefinitions": {"parameters": {"n": {"defaultValue": 3}}},
        },
    }


def _task(*after: str, **extra: Any) -> dict[str, Any]:
    return {"componentRef": {"name": "comp-x"}, "dependentTasks": list(after), **extra}


def test_tasks_come_in_dependency_order_ties_by_name() -> None:
    p = pipeline_from_ir(
        _ir({"d": _task("b", "c"), "c": _task("a"), "b": _task("a"), "a": _task()})
    )
    assert [t.name for t in p.tasks] == ["a", "b", "c", "d"]
    assert p.defaults == {"n": 3} and p.name == "p"


def test_a_task_is_cached_only_where_the_ir_says_enable_cache() -> None:
    tasks = pipeline_from_ir(
        _ir(
            {
                "on": _task(cachingOptions={"enableCache": True}),
                "off": _task(cachingOptions={}),  # how the compiler writes caching turned off
                "unsaid": _task(),
            }
        )
    ).tasks
    assert {t.name: t.cache for t in tasks} == {"off": False, "on": True, "unsaid": False}


def test_what_the_engine_does_not_run_is_refused_not_run_differently() -> None:
    with pytest.raises(IRError, match="loops and conditions"):
        pipeline_from_ir(_ir({"a": _task(triggerPolicy={"condition": "x"})}))
    with pytest.raises(IRError, match="depend on each other"):
        pipeline_from_ir(_ir({"a": _task("b"), "b": _task("a")}))
    with pytest.raises(IRError, match="unknown tasks: z"):
        pipeline_from_ir(_ir({"a": _task("z")}))


# -- the ExecutorInput and what a task leaves -----------------------------------------------------


def test_executor_input_carries_parameters_upstream_artifacts_and_output_uris(
    tmp_path: Path,
) -> None:
    ir = _ir({"a": _task()})
    ir["components"]["comp-x"]["outputDefinitions"]["artifacts"] = {
        "metrics": {"artifactType": {"schemaTitle": "system.Metrics", "schemaVersion": "0.0.1"}}
    }
    [task] = pipeline_from_ir(ir).tasks
    upstream = Artifact("out_a", {"schemaTitle": "system.Artifact"}, "/x/out_a", {"k": 1})
    doc = build(task, {"param_n": 3}, {"in_a": upstream}, tmp_path)
    assert doc["inputs"]["parameterValues"] == {"param_n": 3}
    assert doc["inputs"]["artifacts"]["in_a"]["artifacts"][0]["metadata"] == {"k": 1}
    out = doc["outputs"]["artifacts"]["metrics"]["artifacts"][0]
    assert out["uri"] == str(tmp_path / "metrics")
    # the metadata the executor wrote comes back with the outputs
    Path(doc["outputs"]["outputFile"]).write_text(
        json.dumps({"artifacts": {"metrics": {"artifacts": [{"metadata": {"acc": 0.5}}]}}})
    )
    assert read_outputs(task, doc)["metrics"].metadata == {"acc": 0.5}


def test_placeholders_are_filled_as_a_launcher_fills_them() -> None:
    doc = {
        "inputs": {
            "parameterValues": {"n": 3, "s": "a b"},
            "artifacts": {"i": {"artifacts": [{"uri": "/in/i"}]}},
        },
        "outputs": {"artifacts": {"o": {"artifacts": [{"uri": "/out/o"}]}}, "outputFile": "/f"},
    }
    assert _fill("{{$.inputs.parameters['n']}}", doc) == "3"
    assert _fill("{{$.inputs.parameters['s']}}", doc) == "a b"
    assert _fill("x={{$.inputs.artifacts['i'].path}}", doc) == "x=/in/i"
    assert _fill("{{$.outputs.artifacts['o'].uri}}", doc) == "/out/o"
    assert json.loads(_fill("{{$}}", doc)) == doc
    assert python_component_source(["sh", "-c", "echo"]) is None


# -- cache keys ----------------------------------------------------------------------------------


def test_cache_key_covers_component_parameters_and_upstream(tmp_path: Path) -> None:
    [task] = pipeline_from_ir(_ir({"a": _task()})).tasks
    base = task_key(task, {"n": 1}, {"in_x": "k1/out_x"})
    assert task_key(task, {"n": 1}, {"in_x": "k1/out_x"}) == base
    assert task_key(task, {"n": 2}, {"in_x": "k1/out_x"}) != base
    assert task_key(task, {"n": 1}, {"in_x": "k2/out_x"}) != base
    other = pipeline_from_ir(_ir({"a": _task()})).tasks[0]
    other.executor["command"] = ["changed program"]
    assert task_key(other, {"n": 1}, {"in_x": "k1/out_x"}) != base

    # an entry whose artifacts were deleted is a miss, not a stale hit
    cache = Cache(tmp_path / "cache")
    (tmp_path / "art").mkdir()
    cache.put(base, "a", {"o": Artifact("o", {}, str(tmp_path / "art"))})
    assert cache.get(base) is not None
    shutil.rmtree(tmp_path / "art")
    assert cache.get(base) is None


# -- what the server preloads ---------------------------------------------------------------------


def test_preload_takes_installed_libraries_not_modules_beside_the_notebook(tmp_path: Path) -> None:
    (tmp_path / "helpers_nbf_test.py").write_text("X = 1\n")
    sources = [
        "import json\nfrom email.mime import text\nimport helpers_nbf_test\n%matplotlib inline",
        "!pip install x\nimport tensorflow as tf\nfrom . import y",
    ]
    assert warm.imported_modules(sources) == [
        "json",
        "email.mime",
        "helpers_nbf_test",
        "tensorflow",
    ]
    sys.path.insert(0, str(tmp_path))  # importable, as from the notebook's folder
    try:
        preload = warm.preload_list(sources, tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
    assert "json" in preload and "email.mime" in preload
    assert "helpers_nbf_test" not in preload and "tensorflow" not in preload
    assert preload[: len(warm.RUNTIME_MODULES)] == list(warm.RUNTIME_MODULES)


def test_a_step_finds_the_runtime_the_server_preloaded(tmp_path: Path) -> None:
    """The server imports the step runtime once, from the archive this process's pipelines
    carry; a step, once it has checked its own copy (the runtime task's artifact), finds the
    package imported instead of compiling it again."""
    where = tmp_path / "where.txt"
    cell = f"import sys\nopen({str(where)!r}, 'w').write(sys.modules['nbflow_runtime'].__file__)"
    root = write_project(tmp_path / "p", [cell], "name: preloaded\nsteps:\n  a: {cells: 1}\n")
    result = run(load(root), state_dir=tmp_path / "state")
    assert result.ok, [s.error for s in result.steps]
    assert where.read_text().startswith(warm.runtime_archive() + os.sep)


def test_events_cut_short_by_a_kill_are_left_out(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text('{"event": "started"}\n{"event": "cell", "cell": 3}\n{"event": "fin')
    assert [e["event"] for e in read_events(f)] == ["started", "cell"]
    assert read_events(tmp_path / "none.jsonl") == []


# -- runs ----------------------------------------------------------------------------------------

# `left` and `right` only finish once each has seen the other's file: they must run side by side
HANDSHAKE = """\
import os, pathlib, tempfile, time
mine, theirs = pathlib.Path(base, "{me}"), pathlib.Path(base, "{other}")
mine.write_text(json.dumps({{"sid": os.getsid(0) == os.getpid(), "tmp": tempfile.gettempdir()}}))
for _ in range(1200):
    if theirs.exists():
        break
    time.sleep(0.05)
assert theirs.exists(), "the other side did not run alongside"
{me} = True"""

PARALLEL_CELLS: list[str | Cell] = [
    "import json",
    tagged("base = ''", "parameters"),
    "start = 1",
    HANDSHAKE.format(me="left", other="right"),
    HANDSHAKE.format(me="right", other="left"),
    "both = left and right",
]
PARALLEL_MANIFEST = """
name: sides
setup: 1
steps:
  start: {cells: 3}
  left: {cells: 4}
  right: {cells: 5}
  join: {cells: 6}
parameters: {base: ''}
"""


def test_the_default_engine_runs_a_small_pipeline(tmp_path: Path) -> None:
    """The fast loop's one pipeline run (the others are marked slow): two steps, a value that
    crosses between them and a metric, under the default engine, its process server preloading
    the setup cell's library (nbflow.local.native, warm, preload, worker, engine)."""
    cells = ["import json", "xs = [1, 2, 3]", "total = float(sum(xs))\nprint(json.dumps(xs))"]
    manifest = (
        "name: small\nsetup: 1\nsteps:\n  make: {cells: 2}\n  add: {cells: 3}\n"
        "metrics: {total: maximize}\n"
    )
    result = run(load(write_project(tmp_path / "small", cells, manifest)), jobs=1)
    assert result.ok, [s.error for s in result.steps]
    assert {s.name: s.status for s in result.steps} == {"make": "succeeded", "add": "succeeded"}
    assert result.metrics == {"total": 6.0}
    [add] = [s for s in result.steps if s.name == "add"]
    assert add.log is not None and "[1, 2, 3]" in Path(add.log).read_text(encoding="utf-8")


@pytest.mark.slow
def test_independent_steps_run_side_by_side_each_in_its_own_session(tmp_path: Path) -> None:
    root = write_project(tmp_path / "sides", PARALLEL_CELLS, PARALLEL_MANIFEST)
    base = tmp_path / "files"
    base.mkdir()
    result = run(load(root), parameters={"base": str(base)}, jobs=2)
    assert result.ok, [s.error for s in result.steps]
    assert {s.name: s.status for s in result.steps} == dict.fromkeys(
        ("start", "left", "right", "join"), "succeeded"
    )
    for side in ("left", "right"):
        seen = json.loads((base / side).read_text())
        assert seen["sid"], "a step is its own session"
        assert Path(seen["tmp"]).is_relative_to(result.run_dir / "tmp")  # the run's TMPDIR
    assert not (result.run_dir / "tmp").exists()  # removed after the run
    # no kfp.local log: nothing was read from another tool's log text
    assert not (result.run_dir / "logs" / "kfp-local.log").exists()


@pytest.mark.slow
def test_jobs_1_runs_one_step_at_a_time(tmp_path: Path) -> None:
    cells = ["import time", "a = time.time()\ntime.sleep(0.2)", "b = time.time()\ntime.sleep(0.2)"]
    manifest = "name: one\nsetup: 1\nsteps:\n  a: {cells: 2}\n  b: {cells: 3}\n"
    result = run(load(write_project(tmp_path / "one", cells, manifest)), jobs=1)
    assert result.ok
    spans = []
    for step in ("a", "b"):
        [events] = (result.run_dir / "logs").glob(f".step-{step}.1.events.jsonl")
        times = [e["time"] for e in read_events(events)]
        spans.append((min(times), max(times)))
    (_, a1), (b0, _) = sorted(spans)
    assert a1 <= b0  # the second started after the first finished


@pytest.mark.slow
def test_a_failure_comes_from_the_runtime_events_and_a_kill_names_the_signal(
    tmp_path: Path,
) -> None:
    cells = [
        "import os, signal",
        "x = 1",
        "raise ValueError('bad value here')",
        "os.kill(os.getpid(), signal.SIGKILL)",
        "z = 1",
    ]
    manifest = (
        "name: bad\nsetup: 1\nsteps:\n  fine: {cells: 2}\n  raises: {cells: 3}\n"
        "  killed: {cells: 4}\n"
    )
    result = run(load(write_project(tmp_path / "bad", cells, manifest)), cache=False, jobs=3)
    by = {s.name: s for s in result.steps}
    assert not result.ok
    assert by["fine"].status == "succeeded"
    assert by["raises"].status == "failed"
    assert by["raises"].error and by["raises"].error.startswith("step 'raises'")
    assert "ValueError: bad value here" in by["raises"].error
    assert by["killed"].status == "failed"
    assert by["killed"].error and by["killed"].error.startswith(
        f"step 'killed' was killed by SIGKILL (signal {int(signal.SIGKILL)}) in cell 4: often "
        "the out-of-memory killer"
    )


@pytest.mark.slow
def test_engine_and_jobs_options_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = ["x = 1", "y = x + 1"]
    root = write_project(
        tmp_path / "p", cells, "name: p\nsteps:\n  a: {cells: 1}\n  b: {cells: 2}\n"
    )
    r = run_cli(capsys, "run", str(root), "--jobs", "0")
    assert r.code == EXIT_USAGE and "must be at least 1" in r.err
    r = run_cli(capsys, "run", str(root), "--engine", "nope")
    assert r.code == EXIT_USAGE
    with pytest.raises(RunError, match="unknown engine"):
        run(load(root), engine="nope")
    r = run_cli(capsys, "run", str(root), "--engine", "kfp-local", "--json")
    assert r.code == EXIT_OK, r.err
    assert {s["status"] for s in json.loads(r.out)["steps"]} == {"succeeded"}
    # kfp.local's cache: the runtime task too
    r = run_cli(capsys, "run", str(root), "--engine", "kfp-local", "--json")
    assert {s["status"] for s in json.loads(r.out)["steps"]} == {"cached"}
    log = Path(json.loads(r.out)["run_dir"]) / "logs" / "kfp-local.log"
    assert "Task nbflow-runtime cache hit" in log.read_text()
    r = run_cli(capsys, "run", str(root), "-j", "1", "--json")
    assert r.code == EXIT_OK, r.err
    # each engine keeps its own cache: the nbflow engine ran the steps
    assert {s["status"] for s in json.loads(r.out)["steps"]} == {"succeeded"}
    r = run_cli(capsys, "run", str(root), "--json")
    assert {s["status"] for s in json.loads(r.out)["steps"]} == {"cached"}


@pytest.mark.slow
def test_a_changed_data_file_runs_its_step_again(tmp_path: Path) -> None:
    cells = ["n = len(open('data.txt').read())", "m = n * 2"]
    root = write_project(
        tmp_path / "d", cells, "name: d\nsteps:\n  a: {cells: 1}\n  b: {cells: 2}\n"
    )
    (root / "data.txt").write_text("abc")
    first = run(load(root))
    assert [s.status for s in first.steps] == ["succeeded", "succeeded"]
    assert [s.status for s in run(load(root)).steps] == ["cached", "cached"]
    (root / "data.txt").write_text("abcd")
    assert [s.status for s in run(load(root)).steps] == ["succeeded", "succeeded"]


# -- both engines, the same outputs ----------------------------------------------------------------


def _outputs(state: Path) -> dict[str, dict[str, Any]]:
    """Every task's output artifacts of the one run under `state`: by `<task>/<output>`, the
    serializer that wrote it and the value as loaded back."""
    from nbflow.incluster.runtime.values import (
        RECORD_DIGEST,
        RECORD_SERIALIZER,
        artifact_digest,
        load_input,
    )

    [folder] = (state / "artifacts").iterdir()
    out: dict[str, dict[str, Any]] = {}
    for art in sorted(folder.glob("*/out_*")):
        meta = json.loads((art / "nbflow.json").read_text())
        # the test's own artifacts: the record a consuming step gets, made from them
        record = {RECORD_SERIALIZER: meta["serializer"], RECORD_DIGEST: artifact_digest(str(art))}
        value = load_input(str(art), record, {})
        out[f"{art.parent.name}/{art.name}"] = {"meta": meta, "value": value}
    return out


def _same(a: object, b: object) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, pd.DataFrame | pd.Series):
        return type(a) is type(b) and bool(a.equals(b))  # type: ignore[attr-defined]
    return type(a) is type(b)  # models and functions: the same kind of value


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_both_engines_give_the_same_outputs_for_the_examples(example: Path, tmp_path: Path) -> None:
    copy = tmp_path / example.name
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns(".nbflow", "dist"))
    metric, _, _, tolerance = EXPECTED[example.name]
    results, outputs = {}, {}
    for engine in ("nbflow", "kfp-local"):
        state = tmp_path / f"state-{engine}"
        results[engine] = run(load(copy), state_dir=state, engine=engine, cache=False)
        assert results[engine].ok, [s.error for s in results[engine].steps]
        outputs[engine] = _outputs(state)
    ours, theirs = results["nbflow"], results["kfp-local"]
    assert [(s.name, s.status) for s in ours.steps] == [(s.name, s.status) for s in theirs.steps]
    assert set(ours.metrics) == set(theirs.metrics) == {metric}
    assert abs(ours.metrics[metric] - theirs.metrics[metric]) <= tolerance
    assert outputs["nbflow"].keys() == outputs["kfp-local"].keys()
    for key, mine in outputs["nbflow"].items():
        other = outputs["kfp-local"][key]
        assert mine["meta"]["serializer"] == other["meta"]["serializer"], key
        if tolerance == 1e-12:  # deterministic examples: the values themselves
            assert _same(mine["value"], other["value"]), key
    assert {s.name for s in ours.steps if s.report} == {s.name for s in theirs.steps if s.report}


@pytest.mark.slow
def test_a_project_named_by_a_relative_path_gets_an_absolute_tmpdir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the step changes to the notebook's folder: a relative TMPDIR would not be found from there
    cells = [
        "import tempfile\nassert '/.nbflow/runs/' in tempfile.gettempdir(), tempfile.gettempdir()"
    ]
    write_project(tmp_path / "rel", cells, "name: rel\nsteps:\n  a: {cells: 1}\n")
    monkeypatch.chdir(tmp_path)
    r = run_cli(capsys, "run", "rel", "--json")
    assert r.code == EXIT_OK, r.err
    assert Path(json.loads(r.out)["steps"][0]["log"]).is_absolute()


def _caller_script(tmp_path: Path) -> tuple[str, Path, Path]:
    """A script that runs a two-step project through `nbflow.api.run` at its top level (no
    `if __name__ == "__main__":` guard), each run of it and of each step marked in a file."""
    steps, runs = tmp_path / "steps-ran", tmp_path / "script-ran"
    mark = "with open({!r}, 'a') as f:\n    f.write({!r})\n"
    cells = ["x = 2\n" + mark.format(str(steps), "a\n"), mark.format(str(steps), "b\n") + "y = x"]
    root = write_project(
        tmp_path / "p", cells, "name: g\nsteps:\n  a: {cells: 1}\n  b: {cells: 2}\n"
    )
    script = (
        "import nbflow.api\n"
        + mark.format(str(runs), "script\n")
        + f"result = nbflow.api.run({str(root)!r}, cache=False)\n"
        + "print('ran', result.status, [s.error for s in result.steps])\n"
    )
    return script, steps, runs


@pytest.mark.parametrize(
    "how",
    [
        "file",
        pytest.param("stdin", marks=pytest.mark.slow),
        pytest.param("module", marks=pytest.mark.slow),
    ],
)
def test_the_engine_does_not_run_the_callers_main_module_again(tmp_path: Path, how: str) -> None:
    """A task process used to import the caller's main module first, as the forkserver does for
    a target defined there: a script without a `__main__` guard ran itself again in each step,
    one read from stdin failed (`FileNotFoundError: '<stdin>'`). Each in a fresh interpreter."""
    script, steps, runs = _caller_script(tmp_path)
    (tmp_path / "caller.py").write_text(script, encoding="utf-8")
    argv = {"file": ["caller.py"], "stdin": ["-"], "module": ["-m", "caller"]}[how]
    proc = subprocess.run(
        [sys.executable, *argv],
        input=script if how == "stdin" else None,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ran succeeded" in proc.stdout, proc.stdout + proc.stderr
    assert runs.read_text(encoding="utf-8") == "script\n"
    assert steps.read_text(encoding="utf-8") == "a\nb\n"


@pytest.mark.slow
def test_the_callers_own_forkserver_keeps_its_main_module(tmp_path: Path) -> None:
    """nbflow's process server is its own: after a run, the caller's forkserver (the default
    start method from Python 3.14) still gives its processes the main module, for a target
    defined there."""
    script, _, runs = _caller_script(tmp_path)
    script = (
        "def double(x):\n    return 2 * x\n\n"
        "if __name__ == '__main__':\n"
        + "".join(f"    {line}\n" for line in script.splitlines())
        + "    import multiprocessing\n"
        + "    with multiprocessing.get_context('forkserver').Pool(1) as pool:\n"
        + "        print('doubled', pool.map(double, [1, 2]))\n"
    )
    (tmp_path / "caller.py").write_text(script, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "caller.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "ran succeeded" in proc.stdout and "doubled [2, 4]" in proc.stdout, proc.stdout
    assert runs.read_text(encoding="utf-8") == "script\n"


KERNEL_DRIVER = """
import sys
from jupyter_client.manager import start_new_kernel

manager, client = start_new_kernel(kernel_name="python3")
try:
    out = []
    hook = lambda m: out.append(str(m["content"].get("text", m["content"].get("evalue", ""))))
    client.execute_interactive(sys.stdin.read(), timeout=240, output_hook=hook)
    print("".join(out))
finally:
    client.stop_channels()
    manager.shutdown_kernel(now=True)
"""


@pytest.mark.slow
def test_the_engine_runs_from_an_ipython_kernel(tmp_path: Path) -> None:
    """The same script as a notebook's cell, in a Jupyter kernel (whose `__main__` is
    IPython's user namespace)."""
    script, steps, runs = _caller_script(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", KERNEL_DRIVER],
        input=script,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "ran succeeded" in proc.stdout, proc.stdout + proc.stderr
    assert runs.read_text(encoding="utf-8") == "script\n"
    assert steps.read_text(encoding="utf-8") == "a\nb\n"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its parent is gone too
        return f.read().split(") ")[1].startswith("Z")


@pytest.mark.slow
def test_sigterm_to_nbflow_run_ends_the_running_step_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    cells = [
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(600)\nx = 1"
    ]
    root = write_project(tmp_path / "long", cells, "name: long\nsteps:\n  a: {cells: 1}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(2400):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        step = int(pidfile.read_text())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    for _ in range(200):
        if _gone(step):
            break
        time.sleep(0.05)
    assert _gone(step), "the step outlived nbflow"


@pytest.mark.slow
def test_a_library_that_fails_on_import_fails_its_step_not_the_process_server(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "breaks_on_import_nbf.py").write_text("raise RuntimeError('no import here')\n")
    manifest = "name: p\nsetup: 1\nsteps:\n  a: {cells: 2}\n"
    root = write_project(tmp_path / "p", ["import breaks_on_import_nbf", "x = 1"], manifest)
    env = {**os.environ, "PYTHONPATH": f"{lib}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "nbflow", "run", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    # the step's own failure, at its setup cell, and nothing from the server
    assert "RuntimeError: no import here" in proc.stderr
    assert "multiprocessing" not in proc.stderr and "nbflow/local" not in proc.stderr


def test_the_process_server_holds_none_of_nbflows_output(tmp_path: Path) -> None:
    """The server once kept nbflow's stdout and stderr open: whatever read them through a pipe
    waited past nbflow's exit until the server had torn down its libraries (most of a second)."""
    from nbflow.local import process_server

    ctx = warm.context(["json"])
    started = ctx.Process(target=os.getpid)  # the server is up once it has forked a process
    started.start()
    started.join()
    server = process_server.server()._forkserver_pid  # type: ignore[attr-defined]
    assert server is not None
    for fd in (1, 2):
        assert os.readlink(f"/proc/{server}/fd/{fd}") == os.devnull


# -- the compiled pipelines stored for fully cached runs -----------------------------------------

STORED_CELLS = ["x = 2", "y = x * 3"]
STORED_MANIFEST = "name: stored\nsteps:\n  a: {cells: 1}\n  b: {cells: 2}\nmetrics: {y: maximize}\n"


@pytest.mark.slow
def test_a_second_run_with_everything_cached_neither_imports_kfp_nor_compiles(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "p", STORED_CELLS, STORED_MANIFEST)
    script = (
        "import sys\nfrom nbflow.cli.main import main\ncode = main(['run', sys.argv[1]])\n"
        "print('kfp imported' if 'kfp' in sys.modules else 'no kfp', code, file=sys.stderr)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=300
        )
        for _ in range(2)
    ]
    assert runs[0].returncode == 0 and "kfp imported 0" in runs[0].stderr, runs[0].stderr
    assert "✓ b" in runs[0].stderr
    assert "no kfp 0" in runs[1].stderr, runs[1].stderr  # served without compiling
    assert "↺ a" in runs[1].stderr and "↺ b" in runs[1].stderr and "y=6" in runs[1].stdout
    ran = sorted(p for p in (root / ".nbflow" / "runs").iterdir() if not p.is_symlink())
    texts = [(p / "pipeline.yaml").read_text(encoding="utf-8") for p in ran]
    assert texts[0] == texts[1] and texts[0].startswith("# PIPELINE DEFINITION")


def test_the_stored_pipelines_are_the_ones_used_last(tmp_path: Path) -> None:
    """`engine-cache/ir/` grew by a file per distinct source; now it keeps `KEEP`, a read
    counting as a use."""
    from nbflow.local import ir_store

    folder = tmp_path / "ir"
    store = ir_store.IRStore(folder, keep=3)
    for i in range(3):
        store.put(f"source {i}", f"ir {i}")
    for age, path in enumerate(sorted(folder.glob("*.yaml"), key=lambda p: p.name)):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # long ago, in an order of their own
    oldest = min(folder.glob("*.yaml"), key=lambda p: p.stat().st_mtime)
    [used] = [f"source {i}" for i in range(3) if ir_store.source_key(f"source {i}") == oldest.stem]
    assert store.get(used) is not None  # the oldest, read now: kept
    store.put("source 3", "ir 3")
    kept = {f"source {i}" for i in range(4) if store.get(f"source {i}") is not None}
    assert len(kept) == 3 and {used, "source 3"} <= kept
    assert not list(folder.glob(".*.tmp"))
    default = ir_store.IRStore(tmp_path / "default")
    for i in range(ir_store.KEEP + 4):
        default.put(f"source {i}", "ir")
    assert len(list((tmp_path / "default").glob("*.yaml"))) == ir_store.KEEP


def test_a_stored_pipeline_is_keyed_by_the_compiler_that_wrote_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout whose compiler (nbflow.generate) changed without a new version compiles
    again rather than reading what the old code wrote."""
    import hashlib

    from nbflow.local import ir_store

    assert ir_store.compiler_digest() != hashlib.sha256().hexdigest()  # it read the modules
    store = ir_store.IRStore(tmp_path / "ir")
    store.put("source", "ir by the old compiler")
    assert store.get("source") == "ir by the old compiler"
    monkeypatch.setattr(ir_store, "compiler_digest", lambda: "changed")
    assert store.get("source") is None


@pytest.mark.slow
def test_a_stored_pipeline_runs_nothing_of_its_own(tmp_path: Path) -> None:
    """Only cached outputs come of a stored pipeline: one planted with other commands (so other
    cache keys) is not used; the run compiles its pipeline and runs that (docs/security.md)."""
    import yaml

    from nbflow.generate.kfp_source import generate
    from nbflow.local.ir_store import IRStore
    from nbflow.local.run import _compiled

    root = write_project(tmp_path / "p", STORED_CELLS, STORED_MANIFEST)
    project = load(root)
    source = generate(project, "local")
    marker = tmp_path / "planted-ran"
    ir = yaml.safe_load(_compiled(source))
    for executor in ir["deploymentSpec"]["executors"].values():
        executor["container"]["command"] = ["sh", "-c", f"touch {marker}"]
        executor["container"]["args"] = []
    IRStore(root / ".nbflow" / "engine-cache" / "ir").put(source, yaml.safe_dump(ir))
    result = run(project)
    assert result.ok and result.metrics == {"y": 6}
    assert {s.name: s.status for s in result.steps} == {"a": "succeeded", "b": "succeeded"}
    assert not marker.exists()
    assert (result.run_dir / "pipeline.yaml").read_text().startswith("# PIPELINE DEFINITION")
    # the stored pipeline is now the one compiled, and a second run is served from the cache
    again = run(project)
    assert {s.name: s.status for s in again.steps} == {"a": "cached", "b": "cached"}
    assert not marker.exists()


@pytest.mark.slow
def test_a_killed_step_leaves_every_line_it_printed_in_its_log(tmp_path: Path) -> None:
    """A step's stdout is line-buffered in its log: a step killed (out of memory) used to lose
    what it printed since the last full buffer, when PYTHONUNBUFFERED was not set."""
    cells = ["import os, signal\nprint('printed before the kill')\nos.kill(os.getpid(), 9)"]
    root = write_project(tmp_path / "k", cells, "name: k\nsteps:\n  killed: {cells: 1}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a fresh server
    proc = subprocess.run(
        [sys.executable, "-m", "nbflow", "run", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1 and "killed by SIGKILL" in proc.stderr, proc.stderr
    log = root / ".nbflow" / "runs" / "latest" / "logs" / "killed.log"
    assert "printed before the kill" in log.read_text(encoding="utf-8")
