"""Feeds a resolved Project to the data-flow plan (nbflow.dataflow.plan) with manifest positions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbflow.diagnostics import Diagnostic

if TYPE_CHECKING:
    from nbflow.check.project import Project
    from nbflow.dataflow.plan import Plan


def plan_project(project: Project) -> tuple[Plan, list[Diagnostic]]:
    from nbflow.dataflow.plan import StepInput, make_plan

    doc = project.doc
    nb = project.notebook
    cells = {c.number: c.source for c in nb.code_cells}
    steps = [
        StepInput(
            name=s.name,
            cells=s.cells,
            after=tuple(s.spec.after),
            location=doc.locate(("steps", s.name), key=True),
            after_locations=tuple(
                doc.locate(("steps", s.name, "after", i)) for i in range(len(s.spec.after))
            ),
        )
        for s in project.steps
    ]
    return make_plan(
        cells=cells,
        setup=project.setup,
        steps=steps,
        parameters=[p.name for p in project.parameters],
        parameters_cell=project.parameters_cell,
        metrics=list(project.manifest.metrics),
        manifest_path=doc.path,
        notebook_path=nb.path,
        parameter_locations={
            p: doc.locate(("parameters", p), key=True) for p in project.manifest.parameters
        },
        metric_locations={
            m: doc.locate(("metrics", m), key=True) for m in project.manifest.metrics
        },
        setup_location=doc.locate(("setup",), key=True),
    )
