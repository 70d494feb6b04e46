"""The `name=value` metric lines: read from a step's log, printed for Katib's StdOut collector."""

from __future__ import annotations

import re
from collections.abc import Iterable

_METRIC_LINE = re.compile(r"^\s*([^\s=]+)\s*=\s*(\S+)\s*$")


def parse_metric_lines(lines: Iterable[str], names: Iterable[str]) -> dict[str, str]:
    """The last value printed as `name=value` for each of `names` (values as written)."""
    wanted = set(names)
    found: dict[str, str] = {}
    for line in lines:
        match = _METRIC_LINE.match(line)
        if match and match.group(1) in wanted:
            found[match.group(1)] = match.group(2)
    return found


def format_metric(value: float) -> str:
    """Katib parses the value as a float: print the shortest exact form."""
    return repr(float(value))
