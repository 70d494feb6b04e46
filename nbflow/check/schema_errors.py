"""Turn pydantic's validation errors into positioned diagnostics with useful messages."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from nbflow import codes
from nbflow.diagnostics import Diagnostic, error
from nbflow.load.yaml_positions import YamlDoc, YamlPath

_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def diagnostics_from(exc: ValidationError, doc: YamlDoc, root: type[BaseModel]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple[YamlPath, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        path: YamlPath = tuple(p for p in loc if p != "[key]")
        kind = err["type"]
        dedup = (path, kind)
        if dedup in seen:
            continue
        seen.add(dedup)
        where = _describe(path)
        if kind == "extra_forbidden":
            key = str(path[-1])
            allowed = _allowed_keys(root, path[:-1])
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else (f"valid keys here: {', '.join(sorted(allowed))}" if allowed else None)
            )
            out.append(
                error(
                    codes.UNKNOWN_KEY,
                    f"unknown key `{key}`{_in(path[:-1])}",
                    doc.locate(path, key=True),
                    hint,
                )
            )
        elif kind == "missing":
            out.append(
                error(
                    codes.MISSING_KEY,
                    f"missing required key `{path[-1]}`{_in(path[:-1])}",
                    doc.locate(path[:-1], key=True),
                )
            )
        elif kind in codes.REGISTRY:  # our own PydanticCustomError codes (`manifest._fail`)
            out.append(error(codes.REGISTRY[kind], err["msg"], doc.locate(path, key=is_key)))
        elif kind == "literal_error":
            got = err.get("input")
            out.append(
                error(
                    codes.INVALID_VALUE,
                    f"{where}: `{got}` is not allowed; {err['msg'].replace('Input should be', 'expected')}",
                    doc.locate(path),
                )
            )
        elif kind in (
            "greater_than_equal",
            "less_than_equal",
            "greater_than",
            "less_than",
            "too_short",
        ):
            out.append(
                error(codes.INVALID_VALUE, f"{where}: {err['msg'].lower()}", doc.locate(path))
            )
        else:
            expected = _TYPE_NAMES.get(kind)
            got = err.get("input")
            if expected:
                message = f"{where} must be {expected}, not {_kind_of(got)}"
                if isinstance(got, str | int | float | bool):
                    message += f" `{got}`"
            else:
                message = f"{where}: {err['msg']}"
            out.append(error(codes.WRONG_TYPE, message, doc.locate(path, key=is_key)))
    return out


def _kind_of(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _describe(path: YamlPath) -> str:
    return "`" + ".".join(str(p) for p in path) + "`" if path else "the manifest"


def _in(path: YamlPath) -> str:
    return f" in `{'.'.join(str(p) for p in path)}`" if path else ""


def _allowed_keys(root: type[BaseModel], path: YamlPath) -> list[str]:
    """The keys the model accepts at `path` (a mapping inside the manifest)."""
    current: Any = root
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict and len(args) == 2:
            current = args[1]
        elif origin in (list, tuple) and args:
            current = args[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional/Union down to the model or container type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)] or [
                a for a in members if typing.get_origin(a) in (dict, list, tuple)
            ]
            if not models:
                return tp
            tp = models[0]
            continue
        return tp
