"""`nbflow run`: the compiled pipeline on this machine.

The same generated components as on the cluster (compiled for the `local` target: nothing is
pip-installed, Kubernetes-only settings are left out) run under one of two engines:

- `nbflow` (the default, `nbflow.local.native`): nbflow's own engine, steps in parallel along the
  DAG, each in a warm process of its own, told what happened by the step runtime's events;
- `kfp-local`: kfp.local's SubprocessRunner in this interpreter, one task at a time, with
  kfp.local's cache; what happened is read from its log text (a fidelity check). Each step runs
  in its own session (`nbflow.local.processes`), with a temporary folder per run.

Everything lives under the project's `.nbflow/` folder:

    .nbflow/artifacts/            every task's outputs (both engines)
    .nbflow/engine-cache/         the nbflow engine's cache entries
    .nbflow/cache/                kfp.local's cache entries
    .nbflow/runs/<run id>/        run.json, index.html, pipeline.yaml (the compiled local pipeline
                                  that ran), logs/<step>.log, reports/<step>.html

The pipeline is compiled by each process that runs it (once per distinct source, kept in
memory for `nbflow tune`'s trials), never read back from a folder: code is not loaded from a
cache (docs/security.md).

Each step runs in a session of its own (`nbflow.local.processes`), with a temporary folder per
run that is removed when the run ends. Ctrl-C, SIGTERM and SIGHUP stop the running step with
every process it started, and raise `nbflow.errors.Interrupted` naming the step.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import re
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from nbflow.check.project import Project
from nbflow.errors import EnvironmentProblem, Interrupted
from nbflow.generate.kfp_source import generate, task_name
from nbflow.local.interrupt import interruptible
from nbflow.local.processes import StepProcesses, describe_signal, sweep_stale_tmp
from nbflow.local.run_result import RunResult, StepResult

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXECUTING = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_CACHE_HIT = re.compile(r"Task (\S+) cache hit \(key=([0-9a-f]+)")
_RETRY = re.compile(r"Task (\S+) failed \(attempt (\d+)/(\d+)\)")
_STREAMED = re.compile(r" - INFO - Streamed logs:$")  # kfp.local's header of a task's output
_OUTPUT_FILE = re.compile(r'^\s*"outputFile": ("(?:[^"\\]|\\.)*")')  # in the executor input
_CELL = re.compile(r"^\[nbflow\] step '.*': cell (\d+)$")  # the runtime's line before each cell


__all__ = ["ENGINES", "RunError", "RunResult", "StepResult", "parse_parameters", "run"]

ENGINES = ("nbflow", "kfp-local")


class RunError(Exception):
    """The run could not start (exit 2): bad parameters, missing requirements."""


Progress = Callable[[StepResult], None]
Started = Callable[[Path], None]
Echo = Callable[[str, str], None]  # (step, one line of its output), as it is printed


def parse_parameters(project: Project, pairs: list[str]) -> dict[str, Any]:
    """`-p name=value` pairs to typed values, by each parameter's declared type."""
    import difflib

    declared = {p.name: p for p in project.parameters}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep:
            raise RunError(f"parameter `{pair}` is not name=value")
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = (
                f" (did you mean `{close[0]}`?)"
                if close
                else f" (parameters: {', '.join(declared) or 'none'})"
            )
            raise RunError(f"`{name}` is not a parameter of {project.name}{hint}")
        out[name] = coerce(raw, declared[name].type, name)
    return out


def coerce(raw: str, type_: str, name: str) -> Any:
    try:
        if type_ == "int":
            return int(raw)
        if type_ == "float":
            return float(raw)
        if type_ == "bool":
            low = raw.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if type_ in ("list", "dict"):
            value = json.loads(raw)
            if not isinstance(value, list if type_ == "list" else dict):
                raise ValueError(raw)
            return value
        return raw
    except (ValueError, json.JSONDecodeError):
        raise RunError(f"parameter `{name}` is {type_}; `{raw}` is not") from None


