"""The local engine's cache: a task's outputs by a key over what decides them.

The key covers what kfp.local's covers: the component (its definitions and its container:
image, command with the step's program, args, env), the task's parameter values, and its input
artifacts, each named by the key of the task that produced it and the output's name. Files a
step reads are already in its program (their SHA-256), so a changed data file is a new key.
Keys chain down the DAG: a step whose upstream would compute something else gets a new key
too, whether or not that upstream was served from the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from nbflow.local.executor_input import Artifact
from nbflow.local.ir import Task


def task_key(task: Task, parameters: dict[str, Any], input_keys: dict[str, str]) -> str:
    """`input_keys`: input artifact -> `<producer key>/<output>`."""
    doc = {
        "component": task.component,
        "container": task.executor,
        "parameters": parameters,
        "inputs": input_keys,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Cache:
    """Entries are JSON files, one per key, written whole (rename) or not at all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, key: str) -> dict[str, Artifact] | None:
        """The outputs stored under `key`, if every one of them is still there."""
        try:
            doc = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            outputs = {k: Artifact.from_json(v) for k, v in doc["outputs"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not all(os.path.exists(a.uri) for a in outputs.values()):
            return None  # the artifacts were deleted: run again
        return outputs

    def put(self, key: str, task: str, outputs: dict[str, Artifact]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"task": task, "outputs": {k: a.to_json() for k, a in outputs.items()}}
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.folder / f"{key}.json")
