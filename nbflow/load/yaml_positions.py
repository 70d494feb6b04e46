"""YAML loading that keeps the position of every key and value.

The document becomes plain Python data (dict, list, str, int, float, bool, None) plus two maps
from a path (a tuple of keys and indexes) to the 1-based line and column of the key and of the
value, so that every later diagnostic can point at the exact place a user wrote.

YAML 1.2 rules apply (no yes/no booleans), and timestamps stay strings: `2024-01-01` means the
text the user wrote, not a date object.

No input can make loading hang, exhaust memory or overflow the stack: the file must be a regular
file of at most `MAX_BYTES`, nested at most `MAX_DEPTH` deep, and expand (aliases counted each
time they are used: a "billion laughs") to at most `MAX_VALUES` values; integers fit 64 bits and
floats are finite, as everything downstream (KFP, Kubernetes, Katib, JSON) needs. Each limit is a
diagnostic that points at the place, never an exception.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow import codes
from nbflow.diagnostics import Diagnostic, Location, error

YamlPath = tuple[str | int, ...]

# ruamel reads ~30,000 values a second: the limits keep a load within seconds, and far above
# what a real manifest holds (5,000 steps are ~200 kB and ~50,000 values)
MAX_BYTES = 2**20
MAX_DEPTH = 64  # a manifest is ~6 deep; a parameter's default may nest some more
MAX_VALUES = 100_000  # values in the document, each alias counted as the values it repeats
INT64 = (-(2**63), 2**63 - 1)  # what KFP, protobuf and Kubernetes integers hold


@dataclass
class YamlDoc:
    path: str
    text: str
    data: Any
    keys: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: YamlPath, *, key: bool = False) -> Location:
        """Where `path` is written; the nearest enclosing node that exists when it isn't."""
        path = tuple(path)
        while True:
            table = self.keys if key else self.values
            pos = table.get(path) or self.values.get(path) or self.keys.get(path)
            if pos is not None:
                line, col = pos
                return Location(self.path, line, col, end_column=self._end(line, col, key))
            if not path:
                return Location(self.path, 1, 1)
            path = path[:-1]
            key = True

    @functools.cached_property
    def _lines(self) -> list[str]:
        return self.text.splitlines()  # once: a diagnostic per step must not split it per step

    def _end(self, line: int, col: int, key: bool) -> int | None:
        """The column just past the token at (line, col), for underlining."""
        lines = self._lines
        if not 0 < line <= len(lines):
            return None
        rest = lines[line - 1][col - 1 :]
        if not rest:
            return None
        if rest[0] in "[{":
            return col + len(rest.split(" #")[0].rstrip())
        stop = len(rest)
        before = lines[line - 1][: col - 1]
        in_flow = before.count("{") + before.count("[") > before.count("}") + before.count("]")
        seps = (": ", " #") if key else (" #",)
        if in_flow:
            seps = (*seps, ",", "}", "]")
        for sep in seps:
            i = rest.find(sep)
            if i != -1:
                stop = min(stop, i)
        if key and rest.rstrip().endswith(":"):
            stop = min(stop, len(rest.rstrip()) - 1)
        token = rest[:stop].rstrip().rstrip(",]}")
        return col + max(len(token), 1)


