"""The plan: which variables flow between which steps, and the pipeline's DAG, as the later
stages read it (generation, local runs, `nbflow graph`). It is made, with the diagnostics of the
notebook's data flow, by :func:`nbflow.dataflow.planner.make_plan`, whose docstring states the
rules.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Edge", "Plan", "StepPlan"]


@dataclass(frozen=True)
class StepPlan:
    name: str
    cells: tuple[int, ...]  # its code cells, in notebook order
    inputs: tuple[tuple[str, str], ...] = ()  # (variable, from step), sorted
    outputs: tuple[str, ...] = ()  # what later steps read from it, and its metrics; sorted
    parameters: tuple[str, ...] = ()  # the parameters it reads, in the manifest's order
    metrics: tuple[str, ...] = ()  # the metrics whose final value it computes, sorted
    upstream: tuple[str, ...] = ()  # steps it waits for (data and `after`), in plan order
    imports: tuple[str, ...] = ()  # import statements of other steps' cells it relies on


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    variables: tuple[str, ...]  # sorted; empty when the edge is only an `after`
    after_only: bool


@dataclass(frozen=True)
class Plan:
    steps: tuple[StepPlan, ...]  # in topological order
    edges: tuple[Edge, ...]  # sorted by the plan order of (src, dst)
    setup: tuple[int, ...] = ()
    parameters_cell: int | None = None

    def step(self, name: str) -> StepPlan:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)
