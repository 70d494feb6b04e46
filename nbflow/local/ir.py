"""The compiled pipeline IR as the local engine reads it: tasks, their wiring and their order.

The engine runs the same IR a cluster gets; this module turns its root DAG into plain data and
refuses, with a message, what the local engine does not run (nested DAGs, loops, conditions),
rather than running a pipeline differently from KFP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.errors import CommandFailed


class IRError(CommandFailed):
    """The IR holds something the local engine cannot run."""


@dataclass(frozen=True)
class ArtifactInput:
    producer: str  # task name
    key: str  # the producer's output artifact


@dataclass(frozen=True)
class Task:
    name: str
    component: dict[str, Any]  # the component's IR (input and output definitions)
    executor: dict[str, Any]  # deploymentSpec's container: image, command, args, env
    parameters: dict[str, Any]  # input name -> ("pipeline", name) or ("constant", value)
    artifacts: dict[str, ArtifactInput]
    upstream: tuple[str, ...]
    cache: bool
    retries: int
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> artifactType

    def depends_on(self) -> set[str]:
        return set(self.upstream) | {a.producer for a in self.artifacts.values()}


@dataclass(frozen=True)
class Pipeline:
    name: str
    defaults: dict[str, Any]  # pipeline parameter -> default value
    tasks: list[Task]  # in an order where every task follows its upstream


def load_ir(path: Path) -> Pipeline:
    """Read a compiled pipeline.yaml (libyaml's loader where there is one)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader) if d]
    return pipeline_from_ir(docs[0])


def pipeline_from_ir(ir: dict[str, Any]) -> Pipeline:
    root = ir["root"]
    defaults = {
        name: spec.get("defaultValue")
        for name, spec in root.get("inputDefinitions", {}).get("parameters", {}).items()
    }
    executors = ir["deploymentSpec"]["executors"]
    tasks: dict[str, Task] = {}
    for name, t in root["dag"]["tasks"].items():
        if "iteratorPolicy" in t or "triggerPolicy" in t or "parameterIterator" in t:
            raise IRError(f"task `{name}`: loops and conditions are not run by the local engine")
        comp = ir["components"][t["componentRef"]["name"]]
        if "dag" in comp:
            raise IRError(f"task `{name}`: nested pipelines are not run by the local engine")
        params: dict[str, Any] = {}
        for key, src in t.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in src:
                params[key] = ("pipeline", src["componentInputParameter"])
            elif "runtimeValue" in src:
                params[key] = ("constant", src["runtimeValue"].get("constant"))
            else:
                raise IRError(f"task `{name}`: input `{key}` is wired in a way not run here")
        arts = {
            key: ArtifactInput(
                src["taskOutputArtifact"]["producerTask"],
                src["taskOutputArtifact"]["outputArtifactKey"],
            )
            for key, src in t.get("inputs", {}).get("artifacts", {}).items()
        }
        outputs = {
            key: spec["artifactType"]
            for key, spec in comp.get("outputDefinitions", {}).get("artifacts", {}).items()
        }
        tasks[name] = Task(
            name=name,
            component=comp,
            executor=executors[comp["executorLabel"]]["container"],
            parameters=params,
            artifacts=arts,
            upstream=tuple(t.get("dependentTasks", [])),
            # the proto's default: a task the compiler did not mark `enableCache: true` (caching
            # turned off, `cachingOptions: {}`) is not cached
            cache=bool(t.get("cachingOptions", {}).get("enableCache", False)),
            retries=int(t.get("retryPolicy", {}).get("maxRetryCount", 0)),
            outputs=outputs,
        )
    return Pipeline(ir["pipelineInfo"]["name"], defaults, _ordered(tasks))


def _ordered(tasks: dict[str, Task]) -> list[Task]:
    """Kahn's order, ties by name: the same order on every run."""
    waiting = {n: t.depends_on() for n, t in tasks.items()}
    for n, deps in waiting.items():
        unknown = deps - set(tasks)
        if unknown:
            raise IRError(f"task `{n}` depends on unknown tasks: {', '.join(sorted(unknown))}")
    out: list[Task] = []
    while waiting:
        ready = sorted(n for n, deps in waiting.items() if not deps)
        if not ready:
            raise IRError(f"the tasks {', '.join(sorted(waiting))} depend on each other")
        for n in ready:
            out.append(tasks[n])
            del waiting[n]
        for deps in waiting.values():
            deps.difference_update(ready)
    return out
