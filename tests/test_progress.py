"""nbflow.cli.progress: the line per step event that `nbflow run` prints (the end-to-end runs
that show it are marked slow; this keeps the module in the fast loop)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nbflow.cli.progress import StepProgress
from nbflow.local.run import RunResult, StepResult


class Stream(io.StringIO):
    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def test_one_line_per_event_and_a_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = Stream("utf-8")
    shown = StepProgress("digits", ["load", "train"], out)
    shown.update(StepResult("load", "running", attempts=1))
    shown.update(StepResult("load", "succeeded", seconds=1.5, attempts=1))
    shown.update(StepResult("train", "running", attempts=2))
    failed = StepResult(
        "train", "failed", seconds=0.25, attempts=2, error="ValueError: x\n  at cell 7"
    )
    shown.update(failed)
    skipped = StepResult("report", "not-run")
    shown.finish(
        RunResult(
            tmp_path / "run",
            "digits",
            False,
            {},
            [StepResult("load", "succeeded"), failed, skipped],
            {},
            2.0,
        )
    )
    assert out.getvalue().splitlines() == [
        "nbflow run digits: 2 steps",
        "  ▶ load   running",
        "  ✓ load   1.50 s",
        "  ▶ train  running (attempt 2)",
        "  ✗ train  failed after 0.25 s",
        "      ValueError: x",
        "        at cell 7",
        "  · report  not-run",
        "run failed in 2.0 s (1 failed, 1 not-run, 1 succeeded); report: run/index.html",
    ]


def test_ascii_marks_where_the_stream_is_not_utf8() -> None:
    out = Stream("ascii")
    shown = StepProgress("p", ["s"], out)
    for status in ("running", "succeeded", "cached", "retrying", "failed"):
        shown.update(StepResult("s", status))
    marks = [line.split()[0] for line in out.getvalue().splitlines()[1:]]
    assert marks == [">", "+", "=", "~", "x"]