def missing_requirements(project: Project) -> list[str]:
    """Requirements of any step that this interpreter does not satisfy."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    missing: list[str] = []
    wanted = dict.fromkeys(r for s in project.steps for r in s.requirements)
    for text in wanted:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(f"{text} (not a valid requirement)")
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = version(req.name)
        except PackageNotFoundError:
            missing.append(text)
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            missing.append(f"{text} (installed: {have})")
    return missing


def compile_local(project: Project, run_dir: Path, *, cache: bool = True) -> Path:
    """The local pipeline's IR, compiled in this process (once per distinct generated source)
    and written into the run's folder: `run_dir/pipeline.yaml`."""
    ir = run_dir / "pipeline.yaml"
    ir.write_text(_compiled(generate(project, "local", cache=cache)), encoding="utf-8")
    return ir


@functools.lru_cache(maxsize=4)
def _compiled(source: str) -> str:
    import tempfile

    from nbflow.generate.build import compile_source

    with tempfile.TemporaryDirectory(prefix="nbflow-local-") as tmp:
        return compile_source(source, Path(tmp))


def _load_pipeline(ir: Path) -> Any:
    """The compiled local pipeline as a kfp component.

    kfp's `load_component_from_file` parses the IR with PyYAML's pure-Python loader: about
    0.25 s of every run for four steps when each embedded the runtime. libyaml's loader gives the
    same dicts in a few milliseconds; kfp builds the component from them as it would.
    """
    import yaml
    from kfp import components

    text = ir.read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return components.load_component_from_text(text)
    from kfp.dsl import structures, yaml_component

    docs = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
    spec = structures.ComponentSpec.from_ir_dicts(docs[0], docs[1] if len(docs) > 1 else {})
    return yaml_component.YamlComponent(component_spec=spec, component_yaml=text)


class _Router:
    """Receives everything kfp.local prints; files each task's lines in its step's log (and
    only there: kfp-local.log keeps kfp's own lines) and turns kfp.local's task events into
    progress callbacks."""

    def __init__(
        self,
        steps: dict[str, StepResult],
        logs: Path,
        progress: Progress | None,
        processes: StepProcesses | None = None,
        echo: Echo | None = None,
    ) -> None:
        self.by_task = {task_name(name): r for name, r in steps.items()}
        self.logs = logs
        self.progress = progress
        self.processes = processes
        self.echo = echo
        self.current: StepResult | None = None
        self.started = 0.0
        self.buffer = ""
        self.cache_keys: dict[str, str] = {}  # step -> prefix of its cache entry's key
        self.task_dirs: dict[str, Path] = {}  # step -> its outputs' folder in this run
        self.write_error: OSError | None = None  # the first write that failed (a full disk)
        self.all = (logs / "kfp-local.log").open("w", encoding="utf-8")
        self.step_log: TextIO | None = None

    # file-like interface for redirect_stdout
    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.line(line)
        return len(text)

    def flush(self) -> None:
        self._guarded(self.all.flush)

    def isatty(self) -> bool:
        return False

    def _guarded(self, write: Callable[[], object]) -> None:
        """A write to a log; once one fails (the disk is full), the run goes on without logs
        and `run` reports it at the end, rather than kfp.local failing in the middle."""
        if self.write_error is not None:
            return
        try:
            write()
        except OSError as exc:
            self.write_error = exc

    def line(self, raw: str) -> None:
        line = _ANSI.sub("", raw)
        if m := _EXECUTING.search(line):
            self._start(m.group(1))
        elif m := _FINISHED.search(line):
            self._finish(m.group(1), "succeeded" if m.group(2) == "SUCCESS" else "failed")
        elif m := _CACHE_HIT.search(line):
            r = self.by_task.get(m.group(1))
            if r is not None:
                r.status = "cached"
                self.cache_keys[r.name] = m.group(2)
                self._emit(r)
        elif m := _RETRY.search(line):
            r = self.by_task.get(m.group(1))
            if r is not None:
                r.status = "retrying"
                self._emit(r)
        elif self.current is not None and self.step_log is not None and not _STREAMED.search(line):
            if (m := _OUTPUT_FILE.match(line)) and self.current.name not in self.task_dirs:
                # the first: kfp's own, before the step's code prints anything
                self.task_dirs[self.current.name] = Path(json.loads(m.group(1))).parent
            text = line[4:] if line.startswith("    ") else line
            log = self.step_log
            self._guarded(lambda: log.write(text + "\n"))
            if self.echo is not None:
                self.echo(self.current.name, text)
            return
        self._guarded(lambda: self.all.write(line + "\n"))

    def _start(self, task: str) -> None:
        r = self.by_task.get(task)
        if r is None:
            return
        self._close_step_log()
        self.current = r
        self.started = time.perf_counter()
        r.attempts += 1
        r.status = "running"
        r.log = str(self.logs / f"{r.name}.log")
        with contextlib.suppress(OSError):
            self.step_log = open(r.log, "w" if r.attempts == 1 else "a", encoding="utf-8")  # noqa: SIM115
        self._emit(r)

    def _finish(self, task: str, status: str) -> None:
        r = self.by_task.get(task)
        if r is None:
            return
        self._close_step_log()
        r.seconds += time.perf_counter() - self.started
        r.status = status
        signum = self.processes.signal if self.processes is not None else None
        if status != "failed":
            r.error = None  # a retry that succeeds clears the error of the attempt before
        elif signum is not None:
            r.error = _killed(r.name, signum, Path(r.log) if r.log else None)
        else:
            r.error = _error_from_log(Path(r.log), r.name) if r.log else None
        self.current = None
        self._emit(r)

    def stop(self, signal_name: str) -> StepResult | None:
        """The running step was stopped (Ctrl-C, SIGTERM, SIGHUP); that step, if one ran."""
        r = self.current
        self._close_step_log()
        if r is None:
            return None
        r.seconds += time.perf_counter() - self.started
        r.status = "stopped"
        r.error = f"step '{r.name}' was stopped: nbflow was interrupted by {signal_name}"
        self.current = None
        self._emit(r)
        return r

    def _close_step_log(self) -> None:
        if self.step_log is not None:
            self._guarded(self.step_log.close)
            with contextlib.suppress(OSError):
                self.step_log.close()
            self.step_log = None

    def _emit(self, r: StepResult) -> None:
        if self.progress:
            self.progress(r)

    def close(self) -> None:
        if self.buffer:
            self.line(self.buffer)
            self.buffer = ""
        self._close_step_log()
        self._guarded(self.all.close)
        with contextlib.suppress(OSError):
            self.all.close()


