"""The processes of a local run's steps, and their temporary files.

kfp.local starts each task with `subprocess.Popen` in nbflow's own process group, so a SIGTERM
sent to nbflow alone leaves the task and whatever it started running, and every task leaves a
`$TMPDIR/tmp.XXXX/ephemeral_component.py` behind (its command writes the component there and
never removes it). `StepProcesses` starts each task instead: in a session of its own (so that a
stop reaches the step and all it started, and nothing else), with `TMPDIR` set to one folder per
run that is removed when the run ends, and it remembers the signal that killed a step.

Processes that leave the step's session themselves (a daemon that calls `setsid`) are out of
reach, as they would be of Ctrl-C in a terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = "nbflow-run-"
_TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r"(\d+)-")

# what each signal usually means when it ends a step's process
SIGNAL_MEANINGS = {
    "SIGKILL": "often the out-of-memory killer, when the step needed more memory than the "
    "machine had free (`dmesg` says so); else a `kill -9`",
    "SIGTERM": "another process or the system asked it to stop",
    "SIGINT": "it was interrupted",
    "SIGHUP": "its terminal was closed",
    "SIGSEGV": "a crash in native code (a C extension, or a library it loads)",
    "SIGBUS": "a bad memory access, often a memory-mapped file that shrank or a full /dev/shm",
    "SIGABRT": "native code aborted (a failed assertion or a fatal error in a C library)",
    "SIGFPE": "an arithmetic error in native code",
    "SIGILL": "native code used an instruction this CPU does not have",
    "SIGXFSZ": "a file grew past the file size limit (`ulimit -f`)",
    "SIGXCPU": "it used up its CPU time limit (`ulimit -t`)",
    "SIGPIPE": "it wrote to a pipe whose reader had gone",
}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_signal(signum: int, where: str = "") -> str:
    """`SIGKILL (signal 9){where}: often the out-of-memory killer, ...`"""
    name = signal_name(signum)
    meaning = SIGNAL_MEANINGS.get(name)
    return f"{name} (signal {signum}){where}" + (f": {meaning}" if meaning else "")


def killed_by(returncode: int) -> int | None:
    """The signal that ended a task, from its exit status: negative when the task's shell was
    killed; 128 + the signal when the shell reports that its command was (`sh` prints `Killed`
    and exits 137 for a SIGKILL)."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    return signum if signum in set(signal.Signals) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has that pid now
        return True
    return True


def sweep_stale_tmp(root: str | None = None) -> None:
    """Remove the temporary folders of runs whose nbflow process is gone (a `kill -9` gave it no
    time to remove its own); those of runs still going are left alone."""
    base = Path(root or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for folder in base.glob(TMP_PREFIX + "*"):
            m = _TMP_NAME.match(folder.name)
            if m is None or _alive(int(m.group(1))):
                continue
            with contextlib.suppress(OSError):
                if folder.is_dir() and folder.stat().st_uid == os.getuid():
                    shutil.rmtree(folder, ignore_errors=True)


class StepProcesses:
    """Starts kfp.local's tasks (see `installed`), each in its own session; stops them."""

    def __init__(self, grace: float = 3.0) -> None:
        self.grace = grace  # between SIGTERM and SIGKILL when a step is stopped
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        self.live: dict[int, subprocess.Popen[str]] = {}
        self.signal: int | None = None  # the signal that ended the last task, if one did

    def run_local_subprocess(
        self, full_command: list[str], env_vars: dict[str, str] | None = None
    ) -> int:
        """kfp.local's `run_local_subprocess`: the task's output line by line to stdout (kfp
        indents it and nbflow's router files it), its exit status returned."""
        # unbuffered: each line the step prints reaches its log (and `-v`) as it prints it
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(self.tmp), **(env_vars or {})}
        proc = subprocess.Popen(
            full_command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        self.live[proc.pid] = proc
        # when the step's own process ends, so does all it left running (as when a pod's main
        # container ends), and so the pipe they may hold open too
        reaper = threading.Thread(target=self._end_group_after, args=(proc,), daemon=True)
        reaper.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="")
            print("\n")
            returncode = proc.wait()
        except BaseException:
            self.stop()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            self.live.pop(proc.pid, None)
        self.signal = killed_by(returncode)
        return returncode

    def _end_group_after(self, proc: subprocess.Popen[str]) -> None:
        proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)

    def terminate(self, signum: int = 0) -> None:
        """SIGTERM to every running step's session; safe in a signal handler."""
        for pid in list(self.live):
            _signal_group(pid, signal.SIGTERM)

    def kill(self, signum: int = 0) -> None:
        """SIGKILL to every running step's session; safe in a signal handler."""
        for pid in list(self.live):
            _signal_group(pid, signal.SIGKILL)

    def stop(self) -> list[int]:
        """End every running step with all it started: SIGTERM, then SIGKILL to what is left
        after the grace period. The pids of the steps' own processes."""
        procs = list(self.live.values())
        if not procs:
            return []
        self.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.grace)
        for proc in procs:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        return [p.pid for p in procs]

    def close(self) -> None:
        """Stop what still runs, and remove the run's temporary folder."""
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @contextlib.contextmanager
    def installed(self) -> Iterator[StepProcesses]:
        """Within: kfp.local's SubprocessRunner starts its tasks through this object."""
        from kfp.local import subprocess_task_handler as handler

        original = handler.run_local_subprocess
        handler.run_local_subprocess = self.run_local_subprocess
        try:
            yield self
        finally:
            handler.run_local_subprocess = original


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
