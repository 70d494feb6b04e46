"""Imported by the local engine's process server (and nowhere else): imports the libraries
named in `NBFLOW_PRELOAD` (comma-separated), and the step runtime from the archive named by
`NBFLOW_PRELOAD_RUNTIME`, so that every step forked from the server has them.

The one module of nbflow that works at import time, because that is how the standard library's
forkserver preloads. A library that fails to import, whatever it raises, is left out: the step
that imports it gets the error, in its own process, with the runtime's message.

First, the server lets go of nbflow's stdout and stderr (it writes nothing a user reads: each
step writes to its own log): else whatever reads nbflow's output through a pipe (CI, a test,
`nbflow run | tee`) waits past nbflow's exit until the server has torn down every library it
imported, most of a second.
"""

import contextlib
import importlib
import os
import sys

with contextlib.suppress(OSError):
    _null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(_null, 1)
    os.dup2(_null, 2)
    os.close(_null)

for _name in filter(None, os.environ.get("NBFLOW_PRELOAD", "").split(",")):
    with contextlib.suppress(BaseException):  # SystemExit from a module's top level included
        importlib.import_module(_name)

# The step runtime, from the archive a local pipeline carries (`NBFLOW_PRELOAD_RUNTIME`, its
# path): a step that has checked its runtime artifact then finds `nbflow_runtime` imported.
_archive = os.environ.get("NBFLOW_PRELOAD_RUNTIME")
if _archive:
    sys.path.insert(0, _archive)
    with contextlib.suppress(BaseException):
        importlib.import_module("nbflow_runtime")
    sys.path.remove(_archive)
