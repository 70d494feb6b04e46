"""`nbflow.local.processes`: each step in its own session, stopped with all it started; the
signal that killed a step, named; the temporary folders of runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nbflow.local.processes import (
    TMP_PREFIX,
    StepProcesses,
    describe_signal,
    killed_by,
    sweep_stale_tmp,
)
from tests.support.processes import alive, wait_for


@pytest.mark.parametrize(
    ("returncode", "signum"),
    [(137, 9), (143, 15), (-9, 9), (-15, 15), (0, None), (1, None), (2, None), (255, None)],
)
def test_killed_by_reads_the_signal_from_the_exit_status(
    returncode: int, signum: int | None
) -> None:
    assert killed_by(returncode) == signum


def test_describe_signal_says_what_a_signal_usually_means() -> None:
    assert describe_signal(9).startswith("SIGKILL (signal 9): often the out-of-memory killer")
    assert describe_signal(11, " in cell 3").startswith("SIGSEGV (signal 11) in cell 3: a crash")


def test_stale_temporary_folders_of_dead_runs_are_swept(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = tmp_path / f"{TMP_PREFIX}{int(done.stdout)}-abc"
    live = tmp_path / f"{TMP_PREFIX}{os.getpid()}-def"
    other = tmp_path / "nbflow-ipython-xyz"
    for folder in (dead, live, other):
        (folder / "inner").mkdir(parents=True)
    sweep_stale_tmp(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


CHILD_IGNORING_SIGTERM = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", code])
open(sys.argv[1], "w").write(f"{child.pid}\\n")
time.sleep(600)
"""


def test_stop_ends_a_step_and_its_children_even_those_that_ignore_sigterm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    processes = StepProcesses(grace=0.2)
    pid_file = tmp_path / "child"
    codes: list[int] = []
    runner = threading.Thread(
        target=lambda: codes.append(
            processes.run_local_subprocess(
                [sys.executable, "-c", CHILD_IGNORING_SIGTERM, str(pid_file)]
            )
        )
    )
    runner.start()
    try:
        text = wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the child")
        child = int(text)
        [step] = processes.live
        stopped = processes.stop()
        runner.join(60)
        assert stopped == [step] and codes == [-9]
        wait_for(lambda: not alive(child) and not alive(step), timeout=60, what="both to end")
    finally:
        processes.close()
    assert not processes.tmp.exists()


def test_a_step_runs_with_the_run_s_temporary_folder(capsys: pytest.CaptureFixture[str]) -> None:
    processes = StepProcesses()
    try:
        code = processes.run_local_subprocess(
            [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"]
        )
        assert code == 0 and processes.signal is None
        assert capsys.readouterr().out.splitlines()[0] == str(processes.tmp)
    finally:
        processes.close()
    assert not processes.tmp.exists()
