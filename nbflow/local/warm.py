"""Warm task processes: forked from a server process that has imported kfp's executor, IPython
and the setup cells' libraries once, so a step starts in milliseconds instead of re-importing
them (~2 s a step under kfp.local). Each task still runs in a process of its own, as on a
cluster; the server is the standard library's forkserver, an instance of nbflow's
(`nbflow.local.process_server`).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
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
    """The context of task processes (`nbflow.local.process_server`), its server started now
    (it imports `preload` while nbflow goes on with the run's set-up); later runs in the same
    nbflow process reuse the server."""
    from nbflow.local import process_server

    server = process_server.server()
    # the server imports the libraries through `nbflow.local.preload`, which leaves out one that
    # fails; the forkserver's own preloading would die of anything but an ImportError
    server.set_forkserver_preload(["nbflow.local.preload"])
    # read by the server as it starts
    settings = {"NBFLOW_PRELOAD": ",".join(preload), "NBFLOW_PRELOAD_RUNTIME": runtime_archive()}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        server.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    return process_server.TaskContext()


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
