"""What changes between two builds of a pipeline (a pull request's and its base branch's): steps,
parameters with their defaults, images, resources, retries, caching and what each step waits
for, read from the compiled KFP IR (`pipeline.yaml`) of each.

`nbflow diff --base DIR` compares a fresh build of each project with the build of the same
pipeline under DIR (a base branch's `nbflow build --out DIR`); the validate action puts the
result in the pull request's summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BuildChange", "compare", "facts", "find_build"]


@dataclass(frozen=True)
class BuildChange:
    kind: str  # step, parameter
    name: str
    what: str  # added, removed, or the changed field
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "what": self.what, "old": self.old,
                "new": self.new}  # fmt: skip


def facts(ir_text: str) -> dict[str, Any]:
    """{"parameters": {name: default}, "steps": {step: {field: value}}} of a compiled IR."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(ir_text, Loader=loader) if d is not None]
    spec = docs[0]
    platform = (docs[1] if len(docs) > 1 else {}).get("platforms", {}).get("kubernetes", {})
    executors = platform.get("deploymentSpec", {}).get("executors", {})
    root = spec.get("root", {})
    parameters = {
        name: p.get("defaultValue")
        for name, p in root.get("inputDefinitions", {}).get("parameters", {}).items()
    }
    # the steps' tasks only: the task that carries the step runtime is no step of the user's
    tasks = {
        key: t for key, t in root.get("dag", {}).get("tasks", {}).items() if key.startswith("step-")
    }
    names = {key: t.get("taskInfo", {}).get("name", key) for key, t in tasks.items()}
    steps: dict[str, dict[str, Any]] = {}
    for key, task in tasks.items():
        component = spec.get("components", {}).get(task.get("componentRef", {}).get("name"), {})
        label = component.get("executorLabel", "")
        container = spec.get("deploymentSpec", {}).get("executors", {}).get(label, {})
        container = container.get("container", {})
        steps[names[key]] = {
            "image": container.get("image"),
            "resources": container.get("resources"),
            "after": sorted(names[d] for d in task.get("dependentTasks", []) if d in names),
            "retries": task.get("retryPolicy", {}).get("maxRetryCount", 0),
            "cache": task.get("cachingOptions", {}).get("enableCache", False),
            "kubernetes": executors.get(label),
        }
    return {"parameters": parameters, "steps": steps}


def _fields(kind: str, name: str, old: dict[str, Any], new: dict[str, Any]) -> list[BuildChange]:
    out = []
    for field in sorted(set(old) | set(new)):
        if json.dumps(old.get(field), sort_keys=True) != json.dumps(new.get(field), sort_keys=True):
            out.append(BuildChange(kind, name, field, old.get(field), new.get(field)))
    return out


def compare(base: dict[str, Any] | None, head: dict[str, Any] | None) -> list[BuildChange]:
    """The changes from `base` to `head` (facts of each; None for a pipeline that is new or
    gone), parameters first, then steps in name order."""
    base = base or {"parameters": {}, "steps": {}}
    head = head or {"parameters": {}, "steps": {}}
    out: list[BuildChange] = []
    bp, hp = base["parameters"], head["parameters"]
    for name in sorted(set(bp) | set(hp)):
        if name not in bp:
            out.append(BuildChange("parameter", name, "added", None, hp[name]))
        elif name not in hp:
            out.append(BuildChange("parameter", name, "removed", bp[name], None))
        elif bp[name] != hp[name]:
            out.append(BuildChange("parameter", name, "default", bp[name], hp[name]))
    bs, hs = base["steps"], head["steps"]
    for name in sorted(set(bs) | set(hs)):
        if name not in bs:
            out.append(BuildChange("step", name, "added"))
        elif name not in hs:
            out.append(BuildChange("step", name, "removed"))
        else:
            out += _fields("step", name, bs[name], hs[name])
    return out


def find_build(folder: Path, pipeline: str) -> Path | None:
    """The pipeline.yaml of `pipeline` under a build output folder (`<out>/<pipeline>/<v>/`)."""
    found = sorted((folder / pipeline).glob("*/pipeline.yaml"))
    return found[-1] if found else None
