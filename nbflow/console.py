"""Whether to colour a stream, decided in one place for every command.

`--color always|never` wins; with `auto` (the default) `NO_COLOR` (set and not empty,
no-color.org) turns colour off, else `FORCE_COLOR` (set, not empty and not `0`) turns it on,
else colour goes only to a terminal whose TERM is not `dumb`. Rich consoles are made here with
the same decision, so a live table and a diagnostic agree.
"""

from __future__ import annotations

import os
from typing import Any, TextIO

__all__ = ["CHOICES", "rich_console", "wants_color"]

CHOICES = ("auto", "always", "never")


def wants_color(stream: TextIO | Any, choice: str | None = "auto") -> bool:
    """Whether text written to `stream` should carry colour."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def rich_console(stream: TextIO | Any, choice: str | None = "auto") -> Any:
    """A rich Console on `stream` that colours exactly when `wants_color` says so."""
    from rich.console import Console

    color = wants_color(stream, choice)
    return Console(
        file=stream,
        no_color=not color,
        color_system="standard" if color else None,
        force_terminal=color or None,
        highlight=False,
    )
