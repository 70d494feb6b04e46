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


# -- -v live: a step that waits until its first line was shown -----------------------------------

HANDSHAKE_CELL = """\
import pathlib, time
print("waiting for the handshake")
go = pathlib.Path({go!r})
for _ in range(12000):  # a minute at most: a line never shown fails the step, not the test run
    if go.exists():
        break
    time.sleep(0.005)
else:
    raise RuntimeError("no handshake: the line was not shown while the step ran")
print("handshake seen")
"""


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["nbflow", "kfp-local"])
def test_verbose_shows_a_line_while_its_step_still_runs(tmp_path: Path, engine: str) -> None:
    """The step prints a line, then waits until this test has read it from nbflow's output:
    it ends only if `-v` showed the line while the step ran (issue 15)."""
    import os
    import subprocess
    import sys

    go = tmp_path / "go"
    root = write_project(
        tmp_path / "live",
        [HANDSHAKE_CELL.format(go=str(go)), "y = 1"],
        "name: live\nsteps:\n  talk: {cells: 1}\n  after: {cells: 2}\n",
    )
    # no PYTHONUNBUFFERED from the environment: the step's own buffering is what is tested
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(root), "-v", "--engine", engine],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "NO_COLOR": "1"},
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if lines[-1] == "  talk  | waiting for the handshake":
                go.touch()
        proc.wait(timeout=300)
    assert proc.returncode == 0, "\n".join(lines)
    assert go.exists(), "\n".join(lines)
    assert "  talk  | handshake seen" in lines
    end = next(i for i, line in enumerate(lines) if line.startswith("  ✓ talk"))
    assert lines.index("  talk  | handshake seen") < end  # a step's lines come before its end


def test_the_log_follower_hands_over_whole_lines_once(tmp_path: Path) -> None:
    from nbflow.local.follow import LONGEST_LINE, LogFollower

    seen: list[tuple[str, str]] = []
    follower = LogFollower(lambda step, line: seen.append((step, line)), poll=3600)
    log = tmp_path / "a.log"
    log.write_bytes(b"one\r\ntw")
    follower.follow("a", log)
    follower._hand_over(log, "a", last=False)  # as the thread does
    assert seen == [("a", "one")]  # the line not yet ended waits for its end
    with log.open("ab") as f:
        f.write(b"o\ncaf\xe9\nlast")
    follower.done(log)  # the attempt ended: its last line too, though it has no newline
    assert seen[1:] == [("a", "two"), ("a", "caf\ufffd"), ("a", "last")]
    with log.open("ab") as f:  # a retry appends to the same log
        f.write(b"\nagain\n" + b"x" * (LONGEST_LINE + 1))
    follower.follow("a", log)
    follower._hand_over(log, "a", last=False)
    assert seen[4:] == [("a", ""), ("a", "again"), ("a", "x" * (LONGEST_LINE + 1))]
    follower.done(log)
    follower.close()
    assert len(seen) == 7  # nothing handed over twice


def test_a_log_follower_whose_echo_fails_stops_and_keeps_the_error(tmp_path: Path) -> None:
    from nbflow.local.follow import LogFollower

    failed = threading.Event()

    def echo(step: str, line: str) -> None:
        failed.set()
        raise BrokenPipeError("stderr closed")

    follower = LogFollower(echo, poll=0.001)
    log = tmp_path / "a.log"
    log.write_text("a line\n")
    follower.follow("a", log)
    assert failed.wait(60)
    follower.close()
    assert isinstance(follower.error, BrokenPipeError)  # raised by the run, in its thread
