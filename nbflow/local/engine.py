"""nbflow's local engine: the compiled pipeline's tasks in parallel along the DAG.

Each task gets the ExecutorInput a KFP launcher would build (`executor_input`), runs in its own
warm process (`warm`, `worker`), is served from the cache when its key is known (`cache`), and
is retried as its retry policy says. What happened in a step comes from the step runtime's
structured events (a JSON-lines file per attempt, `NBFLOW_EVENTS`) and the process's exit
status, never from parsing log text. After a failure no new task starts; running ones finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from nbflow.local import executor_input
from nbflow.local.cache import Cache, task_key
from nbflow.local.executor_input import Artifact
from nbflow.local.ir import Pipeline, Task

GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL when running tasks are stopped


@dataclass
class TaskOutcome:
    name: str
    # pending, running, retrying, succeeded, cached, failed, not-run, stopped (interrupted)
    status: str = "pending"
    seconds: float = 0.0
    attempts: int = 0
    log: Path | None = None
    outputs: dict[str, Artifact] = field(default_factory=dict)
    error: str | None = None
    cells: list[int] = field(default_factory=list)  # the cells the last attempt started


Notify = Callable[[TaskOutcome], None]


@dataclass
class _Running:
    task: Task
    process: BaseProcess
    started: float
    executor_input: dict[str, Any]
    events: Path


@dataclass
class Engine:
    """One run of a pipeline: where its files go and how many tasks run at once."""

    start_server: Callable[[], ForkServerContext]  # called once, when a task must run
    run_root: Path  # this run's artifacts: <run_root>/<task>/<output>
    logs: Path
    tmp: Path  # TMPDIR of the run's tasks
    cache: Cache
    jobs: int
    use_cache: bool = True
    notify: Notify | None = None
    log_names: dict[str, str] = field(default_factory=dict)  # task -> its log's name
    outcomes: dict[str, TaskOutcome] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    ctx: ForkServerContext | None = None

    def execute(self, pipeline: Pipeline, values: dict[str, Any]) -> dict[str, TaskOutcome]:
        """Run the pipeline. An interrupt (KeyboardInterrupt; the caller turns SIGTERM and
        SIGHUP into one) ends the running steps' sessions before it goes on."""
        self.outcomes = {t.name: TaskOutcome(t.name) for t in pipeline.tasks}
        pending = list(pipeline.tasks)
        failed = False
        # the server starts (imports the libraries) at once, while cached tasks are served,
        # unless every task is served from the cache (or the caller started it already)
        if self.ctx is None and not (self.use_cache and all_cached(pipeline, values, self.cache)):
            self.ctx = self.start_server()
        try:
            while pending or self.running:
                for task in list(pending):
                    deps = [self.outcomes[d] for d in task.depends_on()]
                    if any(d.status in ("failed", "not-run") for d in deps) or failed:
                        pending.remove(task)
                        self._not_run(task, deps)
                    elif all(d.status in ("succeeded", "cached") for d in deps):
                        if not self._cached(task, values) and len(self.running) >= self.jobs:
                            continue
                        pending.remove(task)
                        if self.outcomes[task.name].status != "cached":
                            self._start(task, values)
                if not self.running:
                    continue
                ready = wait([r.process.sentinel for r in self.running.values()])
                for name, r in list(self.running.items()):
                    if r.process.sentinel in ready:
                        r.process.join()
                        # what the step left running ends with it, as in a pod
                        _signal_group(r.process.pid, signal.SIGKILL)
                        del self.running[name]
                        failed |= not self._finished(r, values)
        finally:
            self.stop()
        return self.outcomes

    def stop(self) -> None:
        """End every running task's session: SIGTERM, then SIGKILL after a grace period."""
        for r in self.running.values():
            _signal_group(r.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for r in self.running.values():
            r.process.join(max(0.0, deadline - time.monotonic()))
            _signal_group(r.process.pid, signal.SIGKILL)
            r.process.join()
            out = self.outcomes[r.task.name]
            out.status = "stopped"
            out.seconds += time.perf_counter() - r.started
            self._emit(out)
        self.running.clear()

    # -- one task -------------------------------------------------------------------------------

    def _key(self, task: Task, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key, params = _key(task, values, self.keys)
        self.keys[task.name] = key
        return key, params

    def _cached(self, task: Task, values: dict[str, Any]) -> bool:
        key, _ = self._key(task, values)
        if not (self.use_cache and task.cache):
            return False
        outputs = self.cache.get(key)
        if outputs is None:
            return False
        out = self.outcomes[task.name]
        out.status, out.outputs = "cached", outputs
        self._emit(out)
        return True

    def _start(self, task: Task, values: dict[str, Any]) -> None:
        from nbflow.local.worker import run_task

        _, params = self._key(task, values)
        out = self.outcomes[task.name]
        out.attempts += 1
        task_root = self.run_root / task.name
        task_root.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{task.name}-{out.attempts}"
        tmp.mkdir(parents=True, exist_ok=True)
        events = self.logs / f".{task.name}.{out.attempts}.events.jsonl"
        inputs = {k: self.outcomes[a.producer].outputs[a.key] for k, a in task.artifacts.items()}
        doc = executor_input.build(task, params, inputs, task_root)
        out.log = self.logs / f"{self.log_names.get(task.name, task.name)}.log"
        if out.attempts == 1:
            out.log.write_text("", encoding="utf-8")
        env = {e["name"]: str(e["value"]) for e in task.executor.get("env", [])}
        env.update({"TMPDIR": str(tmp), "NBFLOW_EVENTS": str(events), "_KFP_RUNTIME": "true"})
        job = {
            "container": task.executor,
            "executor_input": doc,
            "log": str(out.log),
            "env": env,
            "tmp": str(tmp),
        }
        if self.ctx is None:
            self.ctx = self.start_server()
        process = self.ctx.Process(target=run_task, args=(job,), name=task.name, daemon=False)
        process.start()
        self.running[task.name] = _Running(task, process, time.perf_counter(), doc, events)
        out.status = "running"
        self._emit(out)

    def _finished(self, r: _Running, values: dict[str, Any]) -> bool:
        out = self.outcomes[r.task.name]
        out.seconds += time.perf_counter() - r.started
        if out.log is not None:
            _readable_log(out.log)
        events = read_events(r.events)
        out.cells = [int(e["cell"]) for e in events if e.get("event") == "cell"]
        code = r.process.exitcode
        if code == 0:
            out.error = None  # a retry that succeeds clears the error of the attempt before
            out.outputs = executor_input.read_outputs(r.task, r.executor_input)
            out.status = "succeeded"
            self.cache.put(self.keys[r.task.name], r.task.name, out.outputs)
            self._emit(out)
            return True
        out.error = _failure(events, code, r.task.name)
        # a failed attempt's outputs (its report) stay where it wrote them
        out.outputs = executor_input.read_outputs(r.task, r.executor_input)
        out.status = "failed"
        self._emit(out)
        if out.attempts <= r.task.retries:  # as kfp.local says it: failed, retrying, running
            out.status = "retrying"
            self._emit(out)
            self._start(r.task, values)
            return True
        return False

    def _not_run(self, task: Task, deps: list[TaskOutcome]) -> None:
        out = self.outcomes[task.name]
        out.status = "not-run"
        broken = [d.name for d in deps if d.status == "failed"]
        if broken:
            out.error = f"not run: {', '.join(broken)} failed"

    def _emit(self, out: TaskOutcome) -> None:
        if self.notify is not None:
            self.notify(out)


def all_cached(pipeline: Pipeline, values: dict[str, Any], cache: Cache) -> bool:
    """Whether every task of `pipeline` would be served from `cache`."""
    keys: dict[str, str] = {}
    for task in pipeline.tasks:  # in order: a task's key covers its upstream's keys
        keys[task.name], _ = _key(task, values, keys)
        if not (task.cache and cache.get(keys[task.name]) is not None):
            return False
    return True


def _key(task: Task, values: dict[str, Any], keys: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A task's cache key (its upstream's in `keys`) and its parameter values."""
    params = executor_input.parameter_values(task, values)
    inputs = {k: f"{keys[a.producer]}/{a.key}" for k, a in task.artifacts.items()}
    return task_key(task, params, inputs), params


def read_events(path: Path) -> list[dict[str, Any]]:
    """The runtime's events of one attempt; a line cut short by a kill is left out."""
    events: list[dict[str, Any]] = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    events.append(doc)
    return events


def _failure(events: list[dict[str, Any]], code: int | None, task: str) -> str:
    """Why an attempt failed: the runtime's own message when it gave one, else the exit."""
    for e in reversed(events):
        if e.get("event") == "failed" and e.get("error"):
            return str(e["error"])
    from nbflow.local.processes import describe_signal

    steps = [str(e["step"]) for e in events if e.get("step")]
    name = f"step '{steps[0]}'" if steps else f"task `{task}`"
    cells = [e["cell"] for e in events if e.get("event") == "cell"]
    if code is not None and code < 0:
        at = f" in cell {cells[-1]}" if cells else ""
        return f"{name} was killed by {describe_signal(-code, at)}"
    where = f", in cell {cells[-1]}" if cells else ""
    if not steps:
        where = " before the step runtime started (see its log)"
    return f"{name} exited with status {code}{where}"


def _readable_log(log: Path) -> None:
    """A step's log as UTF-8, bytes that are not shown as replacement characters (the step
    wrote to it directly, whatever it printed)."""
    with contextlib.suppress(OSError):
        data = log.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            log.write_text(data.decode("utf-8", errors="replace"), encoding="utf-8")


def _signal_group(pid: int | None, signum: int) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
