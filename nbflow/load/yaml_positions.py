"""YAML loading that keeps the position of every key and value.

The document becomes plain Python data (dict, list, str, int, float, bool, None) plus two maps
from a path (a tuple of keys and indexes) to the 1-based line and column of the key and of the
value, so that every later diagnostic can point at the exact place a user wrote.

YAML 1.2 rules apply (no yes/no booleans), and timestamps stay strings: `2024-01-01` means the
text the user wrote, not a date object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow import codes
from nbflow.diagnostics import Diagnostic, Location, error

YamlPath = tuple[str | int, ...]


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

    def _end(self, line: int, col: int, key: bool) -> int | None:
        """The column just past the token at (line, col), for underlining."""
        lines = self.text.splitlines()
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
    from ruamel.yaml.constructor import RoundTripConstructor

    class _Constructor(RoundTripConstructor):
        """Round-trip constructor that keeps timestamps as the strings the user wrote."""

    _Constructor.add_constructor(
        "tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str
    )
    y = YAML(typ="rt", pure=True)
    y.Constructor = _Constructor
    y.allow_duplicate_keys = False
    return y


def load_text(text: str, path: str) -> YamlDoc:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        raw = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlLoadError(
            error(codes.MANIFEST_NOT_FOUND, f"manifest not found: {shown}", Location(shown))
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlLoadError(
            error(codes.MANIFEST_NOT_FOUND, f"cannot read manifest {shown}: {exc}", Location(shown))
        ) from None
    return load_text(text, shown)


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
    return _scalar(node)


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
