"""How the plan (:mod:`nbflow.dataflow.plan`) is made: which variables flow between which steps,
and what is wrong with the notebook's data flow.

:func:`make_plan` takes the notebook's code cells, the manifest's setup cells, steps,
parameters and metrics, analyses each cell (:mod:`nbflow.dataflow.cell_flow`) and decides, for every name
a step reads, where its value comes from. The rules, exactly:

- **A step runs** its setup cells, then the imports it replays (``StepPlan.imports``), then its
  own cells in notebook order. Its parameters are in its namespace before setup runs (setup may
  read them). Setup cells must not read step values (NBF707), so setup never needs an input;
  an input may be a new value of a setup name (a step that reassigns or mutates it), so inputs
  belong in the namespace after setup ran and before the step's cells.
- **Parameters** are injected into every step that reads them, never passed between steps. A
  step reads a parameter when one of its cells does, when a function it calls (from setup or
  from any cell, transitively) does, or when a setup cell does at top level (then every step
  reads it). A step or setup cell that assigns a parameter is an error (NBF703): the run's
  value would no longer be the one every step sees. A parameter no step reads is a warning
  (NBF406).
- **Setup names** (assigned or imported by setup cells) are there in every step and are never
  marshalled.
- **Everything else is decided by notebook order**, as if the notebook ran top to bottom: a read
  of ``X`` in cell ``c`` of step ``S`` sees the latest binding of ``X`` in a cell before ``c``
  that runs in the pipeline (a setup or step cell; the parameters cell only binds parameters;
  skipped cells bind nothing):

  * if ``S`` itself binds ``X`` in an earlier cell of its own, ``X`` is local. (Were another
    step's binding between the two, the notebook would see that one while the step sees its
    own: NBF702.)
  * else if the latest binding is another step ``T``'s assignment, ``X`` is an input of ``S``
    from ``T``: a data edge ``T -> S`` carrying ``X``, and an output of ``T``.
  * else if it is an import in ``T``'s cell, the import statement is replayed in ``S``
    (``StepPlan.imports``): modules are not data and make no edge.
  * else if it is a setup cell (or no step cell binds ``X`` before ``c`` but setup does,
    anywhere), setup provides it.
  * else if it is a ``del``, or there is no binding before ``c`` at all, ``X`` is undefined
    (NBF701), and the message says whether it is defined only later (the notebook would only
    work out of order), only in a cell in no step, or nowhere.

  Builtins are never reads unless a pipeline cell redefines them; names that IPython may
  interpolate into shell commands (``!echo {x}``) are reads only when some cell binds them. A
  read after a star import (NBF704) is never reported undefined.
- **Mutations** (``df["a"] = 1``, ``x += 1``, ``model.fit(X)``, ``lst.append(v)``,
  ``inplace=True``) are bindings like assignments: a step that changes an object makes a new
  value of it, which the next step to read it gets (so steps that change one object in turn
  chain in notebook order). Changing a module's state (``pd.options...``, ``os.environ[...]``)
  is not: modules are not data.
- **Functions** run where they are called: a read of a function ``f`` (from any cell) is also a
  read of the globals ``f`` reads, resolved at the reading cell, and a definition of the globals
  ``f`` assigns through ``global``.
- **Ambiguity**: if the latest binding comes from ``T`` but another step ``U`` also binds
  ``X`` before the reading cell, and neither of ``T`` and ``U`` is upstream of the other, the
  reader gets ``T``'s value (notebook order), which is what the notebook run top to bottom
  gives it: NBF702 as a warning, naming the other value. A step reading ``X`` in two cells from
  two different steps is NBF702, an error.
- **Metrics**: the step that binds a metric last, in notebook order, provides it (it is one of
  the step's outputs and ``metrics``). A metric no step binds is NBF408.
- **Edges** are the data edges plus ``after``; steps with neither between them stay parallel.
  A cycle (possible when ``after`` points forward or the steps' cells interleave) is NBF302,
  located at an ``after`` entry that closes it when there is one.
  Steps are ordered topologically; ties go to the step with the lower first cell, then name.
- Values that can't cross a step boundary by their construction (open files, generators,
  sockets, connections, locks, threads) are NBF705 warnings when an edge carries them. A cell
  that isn't Python is NBF706; then names it would have defined are not reported undefined.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nbflow import codes
from nbflow.dataflow.cell_flow import CellFlow, analyse_cell
from nbflow.dataflow.plan import Edge, Plan, StepPlan
from nbflow.diagnostics import Diagnostic, Location, error, warning

__all__ = ["StepInput", "make_plan"]

_MAX_HINTS = 20  # "did you mean" costs a fuzzy match over every name: only for the first ones
SETUP = "<setup>"
PARAMS = "<parameters>"


@dataclass(frozen=True)
class StepInput:
    """A step as the manifest declares it; ``location`` is the step's key in the manifest."""

    name: str
    cells: tuple[int, ...]
    after: tuple[str, ...]
    location: Location
    after_locations: tuple[Location, ...] = ()  # where each `after` entry is written


