"""IPython syntax as Python: what IPython's input transformer makes of a notebook cell.

A cell that is not Python goes through :func:`fast_transform` first, a small line transformer that
produces what IPython's ``TransformerManager`` produces for the usual forms (``%magic``, ``!cmd``,
``x = !cmd``, ``x = %magic``, ``obj?``, ``?obj``) and keeps line numbers; only what it cannot turn
into Python goes to :func:`ipython_transform`, IPython's own transformer, imported lazily since
the import costs about a tenth of a second (:data:`MAYBE_IPYTHON` says when it may help).
``%%cell_magic`` cells are split as IPython splits them (:func:`cell_magic_parts`), and
:func:`magic_call` recognises the ``get_ipython()`` calls the transformers write. The tables say
what the usual magics do with their arguments.
"""

from __future__ import annotations

import ast
import re
import textwrap

__all__ = [
    "INTERPOLATED",
    "MAYBE_IPYTHON",
    "NO_EXPAND",
    "PRUN_FLAGS",
    "PY_CELL_MAGICS",
    "READ_ONLY_MAGICS",
    "TIMEIT_FLAGS",
    "cell_magic_parts",
    "fast_transform",
    "ipython_transform",
    "magic_call",
]

# Cell magics whose body is Python run in the user namespace, and those that only time it.
PY_CELL_MAGICS = frozenset({"time", "capture", "prun"})
READ_ONLY_MAGICS = frozenset({"timeit"})
# Line magics that IPython does not variable-expand (their argument is Python).
NO_EXPAND = frozenset({"time", "timeit", "prun", "debug", "pinfo", "pinfo2", "psearch"})
TIMEIT_FLAGS = re.compile(r"^(?:\s*-(?:[nrp]\s*\S+|[tcqo]))+\s*")
PRUN_FLAGS = re.compile(r"^(?:\s*-(?:[lsTD]\s*\S+|[rq]))+\s*")
# Variables a shell command or magic line interpolates: ``$name``, ``${name}``, ``{expr}``.
INTERPOLATED = re.compile(r"(?<![$\\])\$\{?([A-Za-z_]\w*)|(?<!\{)\{([^{}\n]+)\}(?!\})")

_ASSIGN_ESC = re.compile(r"(\s*(?:[A-Za-z_][\w.]*\s*,\s*)*[A-Za-z_][\w.]*\s*,?\s*=\s*)(?=[!%][^=])")
# what IPython's transformer may turn into Python that the small one did not
MAYBE_IPYTHON = re.compile(r"[%!?]|^\s*(?:>>>|\.\.\.|In \[)", re.M)
_HELP_END = re.compile(r"(%{0,2}(?!\d)[\w*]+(?:\.(?!\d)[\w*]+|\[-?[0-9]+\])*)(\?\??)\Z")


def _q(text: str) -> str:
    return repr(text)


def _help_call(target: str, esc: str) -> str:
    method = "pinfo2" if esc == "??" else "psearch" if "*" in target else "pinfo"
    name, _, arg = f"{method} {target}".partition(" ")
    return f"get_ipython().run_line_magic({_q(name.lstrip('%'))}, {_q(arg)})"


def _escaped(text: str) -> str | None:
    """Python for one escaped command line (without its indentation), as IPython writes it."""
    if text.startswith("!!"):
        return f"get_ipython().getoutput({_q(text[2:])})"
    if text.startswith("!"):
        return f"get_ipython().system({_q(text[1:])})"
    if text.startswith("%") and not text.startswith("%%"):
        name, _, args = text[1:].partition(" ")
        return f"get_ipython().run_line_magic({_q(name)}, {_q(args)})"
    return None


def fast_transform(source: str) -> str:
    """The usual IPython line syntax to Python, as IPython writes it, keeping line numbers.

    Only run on a cell that is not Python; what it cannot turn into Python, IPython's own
    transformer gets next.
    """
    lines = textwrap.dedent(source).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        body = line.lstrip()
        indent = line[: len(line) - len(body)]
        assign = None
        if body[:1] in ("!", "%", "?"):
            start = len(indent)
        elif "=" in line and (assign := _ASSIGN_ESC.match(line)) is not None:
            start = assign.end(1)
        elif line.rstrip().endswith("?"):
            start = len(indent)
        else:
            out.append(line)
            i += 1
            continue
        end = i  # a backslash continues an escaped line, as in IPython
        while lines[end].endswith("\\") and end + 1 < len(lines):
            end += 1
        parts = [lines[i][start:], *lines[i + 1 : end + 1]]
        text = " ".join([p.rstrip()[:-1] for p in parts[:-1]] + [parts[-1].rstrip()])
        new: str | None = None
        if assign is not None:
            if text.startswith("!"):
                new = f"{line[:start]}get_ipython().getoutput({_q(text[1:])})"
            else:
                name, _, args = text[1:].partition(" ")
                if name.isidentifier():
                    new = f"{line[:start]}get_ipython().run_line_magic({_q(name)}, {_q(args)})"
        elif text[:1] in ("!", "%"):
            call = _escaped(text)
            new = None if call is None else indent + call
        elif text[:1] == "?":
            esc = "??" if text.startswith("??") else "?"
            content = text[len(esc) :]
            new = indent + (_help_call(content, esc) if content else "get_ipython().show_usage()")
        else:
            m = _HELP_END.match(text)
            if m is not None:
                new = indent + _help_call(m.group(1), m.group(2))
        if new is None:
            out.append(line)
            i += 1
            continue
        out.append(new)
        out.extend("" for _ in range(end - i))
        i = end + 1
    return "\n".join(out) + "\n"


def ipython_transform(source: str) -> str | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    try:
        text = TransformerManager().transform_cell(source)
    except Exception:  # IPython raises what its tokenizer raises: anything is "not Python"
        return None
    # IPython drops leading blank lines: put them back so that line numbers hold
    lead = 0
    for line in source.splitlines():
        if line.strip():
            break
        lead += 1
    return "\n" * lead + text


def magic_call(node: ast.Call) -> tuple[str, list[str]] | None:
    """``get_ipython().<method>('a', 'b')`` -> (method, ['a', 'b']) when all args are strings."""
    f = node.func
    if not (
        isinstance(f, ast.Attribute)
        and isinstance(f.value, ast.Call)
        and isinstance(f.value.func, ast.Name)
        and f.value.func.id == "get_ipython"
        and not f.value.args
    ):
        return None
    args: list[str] = []
    for a in node.args:
        if not (isinstance(a, ast.Constant) and isinstance(a.value, str)):
            return None
        args.append(a.value)
    return f.attr, args


def cell_magic_parts(source: str) -> tuple[str, str, str, int] | None:
    """(name, first line, body, line of the %% line) of a cell magic cell, as IPython splits it."""
    lines = source.splitlines(keepends=True)
    lead = 0
    while lead < len(lines) and not lines[lead].strip():
        lead += 1
    rest = textwrap.dedent("".join(lines[lead:])).splitlines(keepends=True)
    if not rest or not rest[0].startswith("%%") or re.match(r"%%\w+\?", rest[0]):
        return None
    name, _, first_line = rest[0][2:].rstrip().partition(" ")
    return name, first_line, "".join(rest[1:]), lead + 1
