"""What `nbflow run` prints while it runs: a running step shows it is alive (elapsed time), -q
prints only failures, -v streams each step's output live prefixed by the step's name."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from nbflow.cli.progress import StepProgress, elapsed
from nbflow.local.run import StepResult
from tests.support.cli import run_cli
from tests.support.projects import tagged, write_project


class Lines(io.StringIO):
    """A stream that tells when a line containing `wanted` was written."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        if self.wanted in text:
            self.seen.set()
        return super().write(text)


def test_a_running_step_shows_its_elapsed_time_until_it_ends() -> None:
    stream = Lines("running, ")
    shown = StepProgress("p", ["train"], stream, heartbeat=0.01)
    shown.update(StepResult("train", status="running"))
    assert stream.seen.wait(30), stream.getvalue()
    shown.update(StepResult("train", status="succeeded", seconds=1.0))
    shown.stop()
    after = stream.getvalue()
    assert "train  running, 0s" in after or "train  running, 1s" in after
    shown.stop()  # idempotent
    assert stream.getvalue() == after  # no heartbeat once the step and the display ended


@pytest.mark.parametrize(("seconds", "shown"), [(5, "5s"), (65, "1m05s"), (3600 + 61, "1h01m01s")])
def test_elapsed(seconds: float, shown: str) -> None:
    assert elapsed(seconds) == shown


def test_quiet_prints_failures_only_and_verbose_streams_escaped_lines() -> None:
    stream = io.StringIO()
    quiet = StepProgress("p", ["one"], stream, quiet=True)
    quiet.started(Path("run"))
    quiet.update(StepResult("one", status="running"))
    quiet.update(StepResult("one", status="succeeded"))
    quiet.echo("one", "hidden")
    assert stream.getvalue() == ""
    quiet.update(StepResult("one", status="failed", error="boom"))
    assert "boom" in stream.getvalue()
    stream = io.StringIO()
    loud = StepProgress("p", ["one", "longer"], stream, verbose=True)
    loud.echo("one", "\x1b[31mred\r")
    assert "  one    | \\x1b[31mred\\r\n" in stream.getvalue()


CELLS = [
    "import sys",
    tagged("n = 2", "parameters"),
    'print("hello from one")',
    'print("hello from two", n)',
]
MANIFEST = """
name: talk
setup: 1
steps:
  one: {cells: 3}
  two: {cells: 4}
parameters: {n: 2}
"""


@pytest.mark.slow
def test_verbose_and_quiet_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "p", CELLS, MANIFEST)
    monkeypatch.chdir(root)
    r = run_cli(capsys, "run", ".", "-v", "--no-cache")
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    assert "  one | hello from one" in lines and "  two | hello from two 2" in lines
    # each step's output comes between its start and its end
    assert lines.index("  one | hello from one") < next(
        i for i, line in enumerate(lines) if line.startswith("  ✓ one")
    )
    r = run_cli(capsys, "run", ".", "-q")
    assert r.code == 0 and r.err == "" and r.out == ""
    assert run_cli(capsys, "run", ".", "-q", "-v").code == 2  # one or the other