@dataclass(frozen=True, slots=True)
class _Binding:
    cell: int
    owner: str  # a step name, SETUP, PARAMS, or "" for a cell in no step
    kind: str  # "data", "function", "import" or "delete"


@dataclass(frozen=True, slots=True)
class _Source:
    kind: str  # "param" "local" "step" "import" "setup" "star" "deleted" "undefined"
    binding: _Binding | None = None


@dataclass
class _StepState:
    inp: StepInput
    cells: tuple[int, ...]
    inputs: dict[str, str] = field(default_factory=dict)
    input_cells: dict[str, int] = field(default_factory=dict)  # the cell binding each input
    parameters: set[str] = field(default_factory=set)
    imports: dict[str, tuple[int, str]] = field(default_factory=dict)
    metrics: set[str] = field(default_factory=set)


class _Planner:
    def __init__(
        self,
        cells: Mapping[int, str],
        setup: Sequence[int],
        steps: Sequence[StepInput],
        parameters: Sequence[str],
        parameters_cell: int | None,
        metrics: Sequence[str],
        manifest_path: str,
        notebook_path: str,
        parameter_locations: Mapping[str, Location],
        metric_locations: Mapping[str, Location],
        setup_location: Location | None,
    ) -> None:
        self.notebook_path = notebook_path
        self.manifest_path = manifest_path
        self.parameter_locations = parameter_locations
        self.metric_locations = metric_locations
        self.setup_location = setup_location or Location(file=manifest_path)
        self.parameters = tuple(dict.fromkeys(parameters))
        self.param_set = frozenset(self.parameters)
        self.metrics = tuple(dict.fromkeys(metrics))
        self.parameters_cell = parameters_cell if parameters_cell in cells else None
        self.diags: list[Diagnostic] = []
        self._known: dict[int, list[str]] | None = None
        self._hints = 0

        self.owner: dict[int, str] = {}
        for c in setup:
            if c in cells:
                self.owner.setdefault(c, SETUP)
        if self.parameters_cell is not None:
            self.owner.setdefault(self.parameters_cell, PARAMS)
        self.steps: dict[str, _StepState] = {}
        for s in steps:
            if s.name in self.steps:
                continue
            own = sorted(
                {c for c in s.cells if c in cells and self.owner.setdefault(c, s.name) == s.name}
            )
            self.steps[s.name] = _StepState(s, tuple(own))
        self.setup = tuple(sorted(c for c, o in self.owner.items() if o == SETUP))
        self.flows: dict[int, CellFlow] = {n: analyse_cell(n, cells[n]) for n in sorted(cells)}
        self.executed = sorted(c for c, o in self.owner.items() if o != PARAMS)
        self.broken = any(self.flows[c].syntax_error for c in self.executed)

        self.bindings: dict[str, list[_Binding]] = {}
        mutated: list[tuple[int, str]] = []
        for n, flow in self.flows.items():
            owner = self.owner.get(n, "")
            if owner == PARAMS:
                for name in flow.defines:
                    self.bindings.setdefault(name, []).append(_Binding(n, PARAMS, "data"))
                continue
            for name in flow.defines:
                if name in flow.mutations and owner:
                    mutated.append((n, name))
                    continue
                kind = "function" if name in flow.functions else "data"
                self.bindings.setdefault(name, []).append(_Binding(n, owner, kind))
            for name in flow.imports:
                self.bindings.setdefault(name, []).append(_Binding(n, owner, "import"))
            for name in flow.deletes:
                if name not in flow.defines and name not in flow.imports:
                    self.bindings.setdefault(name, []).append(_Binding(n, owner, "delete"))
        self.star_cells = [c for c in self.executed if self.flows[c].star_imports]
        # A mutation (`x.a = 1`, `x.append(1)`) defines the object again, unless the object is
        # a module (`pd.options.display.width = 120`, `os.environ["A"] = "1"`): modules are
        # not data, and every step imports its own.
        for n, name in mutated:
            b = self.resolve(name, n, self.owner[n]).binding
            if b is None or b.kind != "import":
                kind = "function" if name in self.flows[n].functions else "data"
                self.bindings.setdefault(name, []).append(_Binding(n, self.owner[n], kind))
        for found in self.bindings.values():
            found.sort(key=lambda b: b.cell)
        self.element_mutations()
        # what each pipeline cell reads, with the globals of the functions it calls, and the
        # globals those functions assign (`global X`), which then are bindings of the cell
        self.extra_defines: dict[int, dict[str, int]] = {}
        self.reads: dict[int, list[tuple[str, int, bool]]] = {}
        for c in self.executed:
            self.reads[c] = self.effective_reads(c, self.owner[c])
        for c, names in self.extra_defines.items():
            flow = self.flows[c]
            for name in names:
                if name not in flow.defines:
                    self.bindings.setdefault(name, []).append(_Binding(c, self.owner[c], "data"))
                    self.bindings[name].sort(key=lambda b: b.cell)

    def element_mutations(self) -> None:
        """Changes of objects that other names share. `for f in frames: f["w"] = 1` changes
        what `frames` holds: where `frames` was bound as `[a, b]`, the cell changes `a` and `b`
        too. And a change of `m` changes the containers bound as holding it (`models = {"lr":
        m}`). Such names are bindings (and reads) of the changing cell."""
        holders: dict[str, list[tuple[int, str]]] = {}  # name -> (cell, container holding it)
        for c in self.executed:
            for container, held in self.flows[c].aliases.items():
                for name in held - self.param_set:  # a parameter is a value, never changed
                    holders.setdefault(name, []).append((c, container))
        added: list[tuple[str, _Binding]] = []
        self.extra_reads: dict[int, list[tuple[str, int]]] = {}
        for n in self.executed:
            owner = self.owner[n]
            flow = self.flows[n]
            if owner == SETUP:
                continue
            changed: dict[str, int] = {}  # name -> line
            for container in flow.element_mutations:
                b = self.resolve(container, n, owner).binding
                if b is None:
                    continue
                for name in sorted(self.flows[b.cell].aliases.get(container, ())):
                    changed.setdefault(name, flow.read_lines.get(container, 1))
            todo = [*changed, *flow.mutations]
            while todo:
                name = todo.pop()
                line = changed.get(name) or flow.define_lines.get(name, 1)
                for c, container in holders.get(name, ()):
                    if c >= n or container in changed or container in flow.defines:
                        continue
                    if self.still_holds(container, c, n):
                        changed[container] = line
                        todo.append(container)
            for name, line in changed.items():
                src = self.resolve(name, n, owner)
                if name in flow.defines or src.kind not in ("step", "local", "setup"):
                    continue
                kind = "function" if name in flow.functions else "data"
                added.append((name, _Binding(n, owner, kind)))
                # the step changes the object it has from before: it needs the name
                self.extra_reads.setdefault(n, []).append((name, line))
        for name, binding in added:
            found = self.bindings.setdefault(name, [])
            found.append(binding)
            found.sort(key=lambda b: b.cell)

    def still_holds(self, container: str, cell: int, before: int) -> bool:
        """Whether `container`, bound in `cell`, is still that object in cell `before`: no
        cell in between assigns it (changing it in place keeps it)."""
        return all(
            container in self.flows[b.cell].mutations
            for b in self.bindings.get(container, ())
            if cell < b.cell < before and b.owner not in ("", PARAMS)
        )

    def share_inputs(
        self, reads_from: dict[tuple[str, str], dict[str, tuple[int, int, int]]]
    ) -> None:
        """A step that reads a container from step S (`models = [m1, m2]` in S) and one of the
        names in it from another step takes that name from S as well: S saves the two
        together, so that they arrive sharing their objects as in the notebook."""
        for st in self.steps.values():
            for container, src in list(st.inputs.items()):
                held = self.flows[st.input_cells[container]].aliases.get(container, ())
                source = self.steps[src]
                for name in sorted(held):
                    if st.inputs.get(name) in (None, src) or name in self.param_set:
                        continue
                    if name in source.inputs or any(
                        name in self.flows[c].defines for c in source.cells
                    ):
                        st.inputs[name] = src
                        st.input_cells[name] = st.input_cells[container]
                        entry = reads_from.get((st.inp.name, name))
                        if entry:
                            first = next(iter(entry.values()))
                            entry.clear()
                            entry[src] = first

    # -- resolution -------------------------------------------------------------------------

    def resolve(self, name: str, cell: int, step: str) -> _Source:
        if name in self.param_set:
            return _Source("param")
        if step == SETUP:  # setup cells see setup cells before them, nothing else
            for b in reversed(self.bindings.get(name, ())):
                if b.cell < cell and b.owner == SETUP:
                    return _Source("deleted" if b.kind == "delete" else "local", b)
            if any(c <= cell for c in self.star_cells if self.owner[c] == SETUP):
                return _Source("star")
            return _Source("undefined")
        found: _Binding | None = None
        for b in reversed(self.bindings.get(name, ())):
            if b.cell >= cell or b.owner in ("", PARAMS):
                continue
            if b.owner == step:
                return _Source("local", b)
            if found is None:
                found = b
        if found is not None:
            if found.owner == SETUP:
                return _Source("setup", found)
            if found.kind == "import":
                return _Source("import", found)
            if found.kind == "delete":
                return _Source("deleted", found)
            return _Source("step", found)
        for b in reversed(self.bindings.get(name, ())):
            if b.owner == SETUP and b.kind != "delete":
                return _Source("setup", b)
        if any(c <= cell or self.owner.get(c) == SETUP for c in self.star_cells):
            return _Source("star")
        return _Source("undefined")

    def effective_reads(self, cell: int, step: str) -> list[tuple[str, int, bool]]:
        """(name, line, optional) the cell reads, with the globals of the functions it calls."""
        flow = self.flows[cell]
        out: list[tuple[str, int, bool]] = []
        seen: set[str] = set()
        todo: list[tuple[str, int, bool]] = [
            (n, flow.read_lines.get(n, 1), False) for n in flow.reads
        ]
        todo += [(n, flow.read_lines.get(n, 1), True) for n in flow.optional_reads]
        todo += [(n, line, False) for n, line in self.extra_reads.get(cell, ())]
        todo.reverse()
        while todo:
            name, line, optional = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            out.append((name, line, optional))
            src = self.resolve(name, cell, step)
            b = src.binding
            if b is None or b.kind != "function":
                continue
            fflow = self.flows[b.cell]
            for g in sorted(fflow.functions.get(name, ()), reverse=True):
                # a global the cell assigns before this line is the cell's own
                at = flow.define_lines.get(g)
                if g not in seen and (at is None or at >= line or g not in flow.defines):
                    todo.append((g, line, False))
            for w in sorted(fflow.function_writes.get(name, ())):
                self.extra_defines.setdefault(cell, {}).setdefault(w, line)
        return out

    # -- diagnostics helpers ----------------------------------------------------------------

    def cell_at(self, cell: int, line: int | None = None) -> Location:
        return Location(file=self.notebook_path, cell=cell, cell_line=line)

    def where(self, owner: str) -> Location:
        if owner in self.steps:
            return self.steps[owner].inp.location
        return self.setup_location

    def who(self, owner: str, cell: int | None = None) -> str:
        if owner == SETUP:
            return f"setup cell {cell}" if cell is not None else "setup"
        if owner == PARAMS:
            return f"the parameters cell {cell}"
        if owner == "":
            return f"cell {cell}, which is in no step"
        return f"step `{owner}`" + (f" (cell {cell})" if cell is not None else "")

    def undefined(self, name: str, cell: int, line: int, owner: str, src: _Source) -> None:
        reader = f"{self.who(owner)} reads `{name}` (cell {cell}, line {line})"
        related = [self.cell_at(cell, line)]
        hint = f"define it in setup or in a step before cell {cell}, or declare it as a parameter"
        if src.kind == "deleted" and src.binding is not None:
            b = src.binding
            message = f"{reader}, but {self.who(b.owner, b.cell)} deletes it before"
            hint = (
                f"keep `{name}` (remove the `del` in cell {b.cell}) or read it before cell {b.cell}"
            )
            related.append(self.cell_at(b.cell, self.flows[b.cell].define_lines.get(name)))
        else:
            later = [b for b in self.bindings.get(name, ()) if b.kind != "delete"]
            pipeline = [b for b in later if b.owner not in ("", PARAMS)]
            same = [b for b in pipeline if b.cell == cell]
            if same:
                at = self.flows[cell].define_lines.get(name)
                message = f"{reader} before the cell assigns it (line {at}), and no cell before defines it"
                hint = f"assign `{name}` before line {line}, or in a cell before cell {cell}"
            elif pipeline:
                b = pipeline[0]
                place = (
                    f"cell {b.cell} of the same step"
                    if b.owner == owner and owner in self.steps
                    else self.who(b.owner, b.cell)
                )
                message = (
                    f"{reader}, which is defined only later, in {place}: "
                    "the notebook would only work out of order"
                )
                hint = f"move the definition before cell {cell}, or the read after cell {b.cell}"
                related.append(self.cell_at(b.cell, self.flows[b.cell].define_lines.get(name)))
            elif later:
                b = later[0]
                if b.owner == PARAMS:
                    message = (
                        f"{reader}, which only the parameters cell {b.cell} assigns, "
                        "and a run replaces that cell with its parameter values"
                    )
                    hint = f"declare `{name}` under `parameters`, or assign it in setup"
                else:
                    message = f"{reader}, which is defined only in cell {b.cell}, and that cell is in no step"
                    hint = f"add cell {b.cell} to a step or to setup"
                related.append(self.cell_at(b.cell, self.flows[b.cell].define_lines.get(name)))
            else:
                message = f"{reader}, which no cell of the notebook defines"
                close = _close(name, self.known()) if self._hints < _MAX_HINTS else None
                self._hints += 1
                if close:
                    hint = f"did you mean `{close}`? Else {hint}"
        self.diags.append(
            error(codes.UNDEFINED_NAME, message, self.where(owner), hint, related=tuple(related))
        )

    def known(self) -> dict[int, list[str]]:
        """The names the notebook binds, by length, for "did you mean" hints."""
        if self._known is None:
            self._known = {}
            for n in sorted(self.bindings.keys() | self.param_set):
                self._known.setdefault(len(n), []).append(n)
        return self._known

    # -- the plan ---------------------------------------------------------------------------

    def run(self) -> Plan:
        self.check_cells()
        setup_params = self.check_setup()
        reads_from: dict[tuple[str, str], dict[str, tuple[int, int, int]]] = {}
        for name, st in self.steps.items():
            st.parameters |= setup_params
            for cell in st.cells:
                for var, line, optional in self.reads[cell]:
                    self.read(st, var, cell, line, optional, reads_from)
            for cell in st.cells:
                for var in (*self.flows[cell].defines, *self.extra_defines.get(cell, {})):
                    if var in self.param_set:
                        self.reassigned(name, var, cell)
        for (reader, var), sources in sorted(reads_from.items()):
            if len(sources) > 1:
                st = self.steps[reader]
                (first, (c1, l1, _)), (second, (c2, l2, _)) = sorted(
                    sources.items(), key=lambda kv: kv[1]
                )[:2]
                self.diags.append(
                    error(
                        codes.AMBIGUOUS_DEFINITION,
                        f"step `{reader}` reads `{var}` from step `{first}` in cell {c1} "
                        f"and from step `{second}` in cell {c2}: a step gets one value of a variable",
                        st.inp.location,
                        f"rename one of the two `{var}`s, or split step `{reader}` at cell {c2}",
                        related=(self.cell_at(c1, l1), self.cell_at(c2, l2)),
                    )
                )
        self.assign_metrics()
        self.share_inputs(reads_from)

        edges: dict[tuple[str, str], set[str]] = {}
        for name, st in self.steps.items():
            for var, src in st.inputs.items():
                edges.setdefault((src, name), set()).add(var)
            for a in st.inp.after:
                if a in self.steps and a != name:
                    edges.setdefault((a, name), set())
        order = self.toposort(edges)
        self.check_ambiguity(edges, reads_from)
        self.check_unmovable()
        self.check_parameters()

        rank = {n: i for i, n in enumerate(order)}
        outputs: dict[str, set[str]] = {n: set(st.metrics) for n, st in self.steps.items()}
        upstream: dict[str, set[str]] = {n: set() for n in self.steps}
        for (src, dst), vs in edges.items():
            outputs[src] |= vs
            upstream[dst].add(src)
        plan_steps = tuple(
            StepPlan(
                name=n,
                cells=self.steps[n].cells,
                inputs=tuple(sorted(self.steps[n].inputs.items())),
                outputs=tuple(sorted(outputs[n])),
                parameters=tuple(p for p in self.parameters if p in self.steps[n].parameters),
                metrics=tuple(sorted(self.steps[n].metrics)),
                upstream=tuple(sorted(upstream[n], key=rank.__getitem__)),
                imports=tuple(dict.fromkeys(s for _, s in sorted(self.steps[n].imports.values()))),
            )
            for n in order
        )
        plan_edges = tuple(
            Edge(src, dst, tuple(sorted(vs)), not vs)
            for (src, dst), vs in sorted(
                edges.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])
            )
        )
        return Plan(plan_steps, plan_edges, self.setup, self.parameters_cell)

    def read(
        self,
        st: _StepState,
        var: str,
        cell: int,
        line: int,
        optional: bool,
        reads_from: dict[tuple[str, str], dict[str, tuple[int, int, int]]],
    ) -> None:
        name = st.inp.name
        src = self.resolve(var, cell, name)
        b = src.binding
        if src.kind == "param":
            st.parameters.add(var)
        elif src.kind == "step" and b is not None:
            sources = reads_from.setdefault((name, var), {})
            if not sources:
                st.inputs[var] = b.owner
                st.input_cells[var] = b.cell
            sources.setdefault(b.owner, (cell, line, b.cell))
        elif src.kind == "import" and b is not None:
            stmt = self.flows[b.cell].import_statements.get(var)
            if stmt:
                st.imports.setdefault(var, (b.cell, stmt))
        elif src.kind == "local" and b is not None:
            between = [
                o
                for o in self.bindings.get(var, ())
                if b.cell < o.cell < cell and o.owner not in ("", PARAMS, SETUP, name)
            ]
            if between:
                o = between[-1]
                self.diags.append(
                    error(
                        codes.AMBIGUOUS_DEFINITION,
                        f"step `{name}` reads `{var}` (cell {cell}, line {line}), which it assigns in "
                        f"cell {b.cell}, but {self.who(o.owner, o.cell)} assigns it in between: "
                        f"the notebook sees step `{o.owner}`'s value, the step its own",
                        st.inp.location,
                        "rename one of them, or move the cells so that a step's cells are together",
                        related=(self.cell_at(cell, line), self.cell_at(o.cell)),
                    )
                )
        elif src.kind in ("undefined", "deleted") and not optional and not self.broken:
            self.undefined(var, cell, line, name, src)

    def check_cells(self) -> None:
        for c in self.executed:
            flow = self.flows[c]
            owner = self.owner[c]
            if flow.syntax_error is not None:
                msg, line = flow.syntax_error
                self.diags.append(
                    error(
                        codes.CELL_SYNTAX,
                        f"{self.who(owner)}: cell {c} is not Python, even as IPython (line {line}: {msg})",
                        self.where(owner),
                        "fix the cell so that it runs in Jupyter",
                        related=(self.cell_at(c, line),),
                    )
                )
            for module in flow.star_imports:
                at = flow.star_import_lines.get(module)
                if module.startswith("%"):
                    what = f"runs `{module}`"
                    hint = "put that code in a setup cell, or import it as a module"
                else:
                    what = f"imports * from `{module}`"
                    hint = f"import the names you use: `from {module} import a, b`"
                self.diags.append(
                    warning(
                        codes.STAR_IMPORT,
                        f"{self.who(owner)} {what} (cell {c}, line {at}): the names it binds "
                        "are unknown, so reads after it can't be checked",
                        self.where(owner),
                        hint,
                        related=(self.cell_at(c, at),),
                    )
                )

    def check_setup(self) -> set[str]:
        """NBF707 and NBF701 for setup cells; the parameters setup reads (every step reads them)."""
        params: set[str] = set()
        for c in self.setup:
            flow = self.flows[c]
            for var, line, optional in self.reads[c]:
                src = self.resolve(var, c, SETUP)
                if src.kind == "param":
                    params.add(var)
                    continue
                if src.kind != "undefined" or optional or self.broken:
                    continue
                stepdef = [
                    b
                    for b in self.bindings.get(var, ())
                    if b.owner in self.steps and b.kind != "delete"
                ]
                if stepdef:
                    b = stepdef[0]
                    self.diags.append(
                        error(
                            codes.SETUP_READS_STEP_VALUE,
                            f"setup cell {c} reads `{var}` (line {line}), which step `{b.owner}` "
                            f"defines (cell {b.cell}): setup runs at the start of every step, "
                            "before any step's values are there",
                            self.setup_location,
                            "move the code that needs it into a step, or define it in setup",
                            related=(self.cell_at(c, line), self.cell_at(b.cell)),
                        )
                    )
                else:
                    self.undefined(var, c, line, SETUP, src)
            for var in (*flow.defines, *self.extra_defines.get(c, {})):
                if var in self.param_set:
                    self.reassigned(SETUP, var, c)
        return params

    def reassigned(self, owner: str, var: str, cell: int) -> None:
        flow = self.flows[cell]
        line = flow.define_lines.get(var) or self.extra_defines.get(cell, {}).get(var)
        self.diags.append(
            error(
                codes.PARAMETER_REASSIGNED,
                f"{self.who(owner)} assigns parameter `{var}` (cell {cell}, line {line}): "
                "a run injects its value into every step that reads it, so no cell may change it",
                self.where(owner),
                f"assign the changed value to a new name, e.g. `{var}_used = ...`",
                related=(self.cell_at(cell, line),),
            )
        )

    def assign_metrics(self) -> None:
        for m in self.metrics:
            last = [b for b in self.bindings.get(m, ()) if b.owner in self.steps]
            if last and last[-1].kind != "delete":
                self.steps[last[-1].owner].metrics.add(m)
                continue
            if self.broken:
                continue
            others = [b for b in self.bindings.get(m, ()) if b.owner not in self.steps]
            where = f" (only in {self.who(others[0].owner, others[0].cell)})" if others else ""
            self.diags.append(
                error(
                    codes.METRIC_NOT_ASSIGNED,
                    f"metric `{m}` is assigned by no step{where}",
                    self.metric_locations.get(m, Location(file=self.manifest_path)),
                    f"assign `{m}` in a cell of the step that computes it",
                )
            )

    def check_parameters(self) -> None:
        if self.broken:
            return
        used = set().union(*(st.parameters for st in self.steps.values())) if self.steps else set()
        for p in self.parameters:
            if p not in used:
                self.diags.append(
                    warning(
                        codes.PARAMETER_UNUSED,
                        f"parameter `{p}` is read by no step",
                        self.parameter_locations.get(p, Location(file=self.manifest_path)),
                        f"use `{p}` in a step, or remove it from `parameters`",
                    )
                )

    def toposort(self, edges: Mapping[tuple[str, str], set[str]]) -> list[str]:
        key = {n: (st.cells[0] if st.cells else 1 << 62, n) for n, st in self.steps.items()}
        indeg = dict.fromkeys(self.steps, 0)
        succ: dict[str, list[str]] = {n: [] for n in self.steps}
        for src, dst in edges:
            succ[src].append(dst)
            indeg[dst] += 1
        heap = [key[n] for n, d in indeg.items() if d == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for m in succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    heapq.heappush(heap, key[m])
        if len(order) < len(self.steps):
            rest = sorted((n for n in self.steps if n not in order), key=key.__getitem__)
            self.report_cycle(rest, edges)
            order += rest
        return order

    def report_cycle(self, rest: list[str], edges: Mapping[tuple[str, str], set[str]]) -> None:
        inside = set(rest)
        links = [
            f"{s} -> {d} ({', '.join(sorted(v)) if v else 'after'})"
            for (s, d), v in sorted(edges.items())
            if s in inside and d in inside
        ]
        # an `after` a user wrote is the edge they can remove: point at it, not at the step
        where = self.steps[rest[0]].inp.location
        for name in rest:
            inp = self.steps[name].inp
            closing = [
                i for i, a in enumerate(inp.after) if a in inside and i < len(inp.after_locations)
            ]
            if closing:
                where = inp.after_locations[closing[0]]
                break
        self.diags.append(
            error(
                codes.CYCLE,
                f"steps {', '.join(f'`{n}`' for n in rest)} wait for each other through their data "
                f"and `after`: {'; '.join(links)}",
                where,
                "remove an `after`, or move cells so that each step reads only from steps before it",
            )
        )

    def check_ambiguity(
        self,
        edges: Mapping[tuple[str, str], set[str]],
        reads_from: Mapping[tuple[str, str], Mapping[str, tuple[int, int, int]]],
    ) -> None:
        succ: dict[str, set[str]] = {n: set() for n in self.steps}
        for src, dst in edges:
            succ[src].add(dst)
        reached: dict[str, set[str]] = {}

        def reach(n: str) -> set[str]:
            """The steps after `n`, found when first asked: for every step up front they are
            N^2 (a 5,000-step chain: 12.5 million entries), and most steps are never asked."""
            if n not in reached:
                seen: set[str] = set()
                todo = [n]
                while todo:
                    for m in succ[todo.pop()]:
                        if m not in seen:
                            seen.add(m)
                            todo.append(m)
                reached[n] = seen
            return reached[n]

        for (reader, var), sources in sorted(reads_from.items()):
            src = self.steps[reader].inputs[var]
            cell, line, bcell = sources[src]
            rivals = sorted(
                {
                    b.owner: b.cell
                    for b in self.bindings.get(var, ())
                    if b.cell < cell
                    and b.owner in self.steps
                    and b.owner not in (src, reader)
                    and b.kind in ("data", "function")
                    and b.owner not in reach(src)
                    and src not in reach(b.owner)
                }.items(),
                key=lambda kv: kv[1],
            )
            if not rivals:
                continue
            other, ocell = rivals[-1]
            # notebook order answers which value is meant: the later assignment, as a run top
            # to bottom gives it. Follow it, and say so: serialising the two branches with
            # `after` would only slow the pipeline down.
            self.diags.append(
                warning(
                    codes.AMBIGUOUS_DEFINITION,
                    f"step `{reader}` reads `{var}` (cell {cell}, line {line}), which steps `{other}` "
                    f"(cell {ocell}) and `{src}` (cell {bcell}) both assign with no order between them; "
                    f"it gets `{src}`'s, as the notebook run top to bottom does",
                    self.steps[reader].inp.location,
                    f"if step `{reader}` should read `{other}`'s `{var}`, rename one of the two "
                    f"(e.g. `{var}_{other.replace('-', '_')}`)",
                    related=(self.cell_at(cell, line), self.cell_at(ocell), self.cell_at(bcell)),
                )
            )

    def check_unmovable(self) -> None:
        done: set[tuple[str, str]] = set()
        for name in self.steps:
            st = self.steps[name]
            for var, src in sorted(st.inputs.items()):
                if (src, var) in done:
                    continue
                done.add((src, var))
                cell = st.input_cells[var]
                hint = self.unmovable(var, cell)
                if hint is None:
                    continue
                what, line, fix = hint
                self.diags.append(
                    warning(
                        codes.UNMOVABLE_VALUE,
                        f"step `{src}` passes `{var}` to step `{name}`, but `{var}` is {what} "
                        f"(cell {cell}, line {line}), which can't be saved and loaded in another step",
                        self.steps[src].inp.location,
                        fix,
                        related=(self.cell_at(cell, line),),
                    )
                )

    def unmovable(self, var: str, cell: int) -> tuple[str, int, str] | None:
        flow = self.flows[cell]
        for u in flow.unmovable:
            if u.name == var:
                return (u.what, u.line, u.fix)
        for v, func, line in reversed(flow.calls):
            if v != var:
                continue
            b = self.resolve(func, cell, self.owner.get(cell, "")).binding
            if b is not None and func in self.flows[b.cell].generators:
                return ("a generator", line, "materialize it with list() before the step ends")
            break
        return None


def _close(name: str, known: Mapping[int, list[str]]) -> str | None:
    import difflib

    # a ratio of 0.8 needs lengths within a quarter of each other: don't compare the rest
    spread = max(1, len(name) // 4)
    candidates = [
        n for size in range(len(name) - spread, len(name) + spread + 1) for n in known.get(size, ())
    ]
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    return found[0] if found else None


def make_plan(
    *,
    cells: Mapping[int, str],
    setup: Sequence[int],
    steps: Sequence[StepInput],
    parameters: Sequence[str],
    parameters_cell: int | None,
    metrics: Sequence[str],
    manifest_path: str,
    notebook_path: str,
    parameter_locations: Mapping[str, Location] | None = None,
    metric_locations: Mapping[str, Location] | None = None,
    setup_location: Location | None = None,
) -> tuple[Plan, list[Diagnostic]]:
    """The plan of a notebook's steps, and what is wrong with its data flow.

    ``cells`` maps notebook cell numbers (1-based, counting every cell) to the sources of the
    code cells. Diagnostics about a step are located at its manifest key, with the notebook
    cell and line in ``related``; those about setup at ``setup_location`` (default: the
    manifest file). Never raises for any source text: a cell that isn't Python is NBF706.
    """
    planner = _Planner(
        cells,
        setup,
        steps,
        parameters,
        parameters_cell,
        metrics,
        manifest_path,
        notebook_path,
        parameter_locations or {},
        metric_locations or {},
        setup_location,
    )
    plan = planner.run()
    return plan, planner.diags
