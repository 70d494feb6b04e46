"""The worker processes of a parallel search: `Worker` starts one and talks to it; `main` is
the worker itself (`python -m nbflow.local.tune --worker MANIFEST STATE_DIR`). Why trials run in
workers: see `nbflow.local.tune.search`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbflow.diagnostics import Report
    from nbflow.local.tune.results import TrialResult


class Worker:
    """A process that runs trials one after another (`python -m nbflow.local.tune --worker`), so
    that importing kfp and validating the project happen once per worker, not per trial."""

    def __init__(
        self,
        ident: int,
        *,
        manifest: Path,
        state: Path,
        log_dir: Path,
        events: queue.Queue[tuple[int, dict[str, Any]]],
    ) -> None:
        self.ident = ident
        self.trial: TrialResult | None = None
        self.ask: Any = None
        self.started = 0.0
        self.result: dict[str, Any] | None = None
        self.log = log_dir / f"worker-{ident}.log"
        self.log.parent.mkdir(exist_ok=True)
        env = dict(os.environ)
        source_root = str(Path(__file__).resolve().parents[3])  # above nbflow/local/tune/
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "nbflow.local.tune",
            "--worker",
            str(manifest),
            str(state),
        ]
        with self.log.open("w", encoding="utf-8") as err:
            # its own session: a Ctrl-C in the terminal reaches the search only, which then
            # stops each worker together with its kfp.local task (see `Search.interrupt`)
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                encoding="utf-8",
                env=env,
                start_new_session=True,
            )
        self.reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.reader.start()

    def _read(self, events: queue.Queue[tuple[int, dict[str, Any]]]) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    events.put((self.ident, event))
        events.put((self.ident, {"event": "exit", "code": self.proc.wait()}))

    def assign(self, ask: Any, trial: TrialResult) -> None:
        assert self.proc.stdin is not None
        self.ask, self.trial, self.result, self.started = ask, trial, None, time.perf_counter()
        # a worker that died already: its reader reports the exit, which fails this trial
        with contextlib.suppress(OSError):
            self.proc.stdin.write(json.dumps({"parameters": trial.parameters}) + "\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        """Close its stdin (it ends after its current trial)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def wait(self, timeout: float | None = None) -> None:
        self.proc.wait(timeout)
        self.reader.join(5)


def signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, sig)
        else:  # pragma: no cover - no process groups
            proc.kill()


def log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def _invalid(report: Report) -> str:
    """Why a worker can't run trials: the manifest changed since the search validated it."""
    return "\n".join(
        [f"the project has {len(report.errors)} error(s) now:"]
        + [
            f"  {d.location.file}:{d.location.line or 1}: [{d.code}] {d.message}"
            for d in report.errors
        ]
    )


def main(argv: Sequence[str]) -> int:
    """`python -m nbflow.local.tune --worker MANIFEST STATE_DIR`: runs trials for a parallel search.

    Reads one `{"parameters": {...}}` line per trial from stdin, until stdin closes. For each, it
    writes one JSON object per line to stdout: `{"event": "step", "step": {...}}` as the run's
    steps change, then `{"event": "result", "result": RunResult.to_json()}`, or `{"event":
    "error", "error": "..."}` when the run cannot start."""
    if len(argv) != 3 or argv[0] != "--worker":
        sys.stderr.write("usage: python -m nbflow.local.tune --worker MANIFEST STATE_DIR\n")
        return 2
    _, manifest, state = argv
    # the events get their own copy of stdout; anything else written to stdout (kfp.local, a
    # task) goes to stderr, the worker's log
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)

    def send(event: dict[str, Any]) -> None:
        channel.write(json.dumps(event, default=str) + "\n")

    try:
        from nbflow.check.validate import load_project
        from nbflow.local.run import RunError, run

        report, project = load_project(manifest)
        import kfp.local  # noqa: F401  (while the search waits for its first trial)

        for line in sys.stdin:
            if not line.strip():
                continue
            if project is None:
                send({"event": "error", "error": _invalid(report)})
                continue
            try:
                result = run(
                    project,
                    parameters=json.loads(line)["parameters"],
                    cache=True,
                    state_dir=Path(state),
                    latest=False,
                    progress=lambda step: send({"event": "step", "step": asdict(step)}),
                )
            except RunError as exc:
                send({"event": "error", "error": str(exc)})
                continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a bug: this trial fails with one line, the search goes on
                if os.environ.get("NBFLOW_TRACEBACK") == "1":
                    import traceback

                    traceback.print_exc()
                send(
                    {"event": "error", "error": f"internal error (please report): {_one_line(exc)}"}
                )
                continue
            send({"event": "result", "result": result.to_json()})
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        channel.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
