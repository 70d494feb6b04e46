"""The step runtime (``nbflow/incluster/step.py``) as a generated pipeline carries it.

``step.py`` is standard-library-only at import time, so a step image needs no nbflow install:
the pipeline carries the runtime once, packed (:func:`packed_runtime`) into its first task,
which writes it to an artifact that every step loads and runs (docs/runtime.md).
"""

from __future__ import annotations

import ast
import base64
import io
import tokenize
import zlib
from importlib.resources import files

__all__ = ["packed_runtime", "runtime_code", "runtime_source"]


def runtime_source() -> str:
    """The source text of ``nbflow/incluster/step.py``."""
    return files("nbflow.incluster").joinpath("step.py").read_text(encoding="utf-8")


def runtime_code(source: str) -> str:
    """`source` without its comments and docstrings, line for line: the same program with the
    same line numbers (a docstring becomes an empty string spanning its lines), a fifth
    smaller once compressed."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.add((first.lineno, first.col_offset))
    tokens = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            continue
        if tok.type == tokenize.STRING and tok.start in docstrings:
            breaks = tok.end[0] - tok.start[0]
            tok = tok._replace(string="(''" + "\n" * breaks + ")" if breaks else "''")
        tokens.append(tok)
    return "\n".join(line.rstrip() for line in tokenize.untokenize(tokens).split("\n"))


def packed_runtime() -> str:
    """The runtime's code, zlib-compressed and base64-encoded: 30% of its source's size, and
    text that KFP's placeholders (`{{...}}`) and YAML quoting leave alone. zlib rather than
    lzma: every Python that runs pip has it. The same source packs to the same text, so builds
    stay byte for byte reproducible."""
    data = runtime_code(runtime_source()).encode("utf-8")
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")