def _killed(step: str, signum: int, log: Path | None) -> str:
    """A step whose process a signal ended: which, what it usually means, in which cell."""
    cell = None
    with contextlib.suppress(OSError):
        if log is not None:
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if m := _CELL.match(line):
                    cell = m.group(1)
    where = f" in cell {cell}" if cell else ""
    return f"step '{step}' was killed by {describe_signal(signum, where)}"


class _LogHandler(logging.Handler):
    def __init__(self, router: _Router) -> None:
        super().__init__(logging.INFO)
        self.router = router

    def emit(self, record: logging.LogRecord) -> None:
        self.router.line(record.getMessage())


@contextlib.contextmanager
def _capture(router: _Router) -> Iterator[None]:
    root = logging.getLogger()
    handler = _LogHandler(router)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(router):  # type: ignore[type-var,unused-ignore]
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        router.close()


def _error_from_log(log: Path, step: str) -> str | None:
    """The runtime's own error block (its first line starts with `step '<name>'`), else the
    log's tail without kfp's executor chatter."""
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    head = f"step '{step}'"
    starts = [i for i, line in enumerate(lines) if line.startswith(head)]
    if starts:  # the last attempt's
        block = []
        for more in lines[starts[-1] :]:
            if more.startswith("[KFP Executor"):
                break
            block.append(more)
        return "\n".join(block).strip()
    tail: list[str] = []
    in_input = False
    for ln in lines:
        if "Got executor_input:" in ln:
            in_input = True  # a JSON document follows, closed by a `}` in column 0
        elif in_input:
            in_input = ln != "}"
        elif ln.strip() and not ln.startswith("[KFP Executor"):
            tail.append(ln)
    return "\n".join(tail[-15:]) or None


