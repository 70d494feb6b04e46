"""Kubernetes quantities (`500m`, `4Gi`, `1e3`) and durations (`90s`, `30m`, `1h30m`)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

# The grammar of k8s.io/apimachinery/pkg/api/resource: a signed decimal number, then a binary
# suffix (Ki..Ei), a decimal suffix (n, u, m, k, M, G, T, P, E) or a decimal exponent (e3, E-2).
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(\d+(\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": "1e-9",
    "u": "1e-6",
    "m": "1e-3",
    "k": "1e3",
    "M": "1e6",
    "G": "1e9",
    "T": "1e12",
    "P": "1e15",
    "E": "1e18",
}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def is_quantity(text: str) -> bool:
    return quantity_value(text) is not None and not text.startswith("-")


def quantity_value(text: str) -> Decimal | None:
    """The quantity as a number of base units, or None when it is not a quantity."""
    m = _QUANTITY.fullmatch(text)
    if not m:
        return None
    try:
        num = Decimal(m.group("num"))
    except InvalidOperation:
        return None
    suffix = m.group("suffix") or ""
    if suffix in _BINARY:
        return num * _BINARY[suffix]
    if suffix in _DECIMAL:
        return num * Decimal(_DECIMAL[suffix])
    if suffix:
        exponent = int(suffix[1:]) if len(suffix) <= 6 else None
        if exponent is None or abs(exponent) > 999:  # Kubernetes itself stops at 10^±18
            return None
        return num * Decimal(10) ** exponent
    return num


def duration_seconds(value: Any) -> int | None:
    """Seconds in `value` (an int of seconds or a string like `1h30m`), None if not a duration."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value:
        return None
    m = _DURATION.fullmatch(value.strip())
    if not m or not any(m.groups()) or any(g and len(g) > 12 for g in m.groups()):
        return None  # past 12 digits, no duration anyone means (and int() of 5,000 refuses)
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s
