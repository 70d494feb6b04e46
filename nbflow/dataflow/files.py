"""What a cell does outside Python's namespace: files it names, packages it installs.

:func:`literal_paths` finds the relative paths a cell names as string literals in a call
(``pd.read_csv("data.csv")``, ``open("out.txt", "w")``, ``Path("data") / ...``), each with
whether the call writes it. In Jupyter they are relative to the notebook's folder: ``nbflow run``
runs steps there, the files a step reads are part of its cache key and of the pipeline version
(``nbflow.generate.kfp_source``), and validation names every one, since on a cluster the step
runs in its image's working directory.

:func:`install_lines` finds ``!pip install``-like lines, which a step skips (its packages come
from its image and ``requirements:``); the step runtime (``nbflow/incluster/runtime/cells.py``) holds the
same pattern, which it cannot import.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from nbflow.dataflow.ipython_syntax import fast_transform

__all__ = ["INSTALL_LINE", "PathUse", "install_lines", "literal_paths"]

INSTALL_LINE = re.compile(
    r"^(?P<indent>[ \t]*)[!%]+[ \t]*(?:sudo[ \t]+)?"
    r"(?:pip3?|conda|mamba|micromamba|uv[ \t]+pip|python3?(?:\.\d+)?[ \t]+-m[ \t]+pip)"
    r"[ \t]+install\b"
)

# a file name: no spaces or format fields, a name with an extension or a folder in it
_PATHLIKE = re.compile(r"^(?:\.{1,2}/)?[\w.\-]+(?:/[\w.\-]+)*/?$")
_EXTENSION = re.compile(r"\.([A-Za-z][A-Za-z0-9]{0,7})$")
# extensions of data files (a dotted name like "sklearn.base" is a module, not a file)
_FILE_TYPES = frozenset(
    [
        "csv",
        "tsv",
        "txt",
        "text",
        "json",
        "jsonl",
        "ndjson",
        "parquet",
        "pq",
        "feather",
        "arrow",
        "orc",
        "avro",
        "xlsx",
        "xls",
        "ods",
        "h5",
        "hdf5",
        "hdf",
        "pkl",
        "pickle",
        "joblib",
        "npy",
        "npz",
        "pt",
        "pth",
        "ckpt",
        "safetensors",
        "onnx",
        "keras",
        "ubj",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "bmp",
        "tif",
        "tiff",
        "webp",
        "pdf",
        "html",
        "htm",
        "xml",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "zip",
        "gz",
        "bz2",
        "xz",
        "zst",
        "tar",
        "tgz",
        "db",
        "sqlite",
        "sqlite3",
        "model",
        "bin",
        "sav",
        "mat",
        "log",
        "md",
        "wav",
        "mp3",
        "mp4",
        "avi",
        "dat",
        "data",
        "names",
        "sql",
        "py",
        "ipynb",
    ]
)
# calls whose path argument is written, not read
_WRITERS = frozenset(
    {
        "save",
        "savefig",
        "savez",
        "savez_compressed",
        "savetxt",
        "dump",
        "write_text",
        "write_bytes",
        "mkdir",
        "makedirs",
        "save_model",
        "save_weights",
        "save_binary",
        "to_file",
        "write",
    }
)


@dataclass(frozen=True)
class PathUse:
    path: str
    line: int  # in the cell, 1-based
    column: int  # 1-based
    writes: bool


def _looks_like_path(text: str) -> bool:
    if not text or len(text) > 200 or "://" in text or text.startswith(("/", "~")):
        return False
    if not _PATHLIKE.match(text) or text in (".", "..", "./", "../"):
        return False
    match = _EXTENSION.search(text)
    return "/" in text or (match is not None and match.group(1).lower() in _FILE_TYPES)


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    return f.id if isinstance(f, ast.Name) else ""


def _writes(call: ast.Call, name: str) -> bool:
    if name.startswith("to_") or name in _WRITERS:
        return True
    if name == "open":
        mode = call.args[1] if len(call.args) > 1 else None
        for k in call.keywords:
            if k.arg == "mode":
                mode = k.value
        return (
            isinstance(mode, ast.Constant)
            and isinstance(mode.value, str)
            and any(c in mode.value for c in "wax+")
        )
    return False


def _tree(source: str) -> ast.Module | None:
    for text in (source, fast_transform(source)):
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            continue
    return None


def literal_paths(source: str) -> list[PathUse]:
    """The relative paths the cell's calls name as string literals, in source order."""
    tree = _tree(source)
    if tree is None:
        return []
    found: dict[tuple[int, int], PathUse] = {}
    try:
        nodes = list(ast.walk(tree))
    except RecursionError:
        return []
    for node in nodes:
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        args = [*node.args, *(k.value for k in node.keywords)]
        for i, arg in enumerate(args):
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                continue
            if not _looks_like_path(arg.value):
                continue
            # `obj.save("m.pkl")`, `json.dump(x, open(...))`: the path of a writer is written,
            # except where it is the thing being dumped
            writes = _writes(node, name) and not (name == "dump" and i == 0 and len(args) > 1)
            found[(arg.lineno, arg.col_offset)] = PathUse(
                arg.value, arg.lineno, arg.col_offset + 1, writes
            )
    return [found[k] for k in sorted(found)]


def install_lines(source: str) -> list[tuple[int, str]]:
    """(line, text) of each line that installs packages (``!pip install x``, ``%pip install``)."""
    return [
        (i, line.strip())
        for i, line in enumerate(source.split("\n"), 1)
        if INSTALL_LINE.match(line) and not line.rstrip().endswith("\\")
    ]