def _cached_report(cache: Path, key: str | None) -> list[Path]:
    if not key:
        return []
    for entry in sorted(cache.glob(f"{key}*.json")):
        try:
            uri = json.loads(entry.read_text(encoding="utf-8"))["report"]["uri"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return [Path(uri)]
    return []


def run(
    project: Project,
    *,
    parameters: dict[str, Any] | None = None,
    cache: bool = True,
    state_dir: Path | None = None,
    progress: Progress | None = None,
    out: TextIO | None = None,
    started: Started | None = None,
    latest: bool = True,
    echo: Echo | None = None,
    engine: str = "nbflow",
    jobs: int | None = None,
) -> RunResult:
    """Run the project's pipeline here. Raises RunError when it cannot start.

    The run folder, with its index.html, exists from the start: `started` is called with it,
    and `runs/latest` points at it (unless `latest` is false, as for tuning trials). `echo`
    receives each line a step prints, as it prints it (under the nbflow engine from a thread
    that follows the steps' logs), each step's lines before its end is reported.

    `engine`: "nbflow" (nbflow's own: steps in parallel, `jobs` at a time, default the cores,
    each in a warm process of its own) or "kfp-local" (kfp.local, one step at a time: a
    fidelity check).
    """
    if engine not in ENGINES:
        raise RunError(f"unknown engine `{engine}` (engines: {', '.join(ENGINES)})")
    if jobs is not None and jobs < 1:
        raise RunError(f"--jobs must be at least 1, not {jobs}")
    missing = missing_requirements(project)
    if missing:
        raise RunError(
            "requirements not installed in this environment: "
            + ", ".join(missing)
            + "\n  install them (e.g. `pip install "
            + " ".join(f"'{m.split(' (')[0]}'" for m in missing)
            + "`); nbflow does not install packages into your interpreter"
        )
    declared = {p.name: p.type for p in project.parameters}
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise RunError(f"not parameters of {project.name}: {', '.join(unknown)}")
    values = {p.name: p.default for p in project.parameters}
    values.update(parameters or {})
    # kfp refuses an int for a float input, and a manifest may well say `default: 1` for one
    values = {
        k: float(v) if declared[k] == "float" and type(v) is int else v for k, v in values.items()
    }
    state = state_dir or project.root / ".nbflow"
    now = datetime.now(UTC)
    run_id = now.strftime("%Y%m%d-%H%M%S-%f")
    run_dir = state / "runs" / run_id
    steps = {s.name: StepResult(s.name) for s in project.plan.steps}
    plan = project.plan
    # what the run folder shows from its first moment, updated at each step event
    live = RunResult(
        run_dir=run_dir,
        pipeline=project.name,
        ok=False,
        parameters=values,
        steps=list(steps.values()),
        metrics={},
        seconds=0.0,
        started=now.isoformat(timespec="seconds"),
    )
    try:
        state.mkdir(parents=True, exist_ok=True)
        gitignore = state / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# created by nbflow: local runs, caches and builds\n*\n")
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "reports").mkdir()
        sweep_stale_tmp()
        processes = StepProcesses()
        _write_run(live, plan)
    except OSError as exc:
        raise _disk_problem(exc, f"the run's folder {run_dir}") from None
    if latest:
        _point_latest(state / "runs" / "latest", run_id)
    if started is not None:
        started(run_dir)

    def on_step(step: StepResult) -> None:
        with contextlib.suppress(OSError):  # a full disk: the run goes on, its page is stale
            _write_run(live, plan)
        if progress is not None:
            progress(step)

    if engine == "nbflow":
        processes.close()  # the engine's steps are sessions of their own, with the run's TMPDIR
        return _run_native(project, state, run_dir, values, steps, live, cache, jobs, on_step, echo)
    from kfp import local  # the kfp-local engine only: kfp costs ~0.5 s to import

    try:
        router = _Router(steps, run_dir / "logs", on_step, processes, echo)
    except OSError as exc:
        processes.close()
        raise _disk_problem(exc, f"the run's logs in {run_dir / 'logs'}") from None
    clock = time.perf_counter()
    # SIGTERM and SIGHUP stop the run as Ctrl-C does; a second signal while the first stops
    # the steps kills what is left at once
    with interruptible(on_signal=processes.terminate, again=processes.kill):
        try:
            ir = compile_local(project, run_dir, cache=cache)
            workspace = processes.tmp / "workspace"  # else kfp makes one in $TMPDIR per run
            workspace.mkdir()
            local.init(
                runner=local.SubprocessRunner(use_venv=False),
                pipeline_root=str(state / "artifacts"),
                workspace_root=str(workspace),
                raise_on_error=False,
                enable_caching=True,  # --no-cache is compiled into the steps: the runtime task stays cached
                cache_root=str(state / "cache"),
            )
            pipeline = _load_pipeline(ir)  # compiled by this run: never an earlier one's
            with processes.installed(), _capture(router), warnings.catch_warnings():
                # kfp.local warns, per task, that Kubernetes-only settings have no effect here
                warnings.simplefilter("ignore")
                task = pipeline(**values)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            name = signal.Signals(signum).name
            processes.stop()
            stopped = router.stop(name)
            _result(project, steps, {}, router, state, run_dir, values, clock, name, live)
            if stopped is None:
                raise Interrupted(signum, f"interrupted by {name}; no step was running") from None
            raise Interrupted(
                signum,
                f"interrupted by {name}: stopped step `{stopped.name}` and the processes it "
                f"started; its log: {stopped.log}",
            ) from None
        finally:
            processes.close()
        result = _result(
            project, steps, _outputs(task), router, state, run_dir, values, clock, live=live
        )
    if router.write_error is not None:
        raise _disk_problem(router.write_error, f"the run's logs in {run_dir / 'logs'}")
    return result


