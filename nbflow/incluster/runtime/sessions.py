"""Running cells: an IPython shell when IPython is importable (magics, `!cmd`, rich display),
else plain exec; either records what cells display instead of printing it.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import linecache
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
from typing import Any, Protocol

from .capture import Recorder
from .failures import CELL_FILE, CellSources
from .util import importable

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


class Session(Protocol):
    def push(self, values: dict[str, object]) -> None: ...

    def get(self, name: str) -> tuple[bool, object]: ...

    def run_cell(self, number: int, source: str) -> BaseException | None: ...

    def close(self) -> None: ...


def _figure_pngs() -> list[bytes]:
    """PNGs of the open pyplot figures, which are then closed (the inline backend's flush)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    pngs = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png", bbox_inches="tight")
        pngs.append(buf.getvalue())
    plt.close("all")
    return pngs


def _plain_bundle(obj: object) -> dict[str, Any]:
    """A small stand-in for IPython's display formatter."""
    data: dict[str, Any] = {}
    if not isinstance(obj, type):
        for attr, mime in (("_repr_png_", "image/png"), ("_repr_html_", "text/html")):
            method = getattr(obj, attr, None)
            if callable(method):
                try:
                    value = method()
                except Exception:
                    value = None
                if isinstance(value, tuple):
                    value = value[0]
                if value is not None:
                    data[mime] = value
    data["text/plain"] = repr(obj)
    return data


class PlainSession:
    """Cells as plain Python (no IPython in the step image): magics fail with a clear message."""

    def __init__(self, recorder: Recorder, sources: CellSources) -> None:
        self.recorder = recorder
        self.sources = sources
        self.module = types.ModuleType("__main__")
        self.ns = self.module.__dict__
        self.ns["display"] = self._display
        self._saved_main = sys.modules.get("__main__")
        # classes defined in cells live in __main__, so cloudpickle saves them by value
        sys.modules["__main__"] = self.module
        self._saved_backend = os.environ.get("MPLBACKEND")
        if "matplotlib" not in sys.modules:
            os.environ["MPLBACKEND"] = "Agg"

    def _display(self, *objs: object, **kwargs: object) -> None:
        for obj in objs:
            self.recorder.display(_plain_bundle(obj))

    def push(self, values: dict[str, object]) -> None:
        self.ns.update(values)

    def get(self, name: str) -> tuple[bool, object]:
        return (name in self.ns, self.ns.get(name))

    def run_cell(self, number: int, source: str) -> BaseException | None:
        import ast

        filename = f"<cell {number}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            tree = ast.parse(source, filename)
        except SyntaxError as exc:
            return _magic_error(exc, source) or exc
        last = None
        node = tree.body[-1] if tree.body else None
        if isinstance(node, ast.Expr):  # shown like Out[n], as IPython does
            tree.body.pop()
            last = ast.Expression(node.value)
        try:
            exec(compile(tree, filename, "exec"), self.ns)
            if last is not None:
                value = eval(compile(last, filename, "eval"), self.ns)
                if value is not None:
                    self.ns["_"] = value
                    self.recorder.display(_plain_bundle(value), number)
        except BaseException as exc:
            return exc
        finally:
            for png in _figure_pngs():
                self.recorder.display({"image/png": png, "text/plain": "<Figure>"})
        return None

    def close(self) -> None:
        if self._saved_main is not None:
            sys.modules["__main__"] = self._saved_main
        _restore_env("MPLBACKEND", self._saved_backend)
        for key in [k for k in linecache.cache if CELL_FILE.match(k)]:
            del linecache.cache[key]


def _magic_error(exc: SyntaxError, source: str) -> Exception | None:
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(("%", "!")) or re.match(r"^[\w.,\s]+=\s*[!%]", stripped):
            error = RuntimeError(
                f"line {lineno} uses IPython syntax ({stripped!r}), but IPython is not "
                "installed in the step image: add ipython to the image"
            )
            error.__traceback__ = None
            return error
    return None


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class IPythonSession:
    """A private, non-singleton IPython shell that records display data instead of printing it.

    Everything the shell changes outside itself (the InteractiveShell singleton that display()
    and matplotlib_inline look up, sys.modules['__main__'], builtins, sys.ps1, atexit) is put
    back by close(), so that the runtime can run many times in one process.
    """

    def __init__(self, recorder: Recorder, sources: CellSources) -> None:
        import builtins

        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        self.recorder = recorder
        self.sources = sources
        sources.drops_leading_blank_lines = True
        self._saved_instance = InteractiveShell._instance
        self._saved_builtins = {k: builtins.__dict__.get(k, _MISSING) for k in _IPY_BUILTINS}
        self._saved_ps = {k: getattr(sys, k, _MISSING) for k in ("ps1", "ps2", "ps3")}
        self._saved_backend = os.environ.get("MPLBACKEND")
        self._saved_inline = _inline_backend_state()
        self._dir = tempfile.mkdtemp(prefix="nbflow-ipython-")
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell_class = _shell_class(recorder)
        main_module = sys.modules.get("__main__")
        try:
            self.shell = shell_class(ipython_dir=self._dir, config=config, user_ns={})
        except BaseException:
            if main_module is not None:
                sys.modules["__main__"] = main_module
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.shell.compile = _compiler_class()()
        self.shell._nbflow_shown = []
        # display() and matplotlib_inline find the shell through the singleton
        InteractiveShell._instance = self.shell
        shell_class._instance = self.shell
        _inline_matplotlib(self.shell)

    def push(self, values: dict[str, object]) -> None:
        self.shell.push(values)

    def get(self, name: str) -> tuple[bool, object]:
        ns = self.shell.user_ns
        return (name in ns, ns.get(name))

    def run_cell(self, number: int, source: str) -> BaseException | None:
        shell = self.shell
        shell.execution_count = number  # so that Out[n] is the notebook's cell number
        shell._nbflow_shown.clear()
        result = shell.run_cell(source, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if error is None and shell._nbflow_shown:
            # A magic or an event hook showed a traceback and carried on (%%time before
            # IPython 9, a figure that fails to draw): in a notebook the cell shows an error,
            # so the step fails rather than going on with what the cell did not do.
            error = shell._nbflow_shown[0]
        return error

    def close(self) -> None:
        import atexit
        import builtins

        from IPython.core.interactiveshell import InteractiveShell

        shell = self.shell
        atexit.unregister(shell.atexit_operations)
        with contextlib.suppress(Exception):
            shell.history_manager.close()
        shell.cleanup()  # sys.modules['__main__'], sys.std*, sys.excepthook
        InteractiveShell._instance = self._saved_instance
        type(shell)._instance = None
        for key, value in self._saved_builtins.items():
            if value is _MISSING:
                builtins.__dict__.pop(key, None)
            else:
                builtins.__dict__[key] = value
        for key, value in self._saved_ps.items():
            if value is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(sys, key)
            else:
                setattr(sys, key, value)
        _restore_env("MPLBACKEND", self._saved_backend)
        _restore_inline_backend(self._saved_inline, shell)
        for key in [k for k in linecache.cache if CELL_FILE.match(k)]:
            del linecache.cache[key]
        shutil.rmtree(self._dir, ignore_errors=True)


_MISSING = object()
_IPY_BUILTINS = ("__IPYTHON__", "display", "get_ipython", "exit", "quit")


def _inline_backend_state() -> tuple[object, object] | None:
    module = sys.modules.get("matplotlib_inline.config")
    if module is None:
        return None
    instance = module.InlineBackend._instance
    return instance, getattr(instance, "shell", None)


def _restore_inline_backend(saved: tuple[object, object] | None, shell: object) -> None:
    module = sys.modules.get("matplotlib_inline.config")
    if module is None:
        return
    if saved is None or saved[0] is None:
        module.InlineBackend.clear_instance()
        return
    instance, old_shell = saved
    module.InlineBackend._instance = instance
    if getattr(instance, "shell", None) is shell:
        with contextlib.suppress(Exception):
            instance.shell = old_shell  # type: ignore[attr-defined]


def _inline_matplotlib(shell: Any) -> None:
    """Make figures show inline as in a notebook, with or without `%matplotlib inline`."""
    if not importable("matplotlib_inline"):
        return
    if "matplotlib" not in sys.modules:
        # ipykernel does the same: pyplot then loads the inline backend, which finds the shell
        os.environ["MPLBACKEND"] = INLINE_BACKEND
        return
    # matplotlib is already loaded (an earlier step in this process, or the image's startup)
    _configure_inline(shell, activate="matplotlib.pyplot" in sys.modules)


def _configure_inline(shell: Any, *, activate: bool) -> None:
    import matplotlib
    from matplotlib_inline.backend_inline import configure_inline_support

    if activate:
        from IPython.core.pylabtools import activate_matplotlib

        activate_matplotlib(INLINE_BACKEND)
    else:
        matplotlib.interactive(True)
        matplotlib.use(INLINE_BACKEND)
    # it registers the figure formatters only when the backend changes: force it for this shell
    configure_inline_support.current_backend = "unset"  # type: ignore[attr-defined]
    configure_inline_support(shell, INLINE_BACKEND)


def _compiler_class() -> type:
    from IPython.core.compilerop import CachingCompiler

    class CellCompiler(CachingCompiler):
        """Names cell code `<cell N>` (N: the notebook cell number) so frames point at cells."""

        def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
            return f"<cell {number}>"

    return CellCompiler


def _shell_class(recorder: Recorder) -> Any:
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Publisher(DisplayPublisher):
        def publish(
            self,
            data: dict[str, Any],
            metadata: dict[str, Any] | None = None,
            source: object = None,
            *,
            transient: object = None,
            update: bool = False,
            **kwargs: object,
        ) -> None:
            recorder.display(data)

        def clear_output(self, wait: bool = False) -> None:
            recorder.clear()

    class Hook(DisplayHook):
        def write_output_prompt(self) -> None:
            pass

        def write_format_data(
            self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None
        ) -> None:
            recorder.display(format_dict, self.prompt_count)

        def finish_displayhook(self) -> None:
            self._is_active = False

    class StepShell(InteractiveShell):
        display_pub_class = Publisher
        displayhook_class = Hook
        _nbflow_shown: list[BaseException]

        def init_virtualenv(self) -> None:
            pass  # it would edit sys.path for a VIRTUAL_ENV that is not ours

        def enable_gui(self, gui: str | None = None) -> None:
            pass  # no event loop in a step: figures are rendered inline

        def enable_matplotlib(self, gui: str | None = None) -> tuple[str, str]:
            if gui not in (None, "auto", "inline"):
                sys.stderr.write(f"[nbflow] %matplotlib {gui}: a step renders figures inline\n")
            _configure_inline(self, activate=True)
            return "inline", INLINE_BACKEND

        def showtraceback(self, exc_tuple: Any = None, *args: Any, **kwargs: Any) -> None:
            # the runtime writes its own message; record what IPython would have printed
            exc = exc_tuple[1] if exc_tuple else sys.exc_info()[1]
            if exc is not None:
                self._nbflow_shown.append(exc)

        def showsyntaxerror(self, *args: Any, **kwargs: Any) -> None:
            pass

        def showindentationerror(self) -> None:
            pass

        def system_piped(self, cmd: str) -> None:
            # through sys.stdout (pexpect, IPython's way, writes around it), so the report has it
            if cmd.rstrip().endswith("&"):
                raise OSError("background processes are not supported in a step")
            cmd = self.var_expand(cmd, depth=1)
            proc = subprocess.Popen(
                cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            assert proc.stdout is not None
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            with proc.stdout:
                fd = proc.stdout.fileno()
                while chunk := os.read(fd, 65536):  # as it comes, not when the pipe fills
                    sys.stdout.write(decoder.decode(chunk))
                    sys.stdout.flush()
            sys.stdout.write(decoder.decode(b"", final=True))
            code = proc.wait()
            self.user_ns["_exit_code"] = code
            if getattr(self, "system_raise_on_error", False) and code != 0:
                raise subprocess.CalledProcessError(code, cmd)

        system = system_piped

        def getoutput(self, cmd: str, split: bool = True, depth: int = 0) -> Any:
            from IPython.utils.text import LSString, SList

            if cmd.rstrip().endswith("&"):
                raise OSError("background processes are not supported in a step")
            cmd = self.var_expand(cmd, depth=depth + 1)
            proc = subprocess.run(
                cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
            )
            self.user_ns["_exit_code"] = proc.returncode
            if getattr(self, "system_raise_on_error", False) and proc.returncode != 0:
                raise subprocess.CalledProcessError(proc.returncode, cmd)
            out = proc.stdout.decode("utf-8", errors="replace")
            return SList(out.splitlines()) if split else LSString(out)

    return StepShell


def new_session(recorder: Recorder, sources: CellSources) -> Session:
    if importable("IPython"):
        try:
            return IPythonSession(recorder, sources)
        except Exception as exc:  # an IPython too old or broken: cells still run
            sys.stderr.write(
                f"[nbflow] IPython did not start ({type(exc).__name__}: {exc}): "
                "running cells as plain Python\n"
            )
            sources.drops_leading_blank_lines = False
    return PlainSession(recorder, sources)
