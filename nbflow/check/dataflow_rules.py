"""Feeds a resolved manifest and notebook to the data-flow plan (nbflow.dataflow.planner), with
the manifest's positions for its diagnostics. The Project is made from the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbflow.diagnostics import Diagnostic

if TYPE_CHECKING:
    from nbflow.check.manifest import Manifest
    from nbflow.check.project import ParameterConfig, Project, StepConfig
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
            after_locations=tuple(
                doc.locate(("steps", s.name, "after", i)) for i in range(len(s.spec.after))
            ),
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


def file_rules(project: Project) -> list[Diagnostic]:
    """NBF708 for cells that install packages, NBF709 for each relative path a step names."""
    from nbflow import codes
    from nbflow.dataflow.files import install_lines, literal_paths
    from nbflow.diagnostics import Location, warning

    nb = project.notebook
    owners = {c: "setup" for c in project.setup}
    for s in project.steps:
        owners.update(dict.fromkeys(s.cells, f"step `{s.name}`"))
    out: list[Diagnostic] = []
    for number, owner in sorted(owners.items()):
        source = project.source(number)
        for line, text in install_lines(source):
            out.append(
                warning(
                    codes.PACKAGE_INSTALL_IN_CELL,
                    f"cell {number} ({owner}) installs packages (`{text}`): steps skip this "
                    "line, locally and on the cluster, and say so in their log",
                    Location(file=nb.path, cell=number, cell_line=line),
                    "list the packages in the manifest's `requirements:`, which each step's "
                    "image gets (and install them yourself for `nbflow run`)",
                )
            )
        for use in literal_paths(source):
            verb = "writes" if use.writes else "reads"
            exists = (project.notebook_dir / use.path).exists()
            if use.writes:
                fate = "on a cluster it stays in the step's pod, where no other step sees it"
            elif exists:
                fate = (
                    "`nbflow run` runs the step in the notebook's folder and re-runs it when the "
                    "file changes, but on a cluster the step runs in its image's working "
                    "directory, where the file will not be"
                )
            else:
                fate = "it is not beside the notebook, and on a cluster it will not be there either"
            out.append(
                warning(
                    codes.RELATIVE_PATH,
                    f"cell {number} ({owner}) {verb} `{use.path}`, a path relative to the "
                    f"notebook's folder: {fate}",
                    Location(file=nb.path, cell=number, cell_line=use.line),
                    "put the file on a volume (`volumes:`) and use its absolute path, put it in "
                    "the step's image, or read it from a URL; pass values between steps as "
                    "variables",
                )
            )
    return out
