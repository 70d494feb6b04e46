"""Warm task processes: forked from a server process that has imported kfp's executor, IPython
and the setup cells' libraries once, so a step starts in milliseconds instead of re-importing
them (~2 s a step under kfp.local). Each task still runs in a process of its own, as on a
cluster; the standard library's forkserver is the server.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import multiprocessing
import os
from collections.abc import Iterable
from multiprocessing.context import ForkServerContext
from pathlib import Path

# imported by every step: kfp's executor entry point and what the step runtime uses
RUNTIME_MODULES = (
    "kfp.dsl.executor_main",
    "IPython",
    "IPython.core.interactiveshell",
    "cloudpickle",
    "nbflow.local.worker",
)
# known to start threads or accelerators at import: a fork after that is not safe
NOT_PRELOADED = frozenset(
    {"tensorflow", "keras", "jax", "jaxlib", "ray", "pyspark", "multiprocessing"}
)


def imported_modules(sources: Iterable[str]) -> list[str]:
    """Modules the cells import (`import a.b` -> a.b, `from a.b import c` -> a.b), in order. A
    cell that is not Python (magics) is read line by line."""
    names: dict[str, None] = {}
    for source in sources:
        try:
            trees = [ast.parse(source)]
        except SyntaxError:
            trees = []
            for line in source.splitlines():
                if line.lstrip().startswith(("import ", "from ")):
                    with contextlib.suppress(SyntaxError):
                        trees.append(ast.parse(line.strip()))
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(dict.fromkeys(a.name for a in node.names))
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names[node.module] = None
    return list(names)


def preload_list(setup_sources: Iterable[str], project_dir: Path) -> list[str]:
    """What the server imports: the runtime's modules, and the setup cells' libraries that are
    installed (not modules beside the notebook: a step imports those itself, from its folder)."""
    out = list(RUNTIME_MODULES)
    root = project_dir.resolve()
    for name in imported_modules(setup_sources):
        top = name.split(".")[0]
        if top in NOT_PRELOADED or name in out:
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        origin = spec.origin if spec else None
        if spec is None or (origin and Path(origin).resolve().is_relative_to(root)):
            continue
        out.append(name)
        if top == "matplotlib" and "matplotlib_inline.backend_inline" not in out:
            out.append("matplotlib_inline.backend_inline")  # the runtime's inline backend
    return out


def context(preload: list[str]) -> ForkServerContext:
    """The forkserver context, its server started now (it imports `preload` while nbflow goes
    on with the run's set-up); later runs in the same nbflow process reuse the server."""
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    # the server imports the libraries through `nbflow.local.preload`, which leaves out one that
    # fails; the forkserver's own preloading would die of anything but an ImportError
    ctx.set_forkserver_preload(["nbflow.local.preload"])
    # read by the server as it starts
    settings = {
        "NBFLOW_PRELOAD": ",".join(preload),
        "NBFLOW_PRELOAD_RUNTIME": runtime_archive(),
        "NBFLOW_PRELOAD_MAIN": callers_main(),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    return ctx


def callers_main() -> str:
    """The caller's main module as each task process is told of it (JSON), for the server to
    take it as its own: else each task would run it again before its step.

    The standard library sends a forked process the parent's main module, by name or by path
    (`multiprocessing.spawn.get_preparation_data`), and the process imports it as `__mp_main__`
    unless its own `__main__` (the server's, inherited) is that module already
    (`spawn._fixup_main_from_name`, `_fixup_main_from_path`). That import is there for a target
    defined in the main module; a task's target is nbflow's (`nbflow.local.worker`), so the main
    module is never needed, and importing it breaks callers that cannot be imported again: a
    script without an `if __name__ == "__main__":` guard runs itself once more in each task, a
    script read from stdin (`python -`) is a path that does not exist. So `nbflow.local.preload`
    names the server's `__main__` after the caller's, as a forked child's would be."""
    import json
    from multiprocessing import spawn

    data = spawn.get_preparation_data("nbflow")
    keys = ("init_main_from_name", "init_main_from_path")
    return json.dumps({k: data[k] for k in keys if k in data})


@functools.cache
def runtime_archive() -> str:
    """The path of the step runtime's archive, the one every local pipeline this process
    compiles carries (`nbflow.generate.runtime`), written once for the server to import it
    from: a step checks its own copy (the runtime task's artifact) against the digest
    generated into it, then finds the same package imported, compiled once for all steps."""
    import atexit
    import shutil
    import tempfile

    from nbflow.generate.runtime import RUNTIME_PACKAGE
    from nbflow.generate.runtime import runtime_archive as archive

    folder = tempfile.mkdtemp(prefix="nbflow-runtime-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = os.path.join(folder, f"{RUNTIME_PACKAGE}.zip")
    with open(path, "wb") as f:
        f.write(archive())
    return path
