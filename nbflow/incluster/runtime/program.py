"""A step's program (its cells, names and files: what `nbflow.generate` compiles for it) as the
generated step carries it: JSON, zlib-compressed (the setup cells repeat in every step's) and
Base85-encoded, with `{`, `}` and `$` written as `,`, `.` and `/`, so that the command holds no
text a user wrote and neither KFP's placeholders (`{{...}}`) nor Kubernetes' `$(VAR)` expansion
can form in it; YAML quotes it as it is (no `"` or backslash)."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

# Base85's only characters that KFP, Argo or Kubernetes read in a command, and ones it never uses
_SPECIAL, _STAND_INS = "{}$", ",./"


def encode_program(program: dict[str, Any]) -> str:
    """The text a generated step carries for ``program``."""
    text = json.dumps(program, sort_keys=True, separators=(",", ":"))
    data = base64.b85encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    return data.translate(str.maketrans(_SPECIAL, _STAND_INS))


def decode_program(text: str) -> dict[str, Any]:
    """The program :func:`encode_program` encoded."""
    data = base64.b85decode(text.translate(str.maketrans(_STAND_INS, _SPECIAL)))
    program = json.loads(zlib.decompress(data))
    if not isinstance(program, dict):
        raise ValueError("a step's program is a JSON object")
    return program
