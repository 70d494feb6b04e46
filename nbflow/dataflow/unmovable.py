"""Values that cannot cross a step boundary (open files, generators, sockets, database
connections, locks, threads, processes, executors), recognised by how they are made, with the
fix to suggest: a step's outputs are pickled and loaded in another pod.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

_FILE = ("an open file", "open the file in the step that uses it (pass its path instead)")
_GENERATOR = ("a generator", "materialize it with list() before the step ends")
_SOCKET = ("a socket", "connect in the step that uses it")
_CONNECTION = ("a database connection", "connect in the step that uses it")
_LOCK = ("a lock", "create it in the step that uses it")
_THREAD = ("a thread", "start and join it in one step")
_PROCESS = ("a multiprocessing object", "create it in the step that uses it")
_EXECUTOR = ("an executor", "create it in the step that uses it")

_FILE_CALLS = frozenset(
    {
        "open",
        "io.open",
        "codecs.open",
        "zipfile.ZipFile",
        "ZipFile",
        "tempfile.TemporaryFile",
        "tempfile.NamedTemporaryFile",
        "tempfile.SpooledTemporaryFile",
        "TemporaryFile",
        "NamedTemporaryFile",
        "urlopen",
        "urllib.request.urlopen",
        "request.urlopen",
    }
)
_THREADING = {
    "Lock": _LOCK,
    "RLock": _LOCK,
    "Condition": _LOCK,
    "Semaphore": _LOCK,
    "BoundedSemaphore": _LOCK,
    "Event": _LOCK,
    "Barrier": _LOCK,
    "Thread": _THREAD,
    "Timer": _THREAD,
}


def dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):  # e.g. engine.connect() on `create_engine(...)`
        inner = dotted(node.func)
        if inner is None:
            return None
        parts.append(inner)
    elif isinstance(node, ast.Name):
        parts.append(node.id)
    else:
        return None
    return ".".join(reversed(parts))


def unmovable_value(value: ast.expr, generators: Iterable[str]) -> tuple[str, str] | None:
    """(what, fix) when `value` makes something a step cannot pass on, else None."""
    if isinstance(value, ast.GeneratorExp):
        return _GENERATOR
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return None
    name = dotted(value.func)
    if name is None:
        return None
    first, _, _ = name.partition(".")
    last = name.rpartition(".")[2]
    if name in _FILE_CALLS or last == "open":
        return _FILE
    if first == "socket" and last in ("socket", "create_connection", "socketpair", "fromfd"):
        return _SOCKET
    if last in ("connect", "create_engine", "create_async_engine"):
        return _CONNECTION
    if last in _THREADING and (first == "threading" or name == last):
        return _THREADING[last]
    if first in ("multiprocessing", "mp") and name != first:
        return _PROCESS
    if last in ("ThreadPoolExecutor", "ProcessPoolExecutor"):
        return _EXECUTOR
    if name in generators:
        return _GENERATOR
    return None
