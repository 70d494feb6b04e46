"""KFP's ExecutorInput for one task, built from the IR and its upstream tasks' outputs, and the
ExecutorOutput a task leaves: the documented contract between KFP's orchestrator and a
component's executor (pipeline_spec.proto), the same document a cluster's launcher passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.local.ir import Task

OUTPUT_FILE = "executor_output.json"


@dataclass(frozen=True)
class Artifact:
    """One output artifact of a finished task: where it is and what the executor said of it."""

    name: str
    type: dict[str, str]
    uri: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "uri": self.uri, "metadata": self.metadata}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Artifact:
        return cls(d["name"], dict(d["type"]), d["uri"], dict(d.get("metadata") or {}))


def parameter_values(task: Task, pipeline_values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (kind, ref) in task.parameters.items():
        out[key] = pipeline_values[ref] if kind == "pipeline" else ref
    return out


def build(
    task: Task,
    parameters: dict[str, Any],
    inputs: dict[str, Artifact],
    task_root: Path,
) -> dict[str, Any]:
    """The ExecutorInput: parameter values, input artifacts (the upstream outputs, metadata
    included) and a fresh uri for each output artifact under `task_root`."""
    return {
        "inputs": {
            "parameterValues": parameters,
            "artifacts": {k: {"artifacts": [a.to_json()]} for k, a in sorted(inputs.items())},
        },
        "outputs": {
            "artifacts": {
                key: {
                    "artifacts": [
                        {"name": key, "type": type_, "uri": str(task_root / key), "metadata": {}}
                    ]
                }
                for key, type_ in sorted(task.outputs.items())
            },
            "outputFile": str(task_root / OUTPUT_FILE),
        },
    }


def read_outputs(task: Task, executor_input: dict[str, Any]) -> dict[str, Artifact]:
    """The task's output artifacts, with the metadata its executor wrote (metrics' values)."""
    planned = executor_input["outputs"]["artifacts"]
    out = {k: Artifact.from_json(v["artifacts"][0]) for k, v in planned.items()}
    try:
        written = json.loads(Path(executor_input["outputs"]["outputFile"]).read_text("utf-8"))
    except (OSError, ValueError):
        return out
    for key, entry in (written.get("artifacts") or {}).items():
        arts = entry.get("artifacts") or []
        if key in out and arts:
            out[key] = Artifact(
                key, out[key].type, out[key].uri, dict(arts[0].get("metadata") or {})
            )
    return out
