"""The resolved project: a validated manifest with its notebook, cells resolved to numbers.

Later stages (generation, runs, tuning, deploys) take a `Project`, never raw YAML. A Project is
made once, by `nbflow.check.validate`, after the data-flow analysis: it always has its plan,
and nothing changes it afterwards.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.check.manifest import Manifest, Resources, Step, Volume
from nbflow.load.notebook import Notebook
from nbflow.load.yaml_positions import YamlDoc

if TYPE_CHECKING:
    from nbflow.dataflow.plan import Plan


@dataclass(frozen=True)
class StepConfig:
    name: str
    cells: tuple[int, ...]  # code cells only, notebook order
    spec: Step
    image: str
    requirements: tuple[str, ...]
    resources: Resources | None
    env: dict[str, str]
    volumes: tuple[Volume, ...]


@dataclass(frozen=True)
class ParameterConfig:
    name: str
    type: str
    default: Any
    description: str | None


@dataclass(frozen=True)
class Project:
    manifest_path: Path
    root: Path  # the manifest's folder
    manifest: Manifest
    doc: YamlDoc
    notebook: Notebook
    setup: tuple[int, ...]
    skip: tuple[int, ...]
    parameters_cell: int | None
    steps: tuple[StepConfig, ...]
    parameters: tuple[ParameterConfig, ...]
    requirements: tuple[str, ...]
    plan: Plan  # the data flow between the steps, made before the Project
    # every file a build reads (the manifest, its notebook, its requirements file and lock file
    # when it has them), as the manifest names them: what a snapshot must find committed
    inputs: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def notebook_dir(self) -> Path:
        """The notebook's folder: where Jupyter runs it, so where relative paths start."""
        return (self.root / self.manifest.notebook).parent

    def step(self, name: str) -> StepConfig:
        return self._steps_by_name[name]

    @functools.cached_property
    def _steps_by_name(self) -> dict[str, StepConfig]:
        # generation asks for each step by name: a scan each time is N^2 at 5,000 steps
        return {s.name: s for s in self.steps}

    def source(self, cell: int) -> str:
        c = self.notebook.cell(cell)
        return c.source if c else ""