def _run_native(
    project: Project,
    state: Path,
    run_dir: Path,
    values: dict[str, Any],
    steps: dict[str, StepResult],
    live: RunResult,
    cache: bool,
    jobs: int | None,
    on_step: Progress,
    echo: Echo | None,
) -> RunResult:
    """The run under nbflow's own engine (`nbflow.local.native`)."""
    from nbflow.local.native import run_native

    clock = time.perf_counter()
    interrupted: str | None = None
    ok, metrics = False, dict[str, float]()
    with interruptible():
        try:
            ok, metrics = run_native(
                project,
                _compiled,
                values,
                fresh=not cache,
                state=state,
                run_dir=run_dir,
                steps=steps,
                cache=True,  # --no-cache is compiled into the steps; the runtime task stays cached
                jobs=jobs,
                progress=on_step,
                copy_report=lambda path, step: _copy_report(path, run_dir, step),
                echo=echo,
            )
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            interrupted = signal.Signals(signum).name
            stopped = [r for r in steps.values() if r.status == "stopped"]
            for r in stopped:
                r.error = f"step '{r.name}' was stopped: nbflow was interrupted by {interrupted}"
            for r in steps.values():
                if r.status == "pending":
                    r.status = "not-run"
            _native_result(project, steps, {}, run_dir, values, clock, False, live, interrupted)
            if not stopped:
                raise Interrupted(
                    signum, f"interrupted by {interrupted}; no step was running"
                ) from None
            raise Interrupted(
                signum,
                f"interrupted by {interrupted}: stopped step `{stopped[0].name}` and the processes "
                f"it started; its log: {stopped[0].log}",
            ) from None
    return _native_result(project, steps, metrics, run_dir, values, clock, ok, live, None)


def _native_result(
    project: Project,
    steps: dict[str, StepResult],
    metrics: dict[str, float],
    run_dir: Path,
    values: dict[str, Any],
    clock: float,
    ok: bool,
    live: RunResult,
    interrupted: str | None,
) -> RunResult:
    _close_steps(steps)
    return _finish(
        project,
        steps,
        metrics,
        run_dir,
        values,
        time.perf_counter() - clock,
        ok and interrupted is None,
        interrupted,
        live.started,
    )


def _outputs(task: Any) -> dict[str, Any]:
    return getattr(task, "outputs", None) or {}


