"""The step runtime (the package ``nbflow/incluster/runtime``) as a generated pipeline carries it.

The runtime is standard-library-only at import time, so a step image needs no nbflow install:
the pipeline carries it once, as a zip archive (:func:`runtime_archive`) packed
(:func:`packed_runtime`) into its first task, which writes the archive to an artifact; every
step checks its SHA-256 and imports the package from it as ``nbflow_runtime`` (docs/runtime.md).
"""

from __future__ import annotations

import ast
import base64
import functools
import io
import lzma
import tokenize
import zipfile
from importlib.resources import files

__all__ = [
    "RUNTIME_PACKAGE",
    "packed_runtime",
    "runtime_archive",
    "runtime_code",
    "runtime_sources",
    "unpack_runtime",
    "unpack_script",
]

# The name the package has inside the archive, and so in a step's `sys.modules`
RUNTIME_PACKAGE = "nbflow_runtime"
# A zip entry's time and permissions, the same whenever and wherever the archive is built
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o100644  # a regular file, rw-r--r--


def runtime_sources() -> dict[str, str]:
    """The source of each module of the runtime package, by file name, in name order."""
    package = files("nbflow.incluster.runtime")
    names = sorted(p.name for p in package.iterdir() if p.name.endswith(".py"))
    return {name: package.joinpath(name).read_text(encoding="utf-8") for name in names}


def runtime_code(source: str) -> str:
    """`source` as the pipeline carries it, line for line (the same program with the same line
    numbers, so a traceback of the runtime points at its source): without comments and
    docstrings (their lines left empty, an empty string where a body has nothing else),
    without the functions' annotations (types for mypy, never read at run time) and indented
    by one space a level instead of four. A third smaller once compressed."""
    code, in_strings = _without_comments(source)
    return _reindented(_without_annotations(code), in_strings)


def _without_comments(source: str) -> tuple[str, set[int]]:
    """`source` without comments and docstrings, and the lines that are inside a string that
    spans lines (after its first)."""
    lines = source.split("\n")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if not (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
                and first.end_lineno is not None
            ):
                continue
            head, tail = lines[first.lineno - 1], lines[first.end_lineno - 1]
            indent = len(head) - len(head.lstrip())
            if first.col_offset != indent or first.end_col_offset != len(tail.encode("utf-8")):
                continue  # not on lines of its own (never so once formatted): left as it is
            # its lines left empty; an empty string where the body has nothing else
            empty = len(node.body) == 1 and not isinstance(node, ast.Module)
            lines[first.lineno - 1 : first.end_lineno] = [
                head[:indent] + "''" if empty else "",
                *[""] * (first.end_lineno - first.lineno),
            ]
    source = "\n".join(lines)
    tokens = []
    in_strings: set[int] = set()
    starts: list[int] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        kind = tokenize.tok_name[tok.type]
        if kind == "FSTRING_START":  # Python 3.12+: an f-string is several tokens
            starts.append(tok.start[0])
        elif kind == "FSTRING_END":
            in_strings.update(range(starts.pop() + 1, tok.end[0] + 1))
        elif tok.type == tokenize.STRING:
            in_strings.update(range(tok.start[0] + 1, tok.end[0] + 1))
        if tok.type != tokenize.COMMENT:
            tokens.append(tok)
    code = "\n".join(line.rstrip() for line in tokenize.untokenize(tokens).split("\n"))
    return code, in_strings


def _without_annotations(source: str) -> str:
    """`source` without the annotations of function parameters and results, and of assignments
    in function bodies (`x: T = v` becomes `x = v`): with `from __future__ import annotations`
    none of them is evaluated. Those on a line of their own (one that spans lines) are kept,
    so that every line stays where it was."""
    lines = [line.encode("utf-8") for line in source.split("\n")]  # ast's columns are bytes
    cuts: list[tuple[int, int, int]] = []  # (line, start column, end column), one line each

    def cut(start: tuple[int, int], end: ast.expr) -> None:
        if start[0] == end.lineno == end.end_lineno and end.end_col_offset is not None:
            cuts.append((start[0], start[1], end.end_col_offset))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                a = child.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                    if arg is not None and arg.annotation is not None:
                        name_end = arg.col_offset + len(arg.arg.encode("utf-8"))
                        cut((arg.lineno, name_end), arg.annotation)
                returns = child.returns
                if returns is not None:
                    line = lines[returns.lineno - 1]
                    arrow = line.rfind(b"->", 0, returns.col_offset)
                    if arrow > 0 and not line[arrow + 2 : returns.col_offset].strip():
                        cut((returns.lineno, len(line[:arrow].rstrip())), returns)
                visit(child, True)
            elif isinstance(child, ast.ClassDef):
                visit(child, False)  # class attributes' annotations are the class's
            else:
                if (
                    in_function
                    and isinstance(child, ast.AnnAssign)
                    and child.value is not None
                    and isinstance(child.target, ast.Name)
                ):
                    target = child.target
                    assert target.end_col_offset is not None
                    cut((target.lineno, target.end_col_offset), child.annotation)
                visit(child, in_function)

    visit(ast.parse(source), False)
    for lineno, start, end in sorted(cuts, reverse=True):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:start] + line[end:]
    return b"\n".join(lines).decode("utf-8")


