"""The kfp SDK, imported for compiling only: without what a compile never calls.

`import kfp` runs `kfp/__init__.py`, which imports `kfp.client` (the REST client, with
kfp_server_api and the Kubernetes client), and `kfp.kubernetes` imports the Kubernetes client for
the one helper nbflow never calls (`add_node_affinity_json`). In a fresh `nbflow build` that is
~0.45 s of ~1 s, and ~0.1 s more at exit, when the interpreter frees the Kubernetes client's
~800 model classes. Here:

- `kfp` is imported with `_KFP_RUNTIME=true`, kfp's own switch (its step executor sets it) that
  skips those imports in `kfp/__init__.py`; `kfp.Client`, `kfp.dsl` and `kfp.components` are
  then imported on first use, so `kfp` looks the same to any later code in the process;
- while `kfp.kubernetes` is imported, `kubernetes` and `kubernetes.client` are stand-ins that
  import the real modules the moment anything uses them. They leave `sys.modules` right after,
  so a later `import kubernetes` is the real one.

And while the generated module runs, `stack_without_source` spares kfp's task setters
(`set_cpu_request`...) the `inspect.stack()` each calls for its caller's name, which reads the
source of every frame on the stack: ~35 ms of a build.

If kfp was imported before, nothing changes. If a kfp-kubernetes release imports more of the
Kubernetes client than a stand-in can give, the import is simply done the ordinary way.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

_LAZY_KFP_ATTRIBUTES = {"Client": "kfp.client", "dsl": "kfp.dsl", "components": "kfp.components"}


def import_for_compile(*, kubernetes: bool) -> None:
    """Import kfp's DSL and compiler (and kfp-kubernetes when `kubernetes`) the light way."""
    if "kfp" not in sys.modules:
        _import_kfp_package()
    importlib.import_module("kfp.dsl")
    importlib.import_module("kfp.compiler")
    if kubernetes and "kfp.kubernetes" not in sys.modules:
        _import_kfp_kubernetes()


def _import_kfp_package() -> None:
    before = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        kfp = importlib.import_module("kfp")
    finally:
        if before is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = before
    if "__getattr__" not in vars(kfp):

        def __getattr__(name: str) -> Any:  # PEP 562: kfp's skipped imports, on first use
            if name not in _LAZY_KFP_ATTRIBUTES:
                raise AttributeError(f"module 'kfp' has no attribute {name!r}")
            module = importlib.import_module(_LAZY_KFP_ATTRIBUTES[name])
            value = module if name != "Client" else module.Client
            setattr(kfp, name, value)
            return value

        kfp.__getattr__ = __getattr__  # type: ignore[method-assign]


class _StandIn(types.ModuleType):
    """A module not imported yet: the first use of an attribute it lacks imports the real module
    and hands that attribute over. Dunder lookups (`__file__`, `__path__`...) don't count:
    `inspect.getmodule` asks every module in sys.modules for `__file__`."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        _remove_stand_ins()
        return getattr(importlib.import_module(self.__name__), name)


_STAND_IN_NAMES = ("kubernetes.client", "kubernetes")


def _remove_stand_ins() -> None:
    for name in _STAND_IN_NAMES:
        if isinstance(sys.modules.get(name), _StandIn):
            del sys.modules[name]


@contextlib.contextmanager
def _kubernetes_stand_ins() -> Iterator[None]:
    package, client = _StandIn("kubernetes"), _StandIn("kubernetes.client")
    package.client = client  # type: ignore[attr-defined]
    sys.modules["kubernetes"], sys.modules["kubernetes.client"] = package, client
    try:
        yield
    finally:
        _remove_stand_ins()


def _import_kfp_kubernetes() -> None:
    if "kubernetes" in sys.modules:  # already paid for
        importlib.import_module("kfp.kubernetes")
        return
    try:
        with _kubernetes_stand_ins():
            importlib.import_module("kfp.kubernetes")
    except ImportError:
        # a kfp-kubernetes that needs more of the client at import: the ordinary way
        for name in [
            m for m in sys.modules if m == "kfp.kubernetes" or m.startswith("kfp.kubernetes.")
        ]:
            del sys.modules[name]
        importlib.import_module("kfp.kubernetes")


@contextlib.contextmanager
def stack_without_source() -> Iterator[None]:
    """kfp.dsl.pipeline_task's `inspect`, whose `stack()` gives frames without their source
    lines (kfp reads only the function names), for as long as the context lasts."""
    from kfp.dsl import pipeline_task

    if getattr(pipeline_task, "inspect", None) is not inspect:
        yield
        return
    pipeline_task.inspect = _InspectWithoutSource("inspect")
    try:
        yield
    finally:
        pipeline_task.inspect = inspect


class _InspectWithoutSource(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def stack(context: int = 1) -> list[inspect.FrameInfo]:
        frames = []
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None:
            frames.append(
                inspect.FrameInfo(
                    frame,
                    frame.f_code.co_filename,
                    frame.f_lineno,
                    frame.f_code.co_name,
                    None,
                    None,
                )
            )
            frame = frame.f_back
        return frames
