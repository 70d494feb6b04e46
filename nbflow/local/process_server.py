"""nbflow's own process server: the standard library's forkserver, a server of nbflow's rather
than the process-wide one, whose task processes do not import the caller's main module.

The standard library tells each forked process the parent's main module, by name or by path
(`multiprocessing.spawn.get_preparation_data`), and the process imports it again as
`__mp_main__` before it reads its target, for a target defined there. A task's target is
nbflow's (`nbflow.local.worker.run_task`), so the main module is never needed, and importing it
breaks callers that cannot be imported again: a script without an `if __name__ ==
"__main__":` guard ran itself once more in every step, one read from stdin (`python -`) is a
path that does not exist. Here a task is sent the same preparation without the main module.

The server is an instance of nbflow's, so that the caller's own forkserver (the default start
method from Python 3.14) keeps its preloading and its main module: nbflow changes nothing of
the process-wide one. `_Popen._launch` does what the standard library's
`popen_forkserver.Popen._launch` does (Python 3.11's), with those two changes: what it sends
and to which server; the rest of that class (waiting, terminating) is used as it is.
"""

from __future__ import annotations

import functools
import io
import os
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver, process, reduction, spawn, util
from typing import Any

# where the preparation names the caller's main module (spawn.get_preparation_data)
MAIN_KEYS = ("init_main_from_name", "init_main_from_path")


@functools.cache
def server() -> forkserver.ForkServer:
    """The server of this process's task processes, started by its first `ensure_running`."""
    return forkserver.ForkServer()


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class _Popen(popen_forkserver.Popen):
    _fds: list[int]  # the descriptors the task inherits (popen_forkserver.Popen's)

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        for key in MAIN_KEYS:
            prep_data.pop(key, None)
        buf = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            mp_context.set_spawning_popen(None)
        self.sentinel, w = server().connect_to_new_process(self._fds)
        # the write end's duplicate: the task sees its parent end when this process does
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, _close, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class TaskProcess(process.BaseProcess):
    _start_method = "forkserver"

    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


class TaskContext(mp_context.ForkServerContext):
    """`Process` starts a task process from `server()`."""

    Process = TaskProcess  # type: ignore[assignment]
