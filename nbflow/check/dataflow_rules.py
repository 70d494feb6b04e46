"""Feeds a resolved manifest and notebook to the data-flow plan (nbflow.dataflow.planner), with
the manifest's positions for its diagnostics. The Project is made from the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbflow.diagnostics import Diagnostic

if TYPE_CHECKING:
    from nbflow.check.manifest import Manifest
    from nbflow.check.project import ParameterConfig, StepConfig
    from nbflow.dataflow.plan import Plan
    from nbflow.load.notebook import Notebook
    from nbflow.load.yaml_positions import YamlDoc


def plan_project(
    manifest: Manifest,
    doc: YamlDoc,
    nb: Notebook,
    *,
    setup: tuple[int, ...],
    steps: tuple[StepConfig, ...],
    parameters: tuple[ParameterConfig, ...],
    parameters_cell: int | None,
) -> tuple[Plan, list[Diagnostic]]:
    from nbflow.dataflow.planner import StepInput, make_plan

    cells = {c.number: c.source for c in nb.code_cells}
    inputs = [
        StepInput(
            name=s.name,
            cells=s.cells,
            after=tuple(s.spec.after),
            location=doc.locate(("steps", s.name), key=True),
        )
        for s in steps
    ]
    return make_plan(
        cells=cells,
        setup=setup,
        steps=inputs,
        parameters=[p.name for p in parameters],
        parameters_cell=parameters_cell,
        metrics=list(manifest.metrics),
        manifest_path=doc.path,
        notebook_path=nb.path,
        parameter_locations={
            p: doc.locate(("parameters", p), key=True) for p in manifest.parameters
        },
        metric_locations={m: doc.locate(("metrics", m), key=True) for m in manifest.metrics},
        setup_location=doc.locate(("setup",), key=True),
    )
