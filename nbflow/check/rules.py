"""Structural rules of the manifest against its notebook (no code analysis here).

Each check takes the frozen manifest, the notebook and the YAML positions, and returns
diagnostics; `resolve` also returns the resolved cell numbers for the project.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from nbflow import codes
from nbflow.check.manifest import Manifest, Resources, fits, infer_type, not_json
from nbflow.check.quantities import quantity_value
from nbflow.codes import Code
from nbflow.diagnostics import Diagnostic, Location, error, warning
from nbflow.load.notebook import Notebook, cell_ranges
from nbflow.load.yaml_positions import YamlDoc, YamlPath

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")
EXPERIMENT_NAME_MAX = 40
CONTENT_HASH_LEN = 8  # the experiment name is `<pipeline>-<hash>`

# Settings each Katib suggestion service accepts (Katib v0.19), checked here because Katib only
# checks them when the suggestion service starts, after the Experiment was accepted.
ALGORITHM_SETTINGS: dict[str, dict[str, str]] = {
    "random": {"random_state": "int"},
    "grid": {"random_state": "int"},
    "tpe": {
        "n_ei_candidates": "int",
        "random_state": "int",
        "gamma": "float",
        "prior_weight": "float",
    },
    "multivariate-tpe": {
        "n_startup_trials": "int",
        "n_ei_candidates": "int",
        "random_state": "int",
    },
    "bayesianoptimization": {
        "base_estimator": "GP|RF|ET|GBRT",
        "n_initial_points": "int",
        "acq_func": "gp_hedge|LCB|EI|PI",
        "acq_optimizer": "auto|sampling|lbfgs",
        "random_state": "int",
    },
    "cmaes": {"random_state": "int", "sigma": "float", "restart_strategy": "none|ipop|bipop"},
    "sobol": {},
    "hyperband": {"r_l": "int", "resource_name": "str", "eta": "float"},
}
ALGORITHM_REQUIRED: dict[str, tuple[str, ...]] = {"hyperband": ("r_l", "resource_name")}


@dataclass
class Resolved:
    setup: tuple[int, ...] = ()
    skip: tuple[int, ...] = ()
    parameters_cell: int | None = None
    steps: dict[str, tuple[int, ...]] | None = None
    parameter_values: dict[str, Any] | None = None


MAX_GRID = 1_000_000  # grid points: each is a trial, and `nbflow tune` lists them all
MAX_STEPS = 10**12  # steps in one range: past that a step only breaks decimal arithmetic


def _points(low: float, high: float, step: float) -> float:
    """How many points min, min+step, ... <= max holds; inf when the arithmetic overflows."""
    try:
        return math.floor((high - low) / step + 1e-9) + 1
    except (OverflowError, ValueError):  # inf or nan from an overflowing span
        return math.inf


class Checker:
    """Runs every structural rule and collects all diagnostics in one pass."""

    def __init__(self, manifest: Manifest, nb: Notebook, doc: YamlDoc) -> None:
        self.m = manifest
        self.nb = nb
        self.doc = doc
        self.diags: list[Diagnostic] = []
        self.resolved = Resolved()

    def at(self, path: YamlPath, key: bool = False) -> Location:
        return self.doc.locate(path, key=key)

    def cell_at(self, number: int, line: int | None = None) -> Location:
        return Location(self.nb.path, cell=number, cell_line=line)

    def found(self, *which: Code) -> bool:
        """Whether any of these codes was reported already (later rules then keep quiet)."""
        ids = {c.id for c in which}
        return any(d.code in ids for d in self.diags)

    # -- cells -------------------------------------------------------------------------------

    def cells(self, spec: tuple[int | str, ...], path: YamlPath) -> list[int]:
        raw = self.doc.data
        for p in path:
            raw = raw.get(p) if isinstance(raw, dict) else None
        listed = isinstance(raw, list)
        out: list[int] = []
        n = len(self.nb.cells)
        for i, item in enumerate(spec):
            ipath = (*path, i) if listed else path
            if isinstance(item, str) and item.strip().startswith("id:"):
                cid = item.strip()[3:]
                cell = self.nb.by_id(cid)
                if cell is None:
                    hint = None
                    if self.nb.nbformat_minor < 5:
                        hint = f"this notebook is nbformat 4.{self.nb.nbformat_minor}, whose cells have no ids"
                    else:
                        ids = [c.id for c in self.nb.cells if c.id]
                        close = difflib.get_close_matches(cid, ids, n=1)
                        hint = (
                            f"did you mean `id:{close[0]}`?"
                            if close
                            else "`nbflow cells` lists the ids"
                        )
                    self.diags.append(
                        error(
                            codes.CELL_ID_NOT_FOUND,
                            f"no cell with id `{cid}` in {self.nb.path}",
                            self.at(ipath),
                            hint,
                        )
                    )
                    continue
                out.append(cell.number)
                continue
            if isinstance(item, str) and item.strip().startswith("tag:"):
                tag = item.strip()[4:]
                tagged = [c.number for c in self.nb.cells if tag in c.tags]
                if not tagged:
                    tags = sorted({t for c in self.nb.cells for t in c.tags})
                    close = difflib.get_close_matches(tag, tags, n=1)
                    self.diags.append(
                        error(
                            codes.CELL_ID_NOT_FOUND,
                            f"no cell of {self.nb.path} is tagged `{tag}`",
                            self.at(ipath),
                            f"did you mean `tag:{close[0]}`?"
                            if close
                            else "tag the cells in Jupyter (View > Cell toolbar > Tags, or the "
                            "property inspector)",
                        )
                    )
                out.extend(tagged)
                continue
            if isinstance(item, int):
                lo = hi = item
                last = str(item)
            else:
                m = _RANGE.fullmatch(item)
                if not m:
                    self.diags.append(
                        error(
                            codes.BAD_CELL_RANGE,
                            f"`{item}` is not a cell number, a range like `4-7`, `id:<cell id>` "
                            "or `tag:<cell tag>`",
                            self.at(ipath),
                        )
                    )
                    continue
                # past nine digits a number is no cell of any notebook (and int() of thousands
                # of digits is refused): one past the last cell says so below
                last = (m.group(2) or m.group(1)).lstrip("0") or "0"
                lo, hi = (
                    int(g.lstrip("0") or "0") if len(g.lstrip("0")) <= 9 else n + 1
                    for g in (m.group(1), m.group(2) or m.group(1))
                )
            if lo > hi or lo < 1:
                self.diags.append(
                    error(
                        codes.BAD_CELL_RANGE,
                        f"range `{item}` is empty: cells are numbered from 1 and ranges go up",
                        self.at(ipath),
                    )
                )
                continue
            if hi > n:
                self.diags.append(
                    error(
                        codes.CELL_OUT_OF_RANGE,
                        f"cell {last if len(last) <= 12 else last[:9] + '...'} does not exist: "
                        f"{self.nb.path} has {n} cells",
                        self.at(ipath),
                        hint="`nbflow cells " + self.nb.path + "` lists them with their numbers",
                    )
                )
                continue
            out.extend(range(lo, hi + 1))
        return out

    def ownership(self) -> None:
        m = self.m
        owner: dict[int, tuple[str, Location]] = {}

        def own(cells: list[int], who: str, path: YamlPath) -> tuple[int, ...]:
            kept = []
            for c in cells:
                if c in owner:
                    first, first_loc = owner[c]
                    if first == who:
                        continue  # listed twice in one place: harmless
                    self.diags.append(
                        error(
                            codes.CELL_OWNED_TWICE,
                            f"cell {c} belongs to {first} and to {who}",
                            self.at(path),
                            hint="a cell may be in one step, setup, skip or the parameters cell",
                            related=(first_loc,),
                        )
                    )
                    continue
                owner[c] = (who, self.at(path))
                kept.append(c)
            return tuple(kept)

        pcell = self.resolved.parameters_cell = self._find_parameters_cell()
        if pcell is not None:
            own([pcell], "the parameters cell", ("parametersCell",))
        self.resolved.setup = own(self.cells(m.setup, ("setup",)), "setup", ("setup",))
        self.resolved.skip = own(self.cells(m.skip, ("skip",)), "skip", ("skip",))
        steps: dict[str, tuple[int, ...]] = {}
        for name, step in m.steps.items():
            cells = own(
                self.cells(step.cells, ("steps", name, "cells")),
                f"step `{name}`",
                ("steps", name, "cells"),
            )
            code = tuple(c for c in sorted(cells) if self.nb.cells[c - 1].type == "code")
            steps[name] = code
            if cells and not code:
                self.diags.append(
                    error(
                        codes.EMPTY_STEP,
                        f"step `{name}` has no code cells",
                        self.at(("steps", name, "cells")),
                    )
                )
        self.resolved.steps = steps
        for cell in (self.nb.cell(c) for c in self.resolved.setup):
            if cell is not None and cell.type != "code":
                self.diags.append(
                    warning(
                        codes.NOT_A_CODE_CELL,
                        f"setup lists cell {cell.number}, a {cell.type} cell",
                        self.at(("setup",)),
                    )
                )
        if self.found(codes.BAD_CELL_RANGE, codes.CELL_OUT_OF_RANGE, codes.CELL_ID_NOT_FOUND):
            return  # cells could not all be resolved: "forgotten" would be noise
        forgotten = [
            cell
            for cell in self.nb.code_cells
            if cell.number not in owner and cell.source.strip() and "parameters" not in cell.tags
        ]
        anchor = self.at(("skip",) if m.skip else ("steps",), key=True)
        if len(forgotten) == 1:
            (cell,) = forgotten
            self.diags.append(
                warning(
                    codes.FORGOTTEN_CELL,
                    f"code cell {cell.number} is in no step, setup or skip: `{_short(cell.first_line)}`",
                    anchor,
                    hint=f"add {cell.number} to a step's cells, or to `skip` if it is not part of the pipeline",
                    related=(self.cell_at(cell.number, 1),),
                )
            )
        elif forgotten:
            # one diagnostic for all of them: a manifest that covers part of a notebook would
            # otherwise print one for each of a hundred cells
            ranges = cell_ranges([c.number for c in forgotten])
            self.diags.append(
                warning(
                    codes.FORGOTTEN_CELL,
                    f"{len(forgotten)} code cells are in no step, setup or skip: cells {ranges}",
                    anchor,
                    hint="add them to steps' cells, or to `skip` if they are not part of the "
                    f"pipeline (`skip: [{ranges}]`); `nbflow cells` lists them",
                    related=tuple(self.cell_at(c.number, 1) for c in forgotten[:3]),
                )
            )

    # -- parameters ----------------------------------------------------------------------------

    def _find_parameters_cell(self) -> int | None:
        """The parameters cell: `parametersCell`, else the one cell tagged `parameters`."""
        pc = self.m.parametersCell
        number: int | None = None
        if pc is not None:
            found = self.cells((pc,), ("parametersCell",))
            number = found[0] if len(found) == 1 else None
            if number is not None and self.nb.cells[number - 1].type != "code":
                self.diags.append(
                    error(
                        codes.NOT_A_CODE_CELL,
                        f"parametersCell {number} is a {self.nb.cells[number - 1].type} cell",
                        self.at(("parametersCell",)),
                    )
                )
                number = None
        else:
            tagged = [
                c.number for c in self.nb.cells if "parameters" in c.tags and c.type == "code"
            ]
            if len(tagged) > 1:
                self.diags.append(
                    error(
                        codes.PARAMETERS_CELL_MISSING,
                        f"cells {', '.join(map(str, tagged))} are all tagged `parameters`",
                        self.at(("parameters",), key=True),
                        hint="tag one cell, or name it with `parametersCell`",
                    )
                )
            elif tagged:
                number = tagged[0]
        return number

    def parameters(self) -> None:
        """The parameters cell's assignments against `parameters` (after `ownership`)."""
        m = self.m
        pcell = self.resolved.parameters_cell
        values: dict[str, Any] = {}
        self.resolved.parameter_values = values
        if not m.parameters:
            if pcell is not None and m.parametersCell is not None:
                self.diags.append(
                    warning(
                        codes.PARAMETER_NOT_DECLARED,
                        "parametersCell is set but no parameters are declared",
                        self.at(("parametersCell",), key=True),
                    )
                )
            return
        if pcell is None:
            if not self.found(
                codes.PARAMETERS_CELL_MISSING,
                codes.BAD_CELL_RANGE,
                codes.CELL_OUT_OF_RANGE,
                codes.CELL_ID_NOT_FOUND,
                codes.NOT_A_CODE_CELL,
            ):
                self.diags.append(
                    error(
                        codes.PARAMETERS_CELL_MISSING,
                        "parameters are declared but the notebook has no parameters cell",
                        self.at(("parameters",), key=True),
                        hint="tag the cell that assigns them `parameters` (papermill's convention) or set `parametersCell`",
                    )
                )
            return
        source = self.nb.cells[pcell - 1].source
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            self.diags.append(
                error(
                    codes.PARAMETERS_CELL_SYNTAX,
                    f"the parameters cell {pcell} is not plain Python: {exc.msg}",
                    self.at(("parameters",), key=True),
                    related=(self.cell_at(pcell, exc.lineno),),
                )
            )
            return
        lines: dict[str, int] = {}
        for stmt in tree.body:
            if is_literal_expression(stmt):
                continue  # a docstring or a stray literal
            assigned = name_assignment(stmt)
            if assigned is None:
                self.diags.append(
                    error(
                        codes.PARAMETER_NOT_LITERAL,
                        f"the parameters cell {pcell} may only assign literals to names; line {stmt.lineno} does something else",
                        self.at(("parameters",), key=True),
                        hint="move other code to setup or a step: this cell is replaced by the run's parameter values",
                        related=(self.cell_at(pcell, stmt.lineno),),
                    )
                )
                continue
            name, value = assigned
            try:
                literal = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                self.diags.append(
                    error(
                        codes.PARAMETER_NOT_LITERAL,
                        f"parameter `{name}` is not assigned a literal in cell {pcell}, line {stmt.lineno}",
                        self.at(("parameters", name), key=True)
                        if name in m.parameters
                        else self.at(("parameters",), key=True),
                        hint="parameters are literals (numbers, strings, booleans, lists, dicts) so a run can replace them",
                        related=(self.cell_at(pcell, stmt.lineno),),
                    )
                )
                continue
            values[name] = literal
            lines[name] = stmt.lineno
        for name in values:
            if name not in m.parameters:
                self.diags.append(
                    error(
                        codes.PARAMETER_NOT_DECLARED,
                        f"`{name}` is assigned in the parameters cell {pcell} but not declared under `parameters`",
                        self.at(("parameters",), key=True),
                        hint=f"declare it (`{name}: {values[name]!r}`) or move it out of the parameters cell",
                        related=(self.cell_at(pcell, lines[name]),),
                    )
                )
        for name, p in m.parameters.items():
            if name not in values:
                if not any(
                    d.code == codes.PARAMETER_NOT_LITERAL.id and f"`{name}`" in d.message
                    for d in self.diags
                ):
                    self.diags.append(
                        error(
                            codes.PARAMETER_NOT_ASSIGNED,
                            f"parameter `{name}` is not assigned in the parameters cell {pcell}",
                            self.at(("parameters", name), key=True),
                            hint="the notebook must run top to bottom on its own: assign its default there",
                            related=(self.cell_at(pcell),),
                        )
                    )
                continue
            v = values[name]
            assert p.type is not None
            problem = not_json(v)
            if problem and p.default is None:  # the cell's value is the pipeline's default
                self.diags.append(
                    error(
                        codes.PARAMETER_NOT_LITERAL,
                        f"parameter `{name}` in cell {pcell}, line {lines[name]}, {problem}: "
                        "no pipeline parameter can hold it",
                        self.at(("parameters", name), key=True),
                        hint="give the parameter a `default` in the manifest, or assign a value "
                        "that JSON can hold",
                        related=(self.cell_at(pcell, lines[name]),),
                    )
                )
            elif not fits(v, p.type):
                self.diags.append(
                    error(
                        codes.PARAMETER_TYPE_MISMATCH,
                        f"parameter `{name}` is declared {p.type} but cell {pcell} assigns {infer_type(v) or type(v).__name__} `{v!r}`",
                        self.at(("parameters", name)),
                        related=(self.cell_at(pcell, lines[name]),),
                    )
                )

    # -- steps -----------------------------------------------------------------------------------

    def after(self) -> None:
        names = list(self.m.steps)
        graph: dict[str, list[str]] = {}
        for name, step in self.m.steps.items():
            deps = []
            for i, dep in enumerate(step.after):
                path = ("steps", name, "after", i)
                if dep == name:
                    self.diags.append(
                        error(
                            codes.AFTER_SELF,
                            f"step `{name}` cannot run after itself",
                            self.at(path),
                        )
                    )
                elif dep not in self.m.steps:
                    close = difflib.get_close_matches(dep, names, n=1)
                    self.diags.append(
                        error(
                            codes.AFTER_UNKNOWN_STEP,
                            f"step `{name}` runs after `{dep}`, which is not a step",
                            self.at(path),
                            hint=f"did you mean `{close[0]}`?"
                            if close
                            else f"steps: {', '.join(names)}",
                        )
                    )
                else:
                    deps.append(dep)
            graph[name] = deps
        cycle = find_cycle(graph)
        if cycle:
            self.diags.append(
                error(
                    codes.CYCLE,
                    "steps form a cycle through `after`: " + " -> ".join(cycle),
                    # the entry that closes it: the edge a user wrote, and can remove
                    self.at(
                        ("steps", cycle[0], "after", self.m.steps[cycle[0]].after.index(cycle[1]))
                    ),
                )
            )
        for name, step in self.m.steps.items():
            if step.volumes is not None:
                known = {v.name for v in self.m.volumes}
                for i, vol in enumerate(step.volumes):
                    if vol not in known:
                        self.diags.append(
                            error(
                                codes.VOLUME,
                                f"step `{name}` mounts volume `{vol}`, which is not declared under `volumes`",
                                self.at(("steps", name, "volumes", i)),
                            )
                        )

    # -- metrics and tuning -------------------------------------------------------------------

    def tuning(self) -> None:
        t = self.m.tuning
        if t is None:
            return
        metrics = list(self.m.metrics)
        if t.objective not in self.m.metrics:
            close = difflib.get_close_matches(t.objective, metrics, n=1)
            self.diags.append(
                error(
                    codes.OBJECTIVE_NOT_METRIC,
                    f"the tuning objective `{t.objective}` is not a declared metric",
                    self.at(("tuning", "objective")),
                    hint=f"did you mean `{close[0]}`?" if close else "declare it under `metrics`",
                )
            )
        for i, extra in enumerate(t.additionalMetrics or ()):
            if extra not in self.m.metrics:
                self.diags.append(
                    error(
                        codes.OBJECTIVE_NOT_METRIC,
                        f"additional metric `{extra}` is not a declared metric",
                        self.at(("tuning", "additionalMetrics", i)),
                    )
                )
        if t.parallelTrials > t.maxTrials:
            self.diags.append(
                error(
                    codes.TRIAL_COUNTS,
                    f"parallelTrials ({t.parallelTrials}) is more than maxTrials ({t.maxTrials})",
                    self.at(("tuning", "parallelTrials")),
                )
            )
        if t.maxFailedTrials is not None and t.maxFailedTrials > t.maxTrials:
            self.diags.append(
                error(
                    codes.TRIAL_COUNTS,
                    f"maxFailedTrials ({t.maxFailedTrials}) is more than maxTrials ({t.maxTrials})",
                    self.at(("tuning", "maxFailedTrials")),
                )
            )
        if len(self.m.name) + 1 + CONTENT_HASH_LEN > EXPERIMENT_NAME_MAX:
            self.diags.append(
                error(
                    codes.EXPERIMENT_NAME,
                    f"the Katib Experiment name `{self.m.name}-<hash>` would exceed {EXPERIMENT_NAME_MAX} characters",
                    self.at(("name",)),
                    hint=f"with `tuning`, the pipeline name may have at most {EXPERIMENT_NAME_MAX - 1 - CONTENT_HASH_LEN} characters",
                )
            )
        numeric = 0
        combinations = 1.0
        for name, space in t.search.items():
            path = ("tuning", "search", name)
            p = self.m.parameters.get(name)
            if p is None:
                close = difflib.get_close_matches(name, list(self.m.parameters), n=1)
                self.diags.append(
                    error(
                        codes.SEARCH_NOT_PARAMETER,
                        f"`{name}` is searched but is not a declared parameter",
                        self.at(path, key=True),
                        hint=f"did you mean `{close[0]}`?"
                        if close
                        else "declare it under `parameters`",
                    )
                )
                continue
            if space.values is not None:
                bad = [v for v in space.values if not fits(v, p.type or "")]
                if bad:
                    self.diags.append(
                        error(
                            codes.SEARCH_TYPE,
                            f"`{name}` is a {p.type} parameter; values {bad!r} do not fit",
                            self.at((*path, "values")),
                        )
                    )
                if len(set(map(repr, space.values))) != len(space.values):
                    self.diags.append(
                        error(
                            codes.SEARCH_TYPE,
                            f"`{name}` lists a value twice",
                            self.at((*path, "values")),
                        )
                    )
                combinations *= len(space.values)
                continue
            if p.type not in ("int", "float"):
                self.diags.append(
                    error(
                        codes.SEARCH_TYPE,
                        f"`{name}` is a {p.type} parameter: search it with `values`, not min/max",
                        self.at(path, key=True),
                    )
                )
                continue
            numeric += 1
            if p.type == "int":
                for k in ("min", "max", "step"):
                    v = getattr(space, k)
                    if v is not None and not (isinstance(v, int) and not isinstance(v, bool)):
                        self.diags.append(
                            error(
                                codes.SEARCH_TYPE,
                                f"`{name}` is an int parameter; {k} {v!r} is not an integer",
                                self.at((*path, k)),
                            )
                        )
                assert space.min is not None and space.max is not None
                combinations *= _points(space.min, space.max, space.step or 1)
            elif space.step is None:
                combinations = math.inf
                if t.algorithm == "grid":
                    self.diags.append(
                        error(
                            codes.ALGORITHM_SETTINGS,
                            f"grid search needs a `step` for the float parameter `{name}`",
                            self.at(path, key=True),
                            hint="Katib's grid algorithm rejects double parameters without a step",
                        )
                    )
            else:
                assert space.min is not None and space.max is not None
                combinations *= _points(space.min, space.max, space.step)
            step = space.step
            if step is not None and _points(space.min or 0, space.max or 0, step) > MAX_STEPS:
                self.diags.append(
                    error(
                        codes.SEARCH_RANGE_ORDER,
                        f"`{name}` has more than {MAX_STEPS:.0e} steps from min to max: "
                        f"step {space.step!r} is too small for the range",
                        self.at((*path, "step")),
                    )
                )
        if t.algorithm == "grid" and MAX_GRID < combinations < math.inf:  # inf: a step is missing
            self.diags.append(
                error(
                    codes.GRID_TOO_LARGE,
                    f"grid search has {'more than 1e18' if combinations > 1e18 else int(combinations)}"
                    f" combinations; at most {MAX_GRID:,} can be searched",
                    self.at(("tuning", "search"), key=True),
                    hint="use larger steps or fewer values, or a sampling algorithm (random, tpe)",
                )
            )
        elif t.algorithm == "grid" and math.isfinite(combinations) and t.maxTrials > combinations:
            self.diags.append(
                error(
                    codes.GRID_TOO_SMALL,
                    f"grid search has {int(combinations)} combinations but maxTrials is {t.maxTrials}",
                    self.at(("tuning", "maxTrials")),
                    hint=f"Katib requires maxTrials <= the number of combinations: set it to at most {int(combinations)}",
                )
            )
        if t.algorithm == "cmaes" and numeric < 2:
            self.diags.append(
                error(
                    codes.ALGORITHM_SETTINGS,
                    "cmaes needs two or more int or float parameters in `search`",
                    self.at(("tuning", "algorithm")),
                )
            )
        allowed = ALGORITHM_SETTINGS.get(t.algorithm, {})
        for key, value in t.settings.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                self.diags.append(
                    error(
                        codes.ALGORITHM_SETTINGS,
                        f"`{key}` is not a setting of the {t.algorithm} algorithm",
                        self.at(("tuning", "settings", key), key=True),
                        hint=f"did you mean `{close[0]}`?"
                        if close
                        else (
                            f"its settings: {', '.join(allowed)}"
                            if allowed
                            else f"{t.algorithm} takes no settings"
                        ),
                    )
                )
                continue
            kind = allowed[key]
            ok = (
                (
                    kind == "int"
                    and isinstance(value, int)
                    and not isinstance(value, bool)
                    and value >= 0
                )
                or (
                    kind == "float"
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                )
                or (kind == "str" and isinstance(value, str))
                or ("|" in kind and value in kind.split("|"))
            )
            if not ok:
                self.diags.append(
                    error(
                        codes.ALGORITHM_SETTINGS,
                        f"setting `{key}` of {t.algorithm} must be {kind.replace('|', ' or ')}, not `{value}`",
                        self.at(("tuning", "settings", key)),
                    )
                )
        for key in ALGORITHM_REQUIRED.get(t.algorithm, ()):
            if key not in t.settings:
                self.diags.append(
                    error(
                        codes.ALGORITHM_SETTINGS,
                        f"the {t.algorithm} algorithm needs the setting `{key}`",
                        self.at(("tuning", "algorithm")),
                    )
                )
        if (
            t.algorithm == "hyperband"
            and isinstance(t.settings.get("resource_name"), str)
            and t.settings["resource_name"] not in t.search
        ):
            self.diags.append(
                error(
                    codes.ALGORITHM_SETTINGS,
                    f"hyperband's resource_name `{t.settings['resource_name']}` is not a searched parameter",
                    self.at(("tuning", "settings", "resource_name")),
                )
            )

    # -- images and resources ----------------------------------------------------------------

    def images(self) -> None:
        refs: list[tuple[str, YamlPath]] = [(self.m.image, ("image",))]
        refs += [(s.image, ("steps", n, "image")) for n, s in self.m.steps.items() if s.image]
        if self.m.deploy.launcherImage:
            refs.append((self.m.deploy.launcherImage, ("deploy", "launcherImage")))
        for ref, path in refs:
            problem = image_problem(ref)
            if problem == "invalid":
                self.diags.append(
                    error(codes.IMAGE_TAG, f"`{ref}` is not an image reference", self.at(path))
                )
            elif problem:
                self.diags.append(
                    warning(
                        codes.IMAGE_TAG,
                        f"image `{ref}` {problem}: a rebuild may run different code",
                        self.at(path),
                        hint="pin a tag (`python:3.11-slim`) or a digest (`@sha256:...`)",
                    )
                )

    def resources(self) -> None:
        blocks: list[tuple[Resources | None, YamlPath]] = [(self.m.resources, ("resources",))]
        blocks += [(s.resources, ("steps", n, "resources")) for n, s in self.m.steps.items()]
        for res, path in blocks:
            if res is None:
                continue
            for req, lim in (("cpu", "cpuLimit"), ("memory", "memoryLimit")):
                r, l_ = getattr(res, req), getattr(res, lim)
                if r and l_:
                    rv, lv = quantity_value(r), quantity_value(l_)
                    if rv is not None and lv is not None and lv < rv:
                        self.diags.append(
                            error(
                                codes.BAD_QUANTITY,
                                f"{lim} {l_} is below the request {req} {r}",
                                self.at((*path, lim)),
                            )
                        )
        names = [v.name for v in self.m.volumes]
        paths = [v.mountPath for v in self.m.volumes]
        for i, v in enumerate(self.m.volumes):
            if names.count(v.name) > 1 and names.index(v.name) != i:
                self.diags.append(
                    error(
                        codes.VOLUME,
                        f"volume `{v.name}` is declared twice",
                        self.at(("volumes", i, "name")),
                    )
                )
            if paths.count(v.mountPath) > 1 and paths.index(v.mountPath) != i:
                self.diags.append(
                    error(
                        codes.VOLUME,
                        f"two volumes mount at `{v.mountPath}`",
                        self.at(("volumes", i, "mountPath")),
                    )
                )
        per_run = [(i, v) for i, v in enumerate(self.m.volumes) if v.size is not None]
        for i, v in per_run[1:]:
            first = per_run[0][1]
            if (v.storageClass, v.accessMode) != (first.storageClass, first.accessMode):
                self.diags.append(
                    error(
                        codes.VOLUME,
                        f"volume `{v.name}` is created per run with another storageClass or "
                        f"accessMode than volume `{first.name}`: a run's volumes are one claim "
                        "(deleted when the run ends, failed or not), a folder each",
                        self.at(("volumes", i)),
                        "give the volumes created per run the same storageClass and accessMode, "
                        "or use an existing claim (`claim:`) for one of them",
                    )
                )

    def run(self) -> list[Diagnostic]:
        self.ownership()
        self.parameters()
        self.after()
        self.tuning()
        self.images()
        self.resources()
        return self.diags


