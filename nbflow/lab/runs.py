"""Local runs started from JupyterLab: `nbflow run` as a subprocess, its steps' status followed.

While it runs, each step's status comes from the progress lines `nbflow run` prints on stderr
(one per step event); when it ends, from the run's record (`run.json`, printed by `--json`),
which also gives the metrics and the run folder with its reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

__all__ = ["LocalRun", "parse_progress"]

# the marks of nbflow/cli/progress.py, in UTF-8 and in ASCII
_MARKS = {
    "▶": "running", ">": "running",
    "✓": "succeeded", "+": "succeeded",
    "↺": "cached", "=": "cached",
    "✗": "failed", "x": "failed",
    "↻": "retrying", "~": "retrying",
    "·": "not-run", ".": "not-run",
}  # fmt: skip
_LINE = re.compile(r"^  (\S) (\S+)\s{2}")
_KEEP_LINES = 200


def parse_progress(line: str, steps: set[str]) -> tuple[str, str] | None:
    """(step, status) from one progress line of `nbflow run`, None for any other line."""
    m = _LINE.match(line)
    if m and m.group(1) in _MARKS and m.group(2) in steps:
        return m.group(2), _MARKS[m.group(1)]
    return None


class LocalRun:
    """One `nbflow run` of the project in `folder`, started at once."""

    def __init__(self, folder: Path, steps: list[str], root: Path) -> None:
        self.id = uuid.uuid4().hex
        self.root = root
        self.folder = folder
        self.steps = dict.fromkeys(steps, "pending")
        self.lines: list[str] = []
        self.result: dict[str, Any] | None = None
        self.returncode: int | None = None
        self._lock = threading.Lock()
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "nbflow", "run", ".", "--json"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._stdout: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for t in self._threads:
            t.start()
        threading.Thread(target=self._wait, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        names = set(self.steps)
        with self._proc.stderr:
            for raw in self._proc.stderr:
                line = raw.rstrip("\n")
                with self._lock:
                    self.lines = [*self.lines[-_KEEP_LINES + 1 :], line]
                    found = parse_progress(line, names)
                    if found:
                        self.steps[found[0]] = found[1]

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        with self._proc.stdout:
            self._stdout.append(self._proc.stdout.read())

    def _wait(self) -> None:
        code = self._proc.wait()
        for t in self._threads:
            t.join()
        result = None
        # no JSON when the run did not start (bad input, missing requirements): stderr says why
        with contextlib.suppress(ValueError):
            result = json.loads("".join(self._stdout))
        with self._lock:
            if isinstance(result, dict):
                self.result = result
                for s in result.get("steps", []):
                    self.steps[s["name"]] = s["status"]
            self.returncode = code

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()

    def state(self) -> dict[str, Any]:
        """What the panel shows: overall state, each step's status, the last lines of output,
        and at the end the metrics and the reports (paths relative to the server's root)."""
        with self._lock:
            if self.returncode is None:
                state = "running"
            elif self.returncode == 0:
                state = "succeeded"
            else:
                state = "failed"
            out: dict[str, Any] = {
                "id": self.id,
                "state": state,
                "steps": [{"name": n, "status": s} for n, s in self.steps.items()],
                "output": "\n".join(self.lines[-40:]),
                "metrics": {},
                "runFolder": None,
                "reports": {},
            }
            if self.result is not None:
                out["metrics"] = self.result.get("metrics", {})
                out["runFolder"] = self._shown(self.result.get("run_dir"))
                out["reports"] = {
                    s["name"]: self._shown(s.get("report"))
                    for s in self.result.get("steps", [])
                    if s.get("report") and self._shown(s.get("report"))
                }
            return out

    def _shown(self, path: str | None) -> str | None:
        if not path:
            return None
        try:
            # `nbflow run` names its files relative to its working directory, the project's
            full = (self.folder / path).resolve()
            return full.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
