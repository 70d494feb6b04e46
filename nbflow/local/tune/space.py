"""The search space: the manifest's `tuning.search`, resolved against the parameters' types.

Search spaces: an int parameter is `suggest_int(min, max, step, log)`, a float one
`suggest_float(min, max, step, log)`, `values` is `suggest_categorical`. Optuna has no normal
prior: `distribution: normal|logNormal` is sampled uniformly (log-uniformly), with a note.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbflow.errors import UsageError

if TYPE_CHECKING:
    from nbflow.check.manifest import Tuning
    from nbflow.check.project import Project


@dataclass(frozen=True)
class Dimension:
    """One searched parameter, resolved: `values` for a categorical one, else a numeric range."""

    name: str
    kind: str  # int, float, categorical
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    def grid(self) -> list[Any]:
        """Every value of a finite dimension (what Katib's grid enumerates)."""
        if self.kind == "categorical":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise UsageError(f"grid search needs a `step` for the float parameter `{self.name}`")
        low, step = decimal.Decimal(str(self.low)), decimal.Decimal(str(self.step))
        count = int((decimal.Decimal(str(self.high)) - low) // step) + 1
        return [float(low + i * step) for i in range(count)]

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def tuning_block(project: Project) -> Tuning:
    tuning = project.manifest.tuning
    if tuning is None:
        raise UsageError(f"{project.manifest_path} has no `tuning` block: nothing to tune")
    return tuning


def dimensions(project: Project, notes: list[str]) -> list[Dimension]:
    tuning = tuning_block(project)
    types = {p.name: p.type for p in project.parameters}
    grid = tuning.algorithm == "grid"
    out: list[Dimension] = []
    for name, space in tuning.search.items():
        if space.values is not None:
            out.append(Dimension(name, "categorical", values=tuple(space.values)))
            continue
        assert space.min is not None and space.max is not None
        kind = "int" if types.get(name) == "int" else "float"
        log = space.log or space.distribution in ("logUniform", "logNormal")
        if space.distribution in ("normal", "logNormal"):
            notes.append(
                f"`{name}`: Optuna has no {space.distribution} prior; "
                f"sampled {'log-' if log else ''}uniformly in [{space.min}, {space.max}]"
            )
        step = space.step
        if grid:
            log = False  # the grid enumerates min, min+step, ..., max: the scale plays no part
        elif log and step is not None and (kind == "float" or step != 1):
            raise UsageError(
                f"`{name}` has both `log` and `step`: Optuna cannot sample a log scale in steps; "
                "drop one of them to tune locally"
            )
        low, high = space.min, space.max
        if step is not None:
            # the last point of the range, so that Optuna need not adjust (and warn)
            d_low, d_step = decimal.Decimal(str(low)), decimal.Decimal(str(step))
            last = (decimal.Decimal(str(high)) - d_low) // d_step * d_step + d_low
            high = int(last) if kind == "int" else float(last)
        if kind == "int":
            out.append(Dimension(name, "int", int(low), int(high), int(step or 1), log))
        else:
            out.append(
                Dimension(
                    name, "float", float(low), float(high), float(step) if step else None, log
                )
            )
    return out