def _reindented(source: str, in_strings: set[int]) -> str:
    """Each line's leading four spaces as one (the block structure is the same), except on
    `in_strings`, lines inside a string that spans lines."""
    lines = source.split("\n")
    for number, line in enumerate(lines, 1):
        indent = len(line) - len(line.lstrip(" "))
        if number not in in_strings and indent % 4 == 0:
            lines[number - 1] = " " * (indent // 4) + line[indent:]
    return "\n".join(lines)


@functools.cache
def runtime_archive() -> bytes:
    """The runtime package as a zip archive for `zipimport`: its modules' code
    (:func:`runtime_code`) under ``nbflow_runtime/``, in name order, each entry with a fixed
    time and mode and stored uncompressed (the archive is compressed whole, where the modules'
    common text compresses once). The same sources make the same bytes, wherever and whenever
    they are packed, so builds stay reproducible and the pipeline's version hash stable. Made
    once a process: what its pipelines carry and what its local engine preloads are one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, source in runtime_sources().items():
            entry = zipfile.ZipInfo(f"{RUNTIME_PACKAGE}/{name}", date_time=_EPOCH)
            entry.create_system = 3  # unix, else the host's: the mode below is read as unix
            entry.external_attr = _MODE << 16
            archive.writestr(entry, runtime_code(source).encode("utf-8"))
    return buffer.getvalue()


def packed_runtime() -> str:
    """The runtime's archive, LZMA-compressed and Base85-encoded with `{`, `}` and `$` written as
    `,`, `.` and `/` (:func:`unpack_runtime` turns them back): text in which neither KFP's
    placeholders (`{{...}}`) nor Kubernetes' `$(VAR)` expansion can form, and which YAML quotes
    as it is (no `"` or `\\`). 13% smaller than zlib and base64 (19.7 KB against 22.6 KB).
    `lzma` is in the standard library of every Python built with liblzma (the official images,
    distributions' and conda's); in one built without it the runtime task fails with
    `No module named '_lzma'`."""
    # .lzma rather than .xz: its header is shorter and it has no checksum (each step checks
    # the archive's SHA-256); `lzma.decompress` reads either. pb=0: text, no 4-byte structure.
    # Preset 6 packs this archive as small as 9 and extreme do, in a third of their time, and
    # asks the decoder for an 8 MiB dictionary, not 64.
    settings = {"id": lzma.FILTER_LZMA1, "preset": 6, "pb": 0}
    data = lzma.compress(runtime_archive(), lzma.FORMAT_ALONE, filters=[settings])
    return base64.b85encode(data).decode("ascii").translate(_PACK)


# Base85's only characters that KFP, Argo or Kubernetes read in a command, and ones it never uses
_SPECIAL, _STAND_INS = "{}$", ",./"
_PACK = str.maketrans(_SPECIAL, _STAND_INS)


def unpack_script() -> str:
    """The Python expression, for the runtime task, that turns the packed text in a variable
    `packed` back into the archive (:func:`unpack_runtime`) with the standard library's
    `base64` and `lzma`."""
    special = "+".join(f"chr({ord(c)})" for c in _SPECIAL)  # no `{` or `$` in the command
    return f"lzma.decompress(base64.b85decode(packed.translate(str.maketrans({_STAND_INS!r}, {special}))))"


def unpack_runtime(packed: str) -> bytes:
    """The archive :func:`packed_runtime` packed, as the runtime task's script unpacks it."""
    text = packed.translate(str.maketrans(_STAND_INS, _SPECIAL))
    return lzma.decompress(base64.b85decode(text))