def _result(
    project: Project,
    steps: dict[str, StepResult],
    outputs: dict[str, Any],
    router: _Router,
    state: Path,
    run_dir: Path,
    values: dict[str, Any],
    started: float,
    interrupted: str | None = None,
    live: RunResult | None = None,
) -> RunResult:
    """The run's result from kfp.local's outputs and what the router saw; run.json and
    index.html written (runs/latest was pointed at the run when it started)."""
    seconds = time.perf_counter() - started
    metrics: dict[str, float] = {}
    for sp in project.plan.steps:
        r = steps[sp.name]
        key = sp.name.replace("-", "_")
        report = outputs.get(f"report_{key}")
        if report is not None and Path(report.path).is_file():
            r.report = _copy_report(Path(report.path), run_dir, sp.name)
        m = outputs.get(f"metrics_{key}")
        if m is not None:
            r.metrics = {
                k: float(v) for k, v in sorted(m.metadata.items()) if isinstance(v, int | float)
            }
            metrics.update(r.metrics)
        if r.report is None:
            # a failed run has no outputs: the reports of the steps it ran are in their task
            # folders (named in their executor input), those of cached steps where their
            # cache entries point
            task_dir = router.task_dirs.get(sp.name)
            found = [task_dir / "report"] if task_dir else []
            found += _cached_report(state / "cache", router.cache_keys.get(sp.name))
            for path in found:
                if path.is_file():
                    r.report = _copy_report(path, run_dir, sp.name)
                    break
    _close_steps(steps)
    ok = (
        bool(outputs)
        and interrupted is None
        and all(r.status in ("succeeded", "cached") for r in steps.values())
    )
    started_at = live.started if live is not None else ""
    return _finish(project, steps, metrics, run_dir, values, seconds, ok, interrupted, started_at)


def _close_steps(steps: dict[str, StepResult]) -> None:
    """Steps the run left unfinished: never started -> not-run, started -> failed."""
    for r in steps.values():
        if r.status in ("pending", "running", "retrying"):
            r.status = "not-run" if r.status == "pending" else "failed"


def _finish(
    project: Project,
    steps: dict[str, StepResult],
    metrics: dict[str, float],
    run_dir: Path,
    values: dict[str, Any],
    seconds: float,
    ok: bool,
    interrupted: str | None,
    started: str,
) -> RunResult:
    """The run's result, with run.json and index.html written (both engines)."""
    result = RunResult(
        run_dir=run_dir,
        pipeline=project.name,
        ok=ok,
        parameters=values,
        steps=list(steps.values()),
        metrics=metrics,
        seconds=seconds,
        interrupted=interrupted,
        started=started,
        status="succeeded" if ok else "failed",
    )
    try:
        _write_run(result, project.plan)
    except OSError as exc:
        raise _disk_problem(exc, str(run_dir / "run.json")) from None
    return result


def _write_run(result: RunResult, plan: Any) -> None:
    """run.json and index.html as the run stands now, each replaced whole."""
    from nbflow.local import report

    doc = json.dumps(result.to_json(), indent=2, default=str) + "\n"
    partial = result.run_dir / "run.json.partial"
    partial.write_text(doc, encoding="utf-8")
    partial.replace(result.run_dir / "run.json")
    report.write(result, plan, status=result.status, started=result.started)


def _point_latest(latest: Path, run_id: str) -> None:
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_id)


def _copy_report(path: Path, run_dir: Path, step: str) -> str | None:
    """A step's report into the run folder, its Markdown and LaTeX rendered
    (nbflow/local/step_report.py)."""
    from nbflow.local.step_report import finish

    dest = run_dir / "reports" / f"{step}.html"
    try:
        dest.write_text(finish(path.read_text(encoding="utf-8")), encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the run's result says so: the step has no report
    return str(dest)


def _disk_problem(exc: OSError, what: str) -> EnvironmentProblem:
    """An OSError writing the run's own files, as a message that says what to do."""
    hints = {
        errno.ENOSPC: "the disk is full: free some space and run again",
        errno.EFBIG: "a file grew past the size limit (`ulimit -f`, or the file system's "
        "largest file)",
    }
    if hasattr(errno, "EDQUOT"):
        hints[errno.EDQUOT] = "the disk quota is used up: free some space and run again"
    reason = exc.strerror or str(exc)
    hint = hints.get(exc.errno or 0)
    return EnvironmentProblem(f"cannot write {what}: {reason}" + (f"; {hint}" if hint else ""))
