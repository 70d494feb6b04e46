"""Structured events of a step, one JSON line each, for nbflow's local engine."""

from __future__ import annotations

import contextlib
import json
import os
import time


def emit_event(kind: str, **fields: object) -> None:
    """Append one JSON line to the file named by `NBFLOW_EVENTS`, if set: the structured events
    (`started`, `cell`, `failed`, `finished`) that nbflow's local engine reads instead of the
    step's log text. Nothing is written on a cluster, where the variable is not set."""
    path = os.environ.get("NBFLOW_EVENTS")
    if not path:
        return
    line = json.dumps({"event": kind, "time": time.time(), **fields}, default=str)
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