class YamlLoadError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _yaml() -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.constructor import RoundTripConstructor
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.events import AliasEvent

    class LimitError(MarkedYAMLError):
        """A limit of this module (not a syntax error): its own diagnostic code."""

        def __init__(self, code: Any, problem: str, mark: Any) -> None:
            super().__init__(None, None, problem, mark)
            self.code = code

    class _Composer(Composer):
        """Counts the values of the document as it composes them, an alias as the values of
        its anchor, and stops at MAX_VALUES: a billion laughs stops at its first big alias,
        and a long list as soon as it is too long, not after it was read."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            alias = self.parser.check_event(AliasEvent)
            mark = self.parser.peek_event().start_mark  # an alias's own place, not its anchor's
            node = super().compose_node(parent, index)
            sizes: dict[int, int] = self.__dict__.setdefault("_nbf_sizes", {})
            if alias:  # its anchor's values once more
                if id(node) not in sizes:  # the anchor is still being composed: it holds this
                    raise LimitError(
                        codes.INPUT_TOO_LARGE,
                        "an alias refers to a node that contains it (a cycle)",
                        mark,
                    )
                size = sizes[id(node)]
            else:
                children = [
                    c
                    for item in (node.value if isinstance(node.value, list) else ())
                    for c in (item if isinstance(item, tuple) else (item,))
                ]
                sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
                size = 1  # its children were counted as they were composed
            total = self.__dict__.get("_nbf_total", 0) + size
            self.__dict__["_nbf_total"] = total
            if total > MAX_VALUES:
                raise LimitError(
                    codes.INPUT_TOO_LARGE,
                    f"the document holds more than {MAX_VALUES:,} values (aliases count each "
                    "time they are used)",
                    mark,
                )
            return node

    class _Constructor(RoundTripConstructor):
        """Round-trip constructor that keeps timestamps as the strings the user wrote, and
        numbers within what the rest of the pipeline can hold."""

        def construct_yaml_int(self, node: Any) -> Any:
            digits = str(node.value).lstrip("+-").replace("_", "")
            if len(digits) > 25:  # int() of thousands of digits is slow, and refused past 4300
                raise LimitError(
                    codes.NUMBER_OUT_OF_RANGE,
                    f"integer `{_short(node.value)}` is out of range (64 bits)",
                    node.start_mark,
                )
            value = super().construct_yaml_int(node)
            if not INT64[0] <= value <= INT64[1]:
                raise LimitError(
                    codes.NUMBER_OUT_OF_RANGE,
                    f"integer `{_short(node.value)}` is out of range (64 bits)",
                    node.start_mark,
                )
            return value

        def construct_yaml_float(self, node: Any) -> Any:
            value = super().construct_yaml_float(node)
            if not math.isfinite(value):
                raise LimitError(
                    codes.NUMBER_OUT_OF_RANGE,
                    f"`{_short(node.value)}` is not a finite number",
                    node.start_mark,
                )
            return value

    _Constructor.add_constructor(
        "tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str
    )
    _Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)
    _Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_yaml_float)
    y = YAML(typ="rt", pure=True)
    y.Constructor = _Constructor
    y.Composer = _Composer
    y.max_depth = MAX_DEPTH
    y.allow_duplicate_keys = False
    return y


def _short(text: Any) -> str:
    text = str(text)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} characters)"


def load_text(text: str, path: str) -> YamlDoc:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if len(text) > MAX_BYTES:
        raise YamlLoadError(
            error(
                codes.INPUT_TOO_LARGE,
                f"{path} is larger than {MAX_BYTES // 2**20} MiB: too large for a manifest",
                Location(path, 1, 1),
            )
        )
    try:
        raw = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        limit = getattr(exc, "code", None)
        if limit or type(exc).__name__ == "MaxDepthExceededError":
            raise YamlLoadError(
                error(
                    limit or codes.NESTED_TOO_DEEP,
                    problem if limit else f"nested more than {MAX_DEPTH} levels deep",
                    Location(path, line, col),
                    hint=None if limit else "a manifest needs a few levels; flatten the data",
                )
            ) from None
        duplicate = "duplicate key" in str(exc)
        if duplicate:
            problem = "duplicate key: " + (
                str(exc.problem).split('"')[1] if '"' in str(exc.problem) else "a key"
            )
        raise YamlLoadError(
            error(
                codes.DUPLICATE_KEY if duplicate else codes.YAML_SYNTAX,
                f"YAML syntax: {problem}" if not duplicate else problem,
                Location(path, line, col),
                hint="each key may appear once in a mapping" if duplicate else None,
            )
        ) from None
    except YAMLError as exc:
        raise YamlLoadError(
            error(codes.YAML_SYNTAX, f"YAML syntax: {exc}", Location(path, 1, 1))
        ) from None
    doc = YamlDoc(path=path, text=text, data=None)
    doc.data = _plain(raw, (), doc)
    return doc


def load_file(path: Path, shown: str | None = None) -> YamlDoc:
    shown = shown or str(path)
    try:
        with open(path, "rb", opener=_open_nonblocking) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise YamlLoadError(
                    error(
                        codes.MANIFEST_NOT_FOUND, f"{shown} is not a regular file", Location(shown)
                    )
                )
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise YamlLoadError(
            error(codes.MANIFEST_NOT_FOUND, f"manifest not found: {shown}", Location(shown))
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise YamlLoadError(
            error(codes.MANIFEST_NOT_FOUND, f"cannot read manifest {shown}: {exc}", Location(shown))
        ) from None
    if len(data) > MAX_BYTES:
        raise YamlLoadError(
            error(
                codes.INPUT_TOO_LARGE,
                f"{shown} is larger than {MAX_BYTES // 2**20} MiB: too large for a manifest",
                Location(shown, 1, 1),
            )
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlLoadError(
            error(codes.MANIFEST_NOT_FOUND, f"cannot read manifest {shown}: {exc}", Location(shown))
        ) from None
    return load_text(text, shown)


def _open_nonblocking(path: str, flags: int) -> int:
    """Open without blocking, so that a FIFO in a manifest's place is refused, not waited on."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _plain(node: Any, path: YamlPath, doc: YamlDoc) -> Any:
    """Convert ruamel's round-trip nodes to plain data, recording positions on the way."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for k, v in node.items():
            key = _scalar(k)
            child = (*path, key)
            try:
                kl, kc = node.lc.key(k)
                doc.keys[child] = (kl + 1, kc + 1)
                vl, vc = node.lc.value(k)
                doc.values[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            if isinstance(key, str) and _SURROGATE.search(key):
                key = _unicode(key, child, doc, is_key=True)
                for table in (doc.keys, doc.values):  # the positions follow the joined name
                    if child in table:
                        table[(*path, key)] = table.pop(child)
                child = (*path, key)
            out[key] = _plain(v, child, doc)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, v in enumerate(node):
            child = (*path, i)
            try:
                il, ic = node.lc.item(i)
                doc.values[child] = (il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(v, child, doc))
        return items
    value = _scalar(node)
    if isinstance(value, str) and _SURROGATE.search(value):
        return _unicode(value, path, doc)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode(text: str, path: YamlPath, doc: YamlDoc, *, is_key: bool = False) -> str:
    """`text` with the UTF-16 surrogate pairs of JSON-style escapes (`"\\ud83d\\ude00"`, as
    json.dumps writes a character beyond U+FFFF) joined into the character they spell. A
    lone surrogate is no character at all: nothing downstream (protobuf, YAML, a file) can
    encode it, so it is refused where it is written."""
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise YamlLoadError(
            error(
                codes.YAML_SYNTAX,
                f"YAML syntax: {text.encode('unicode_escape').decode()[:40]!s} holds an unpaired "
                "UTF-16 surrogate escape, which is no character",
                doc.locate(path, key=is_key),
            )
        ) from None


def _scalar(value: Any) -> Any:
    """ruamel's scalar subclasses (ScalarFloat, ScalarInt, quoted strings) to builtins."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
