"""Small helpers the runtime's modules share: how a value's type is named in a message, a
short repr, whether a library is importable (without importing it).
"""

from __future__ import annotations

import importlib.util
import sys


def type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def short_type_name(value: object) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else type_name(value)


def importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def short_repr(value: object, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        return "(unprintable)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