def name_assignment(stmt: ast.stmt) -> tuple[str, ast.expr] | None:
    """`name = value` or `name: type = value`: the name and the value's expression."""
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
    ):
        return stmt.targets[0].id, stmt.value
    if (
        isinstance(stmt, ast.AnnAssign)
        and stmt.value is not None
        and isinstance(stmt.target, ast.Name)
    ):
        return stmt.target.id, stmt.value
    return None


def is_literal_expression(stmt: ast.stmt) -> bool:
    """A statement that is only a constant: a docstring, a stray literal."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


_IMAGE = re.compile(
    r"^(?:(?P<host>[a-zA-Z0-9.-]+(?::\d+)?)/)?(?P<path>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


def image_problem(ref: str) -> str | None:
    """None for a pinned image; a phrase for an unpinned one; 'invalid' for a malformed one."""
    m = _IMAGE.fullmatch(ref)
    if not m:
        return "invalid"
    if m.group("digest"):
        return None
    if not m.group("tag"):
        return "has no tag"
    if m.group("tag") == "latest":
        return "uses `:latest`"
    return None


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in `graph` (node -> nodes it depends on) as a list ending where it started."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for d in graph.get(n, ()):
            if color.get(d) == 1:
                return [*stack[stack.index(d) :], d]
            if d not in color:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(graph):
        if n not in color:
            found = visit(n)
            if found:
                return found
    return None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
