"""`nbflow init NOTEBOOK`: propose an `nbflow.yaml` for a notebook and write it beside it.

A notebook with Kale's cell tags or `kubeflow_notebook` metadata is imported (`nbflow.authoring.kale`);
any other notebook gets a proposal made from its structure:

- **setup**: the leading code cells (the parameters cell and `pip install` cells may sit among
  them) that only import, define functions and classes, assign UPPER_CASE constants, call
  configuration functions of imported modules (`warnings.filterwarnings(...)`) or run
  `%matplotlib`-style magics.
- **parameters**: the literals assigned in the cell tagged `parameters` (papermill's
  convention), in the short form (`C: 1.0`). Without a tagged cell, the first cell, before any
  work, that only assigns literals (of a parameter type) to names later cells read and never
  reassign is proposed as `parametersCell`, marked TODO.
- **steps**, from markdown headings when the notebook has any after setup: each heading of
  the shallowest level that occurs more than once (or of the only level there) starts a step
  named after its text (a DNS label, de-duplicated). Without headings, from data flow: a code
  cell starts a new step when it defines a name that a later cell reads, that the current step
  does not define yet, and it neither reassigns nor mutates a name of the current step
  (`df = df.dropna()` stays with the cell that made `df`); cells that define nothing read
  later (plots, prints) join the current step. Such steps are named after the first new name.
  While there are more than 8, the smallest joins the neighbour it exchanges more values with,
  so that the steps left are cut where few values cross.
- **skip**: `pip install` cells, and empty or scratch cells after the last step's work (a
  scratch cell defines nothing and is one expression without calls, like `X.shape`, or says
  `scratch`/`debug` in a comment).
- **metrics**: names assigned in the last step (else in any step) that look like one
  (`accuracy`, `val_loss`, `f1`, `rmse`...), with the goal their name suggests (reversed for a
  negated one: `negative_mse` is maximized).
- **requirements**: the distributions of the modules the pipeline's cells import.

Guesses carry `# TODO: check`; what init could not decide carries `# TODO: ...`. The manifest is
written by hand-formatting (`render`, in `nbflow.authoring.init_yaml`), validated, and written even when it
does not validate (the caller exits 1 then).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.authoring.guesses import (
    DNS_MAX,
    default_image,
    guess_requirements,
    imported_modules,
    literal_assignments,
    metric_goal,
    pip_installs,
    slug,
    unique,
)
from nbflow.authoring.init_yaml import Draft, DraftStep, cell_spec, render, scalar, schema_ref
from nbflow.errors import UsageError

if TYPE_CHECKING:
    from nbflow.authoring.kale import KaleNote
    from nbflow.dataflow.cell_flow import CellFlow
    from nbflow.diagnostics import Report
    from nbflow.load.notebook import Cell, Notebook

__all__ = [
    "Draft",
    "DraftStep",
    "InitResult",
    "cell_spec",
    "init",
    "propose",
    "render",
    "scalar",
    "schema_ref",
    "slug",
]

# -- the proposal for a plain notebook --------------------------------------------------------------

_SETUP_MAGICS = {"matplotlib", "load_ext", "reload_ext", "autoreload", "config"}
_CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SCRATCH = re.compile(r"#.*\b(scratch|debug|tmp|temp|quick look|sanity check)\b", re.I)


def _headings(source: str) -> list[tuple[int, str]]:
    """(level, text) of the markdown headings of a cell (ATX and setext), outside code fences."""
    out: list[tuple[int, str]] = []
    fence = False
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        if fence:
            continue
        m = re.match(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$", line)
        if m and m.group(2).strip():
            out.append((len(m.group(1)), m.group(2)))
        elif (
            line.strip()
            and not line.lstrip().startswith(("-", "*", ">", "|"))
            and i + 1 < len(lines)
            and re.match(r"^ {0,3}(=+|-{2,})\s*$", lines[i + 1])
        ):
            out.append((1 if "=" in lines[i + 1] else 2, line.strip()))
    return out


def _heading_name(text: str) -> str:
    text = re.sub(r"<[^>]*>", "", text)  # <a id='x'></a>
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [text](url)
    text = re.sub(r"[*_`~]", " ", text)
    text = re.sub(r"^\s*\d+(\.\d+)*[.):]?\s+", "", text)  # "1. Load" -> "Load"
    return text.strip()


def _setup_like(
    cell: Cell, flow: CellFlow, known: set[str], modules: set[str], params: set[str]
) -> bool:
    """Whether a cell only imports, defines functions/classes/constants or configures modules."""
    if flow.syntax_error is not None or flow.unmovable or set(flow.defines) & params:
        return False
    if not set(flow.reads) <= known | params:
        return False
    lines = []
    for line in cell.source.splitlines():
        s = line.strip()
        if s.startswith("%") and not s.startswith("%%"):
            if s[1:].split(" ")[0] not in _SETUP_MAGICS:
                return False
            lines.append("")
        else:
            lines.append(line)
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return False
    cell_modules = set(modules)
    for name, stmt_text in flow.import_statements.items():
        if stmt_text.lstrip().startswith("import "):
            cell_modules.add(name)
    for stmt in tree.body:
        if isinstance(
            stmt,
            ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
        ):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if all(_module_setting(t, cell_modules) for t in targets):
                continue  # plt.rcParams["figure.figsize"] = ..., pd.options.display.x = ...
            names = [n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            if not names or not all(isinstance(t, ast.Name | ast.Tuple) for t in targets):
                return False
            if all(_CONSTANT.match(n.id) for n in names):
                continue
            return False  # `sales = [3, 4]` is data: it belongs to a step
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            root = stmt.value.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if (
                isinstance(root, ast.Name)
                and root.id in cell_modules
                and root is not stmt.value.func
            ):
                continue  # warnings.filterwarnings(...), np.random.seed(0), plt.style.use(...)
        return False
    return True


def _module_setting(target: ast.expr, modules: set[str]) -> bool:
    """Whether an assignment target is an attribute or item of an imported module: a setting
    of that module (`plt.rcParams[...]`, `pd.options.display.max_rows`), not data."""
    node = target
    if not isinstance(node, ast.Attribute | ast.Subscript):
        return False
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id in modules


def _is_scratch(cell: Cell, flow: CellFlow | None) -> bool:
    if not cell.source.strip():
        return True
    if flow is None or flow.defines or flow.syntax_error is not None:
        return False
    if _SCRATCH.search(cell.source):
        return True
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    # a lone expression with no call in it only looks at something: `X.shape`, `model`
    return (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and not any(isinstance(n, ast.Call) for n in ast.walk(body[0]))
    )


def propose(nb: Notebook, *, name: str, folder: Path) -> Draft:
    """The manifest for a notebook without Kale tags, from its structure (see the module doc)."""
    from nbflow.dataflow.cell_flow import analyse_cell

    draft = Draft(name=name, notebook=Path(nb.path).name, origin="structure")
    flows = {c.number: analyse_cell(c.number, c.source) for c in nb.code_cells if c.source.strip()}
    pcell = _parameters(nb, draft, flows)
    pip_cells = {
        c.number: got for c in nb.code_cells if (got := pip_installs(c.source)) is not None
    }
    body = _setup(nb, draft, flows, skip={*pip_cells, *([pcell] if pcell else [])})
    _skip(nb, draft, body, flows, pip_cells)
    if not body:
        draft.steps.append(DraftStep(name="main", cells=[]))
        draft.todo(("steps",), "no code cell does any work: give this step the cells to run")
    elif not _steps_from_headings(nb, draft, body):
        _steps_from_data_flow(draft, body, flows)
    _metrics(draft, flows)
    pipeline_cells = [*draft.setup, *(c for s in draft.steps for c in s.cells)]
    mods = imported_modules(flows[c] for c in pipeline_cells if c in flows)
    draft.requirements = guess_requirements(mods, folder)
    for pkgs in pip_cells.values():
        for p in pkgs:
            if p.lower() not in (r.lower() for r in draft.requirements):
                draft.requirements.append(p)
    if draft.requirements:
        draft.todo(("requirements",), "check: guessed from the imports; pin versions you rely on")
    draft.image = default_image()
    draft.todo(("image",), "check: the image each step runs in, with requirements installed on top")
    _hints(draft, pcell)
    return draft


def _literal_cell(nb: Notebook, flows: dict[int, CellFlow]) -> Cell | None:
    """The first code cell, before any cell that does work, that only assigns literals to
    names later cells read and none reassigns (`test_size = 0.2`, `C = 1.0`): the run's
    settings, though not tagged `parameters`."""
    from nbflow.check.manifest import infer_type

    for c in nb.code_cells:
        flow = flows.get(c.number)
        if flow is None or pip_installs(c.source) is not None:
            continue
        values, other = literal_assignments(c.source)
        if other or not values:
            if flow.defines and not flow.imports and not flow.functions:
                return None  # work has started: later literals are that work's
            continue
        names = set(values)
        later = [f for n, f in flows.items() if n > c.number]
        read = (
            set().union(*(set(f.reads) | set(f.optional_reads) for f in later)) if later else set()
        )
        again = set().union(*(set(f.defines) for f in later)) if later else set()
        if (
            names & read
            and not names & again
            # a parameter is one of the manifest's types: a tuple of labels is not a setting
            and all(infer_type(v) and not k.startswith("_") for k, v in values.items())
        ):
            return c
        return None
    return None


def _parameters(nb: Notebook, draft: Draft, flows: dict[int, CellFlow]) -> int | None:
    """The literals of the cell tagged `parameters` (else of the cell `_literal_cell` finds);
    returns that cell's number."""
    tagged = [c for c in nb.code_cells if "parameters" in c.tags]
    if not tagged:
        found = _literal_cell(nb, flows)
        if found is None:
            return None
        draft.parameters_cell = found.number
        draft.todo(
            ("parametersCell",),
            f"check: cell {found.number} only assigns constants, so it is proposed as the "
            "parameters cell (a run can set them); tag it `parameters` and drop this line, "
            "or remove it to keep them fixed",
        )
        draft.parameters.update(literal_assignments(found.source)[0])
        return found.number
    pcell = tagged[0].number
    values, other = literal_assignments(tagged[0].source)
    if len(tagged) > 1:
        draft.parameters_cell = pcell
        others = ", ".join(str(c.number) for c in tagged[1:])
        draft.todo(
            ("parametersCell",), f"cell{'s' * (len(tagged) > 2)} {others} also tagged `parameters`"
        )
    if other:
        draft.todo(
            ("parameters",),
            f"cell {pcell} does more than assign literals (line {other[0]}): move that code to setup or a step",
        )
    draft.comment(("parameters",), f"assigned in cell {pcell}, tagged `parameters`")
    for key, value in values.items():
        if value is None:
            draft.todo(("parameters",), f"`{key}` is None in cell {pcell}: give it a typed default")
        else:
            draft.parameters[key] = value
    return pcell


def _setup(nb: Notebook, draft: Draft, flows: dict[int, CellFlow], skip: set[int]) -> list[Cell]:
    """Fill setup with the leading setup-like cells; return the code cells after them (the body)."""
    known: set[str] = set()
    modules: set[str] = set()
    body: list[Cell] = []
    for c in nb.code_cells:
        flow = flows.get(c.number)
        if c.number in skip or flow is None:  # the parameters cell, pip installs, empty cells
            continue
        if not body and _setup_like(c, flow, known, modules, set(draft.parameters)):
            draft.setup.append(c.number)
            known |= set(flow.defines) | set(flow.imports)
            modules |= {
                n for n, s in flow.import_statements.items() if s.lstrip().startswith("import ")
            }
        else:
            body.append(c)
    return body


def _skip(
    nb: Notebook,
    draft: Draft,
    body: list[Cell],
    flows: dict[int, CellFlow],
    pip_cells: dict[int, list[str]],
) -> None:
    """Skip pip installs, and the empty and scratch cells after the last cell that does work
    (popped from `body`)."""
    last = body[-1].number if body else 0
    trailing = [c.number for c in nb.code_cells if c.number > last and not c.source.strip()]
    while len(body) > 1 and _is_scratch(body[-1], flows.get(body[-1].number)):
        trailing.append(body.pop().number)
    draft.skip = sorted({*trailing, *pip_cells})
    for number, pkgs in sorted(pip_cells.items()):
        if pkgs:
            draft.comment(
                ("skip",), f"cell {number} pip-installs {', '.join(pkgs)}: see requirements"
            )


def _metrics(draft: Draft, flows: dict[int, CellFlow]) -> None:
    """Names assigned in the steps that look like a metric (the last step's, else any step's)."""
    last = draft.steps[-1] if draft.steps else None
    cells = list(last.cells) if last else []
    if not any(metric_goal(v) for n in cells if n in flows for v in flows[n].defines):
        cells = [n for s in draft.steps for n in s.cells]
    functions = {f for n in cells if n in flows for f in flows[n].functions}
    for n in cells:
        for var in flows[n].defines if n in flows else ():
            goal = metric_goal(var)
            if (
                goal
                and var not in functions
                and var not in draft.metrics
                and not var.startswith("_")
            ):
                draft.metrics[var] = goal
                draft.todo(("metrics", var), f"check (guessed from the name; assigned in cell {n})")


def _hints(draft: Draft, pcell: int | None) -> None:
    """Commented-out examples where init found nothing to write."""
    if not draft.metrics:
        draft.notes["metrics"] = [
            "metrics: none found. Name the variable a step computes that measures a run:",
            "  accuracy: maximize",
        ]
    if not draft.parameters and pcell is None:
        draft.notes["parameters"] = [
            "parameters: tag the cell that assigns the run's settings `parameters`, then list",
            "them here with their defaults (C: 1.0)",
        ]
    if draft.parameters and draft.metrics:
        draft.notes["tuning"] = [
            "To tune the parameters (`nbflow tune`, Katib), add a search space:",
            "tuning:",
            f"  objective: {next(iter(draft.metrics))}",
            "  algorithm: tpe",
            "  maxTrials: 12",
            "  search:",
            f"    {next(iter(draft.parameters))}: {{min: ..., max: ...}}",
        ]


def _steps_from_headings(nb: Notebook, draft: Draft, body: list[Cell]) -> bool:
    """Steps at the headings between setup and the last body cell; False when there are none."""
    start, end = max([*draft.setup, 0]), body[-1].number
    found = {
        c.number: _headings(c.source)
        for c in nb.cells
        if c.type == "markdown" and start < c.number < end
    }
    levels = [level for hs in found.values() for level, _ in hs]
    if not levels:
        return False
    repeated = sorted(lv for lv in set(levels) if levels.count(lv) > 1)
    level = repeated[0] if repeated else min(levels)
    starts = {n: at[0] for n, hs in found.items() if (at := [t for lv, t in hs if lv == level])}
    before = [
        t
        for c in nb.cells
        if c.type == "markdown" and c.number < body[0].number
        for _, t in _headings(c.source)
    ]
    text: str | None = before[-1] if before else None
    taken: set[str] = set()
    current: DraftStep | None = None
    in_body = {c.number for c in body}
    for c in nb.cells:
        if c.number in starts:
            current, text = None, starts[c.number]
        elif c.number in in_body:
            if current is None:
                title = _heading_name(text) if text is not None else ""
                current = DraftStep(name=unique(slug(title or draft.name), taken), cells=[])
                draft.steps.append(current)
                if title:
                    draft.comment(("steps", current.name), f'from the heading "{title}"')
                else:  # the cells before the first heading: no heading names them
                    draft.todo(("steps", current.name), "name this step: no heading above it")
            current.cells.append(c.number)
    return True


def _steps_from_data_flow(draft: Draft, body: list[Cell], flows: dict[int, CellFlow]) -> None:
    taken: set[str] = set()
    later_reads: list[set[str]] = []
    acc: set[str] = set()
    for c in reversed(body):
        later_reads.append(set(acc))
        f = flows[c.number]
        acc |= set(f.reads) | set(f.optional_reads)
        for fn_reads in f.functions.values():
            acc |= fn_reads
    later_reads.reverse()
    current: DraftStep | None = None
    defined: set[str] = set()
    for c, later in zip(body, later_reads, strict=True):
        f = flows[c.number]
        new = [n for n in f.defines if n not in defined and n in later]
        touches = (set(f.defines) | set(f.mutations)) & defined
        if current is None or (new and not touches):
            base = new[0] if new else (f.defines[0] if f.defines else "")
            current = DraftStep(name=unique(slug(base), taken), cells=[])
            draft.steps.append(current)
            why = f" (named after `{base}`, which it computes)" if base else ""
            draft.todo(("steps", current.name), f"name this step{why}")
            defined = set()
        current.cells.append(c.number)
        defined |= set(f.defines)
    _at_most(draft, flows, MAX_STEPS)


MAX_STEPS = 8


def _at_most(draft: Draft, flows: dict[int, CellFlow], limit: int) -> None:
    """Join data-flow steps until there are at most `limit`: each time the smallest step (in
    cells; the first of equals) joins the neighbour it exchanges more values with, so that
    the steps left are cut where few values cross."""

    def reads(n: int) -> set[str]:
        f = flows[n]
        return set(f.reads) | set(f.optional_reads) | set().union(*f.functions.values())

    def crossing(i: int) -> int:
        """Values made at or before step i and read after it."""
        before = {v for s in draft.steps[: i + 1] for n in s.cells for v in flows[n].defines}
        after = set().union(*(reads(n) for s in draft.steps[i + 1 :] for n in s.cells))
        return len(before & after)

    while len(draft.steps) > limit:
        i = min(range(len(draft.steps)), key=lambda k: (len(draft.steps[k].cells), k))
        if i == 0:
            j = 1
        elif i == len(draft.steps) - 1:
            j = i - 1
        else:
            j = i - 1 if crossing(i - 1) >= crossing(i) else i + 1
        first, second = sorted((i, j))
        keep, gone = draft.steps[first], draft.steps[second]
        keep.cells.extend(gone.cells)
        del draft.steps[second]
        draft.comments.pop(("steps", gone.name), None)


# -- the command ----------------------------------------------------------------------------------


@dataclass
class InitResult:
    manifest: Path
    draft: Draft
    report: Report
    kale: bool
    notes: list[KaleNote]
    stripped: bool | None  # None: not asked; False: asked but not done


def init(
    notebook: str | Path,
    *,
    name: str | None = None,
    force: bool = False,
    strip_kale_tags: bool = False,
) -> InitResult:
    """Write `nbflow.yaml` beside `notebook` and validate it. Raises UsageError when the notebook
    can't be read or the manifest exists (without `force`); a manifest that does not validate is
    still written (see `InitResult.report`)."""
    from nbflow.authoring import kale
    from nbflow.check.manifest import DNS_LABEL
    from nbflow.check.validate import MANIFEST_NAME, shown_path, validate_manifest
    from nbflow.load.notebook import NotebookError, load_notebook

    path = Path(notebook)
    if path.is_dir():
        raise UsageError(
            f"{shown_path(path)} is a folder: name the notebook (.ipynb) to start from"
        )
    if not path.exists():
        raise UsageError(f"no such notebook: {shown_path(path)}")
    target = path.parent / MANIFEST_NAME
    if target.exists() and not force:
        raise UsageError(f"{shown_path(target)} already exists: pass --force to overwrite it")
    if name is not None and (len(name) > DNS_MAX or not DNS_LABEL.fullmatch(name)):
        raise UsageError(
            f"--name `{name}` is not a DNS-1123 label (lowercase letters, digits and `-`)"
        )
    try:
        nb = load_notebook(path, shown_path(path))
    except NotebookError as exc:
        raise UsageError(exc.diagnostic.message) from None

    draft, notes, is_kale = _draft(path, nb, name)
    target.write_text(render(draft, nb, schema_ref(path.parent)), encoding="utf-8")
    report, _ = validate_manifest(target)
    stripped: bool | None = None
    if strip_kale_tags:
        # keep the tags while the manifest has errors: they are what it was made from
        stripped = kale.strip_kale(path) if is_kale and report.ok else False
    return InitResult(target, draft, report, is_kale, notes, stripped)


def _draft(path: Path, nb: Notebook, name: str | None) -> tuple[Draft, list[KaleNote], bool]:
    """The draft manifest of the notebook at `path`: from its Kale tags when it has them."""
    from nbflow.authoring import kale

    notes: list[KaleNote] = []
    is_kale = kale.uses_kale(nb)
    if is_kale:
        draft, notes = kale.import_kale(nb, folder=path.parent, name=name)
    else:
        draft = propose(nb, name=name or slug(path.stem, fallback="pipeline"), folder=path.parent)
    if name is not None:
        draft.name = name
    return draft, notes, is_kale


def draft_text(notebook: str | Path, *, notebook_text: str | None = None) -> str:
    """The manifest `init` would write beside `notebook`, as text, without writing it (the
    JupyterLab extension shows it before the user creates the pipeline). `notebook_text` is
    the notebook's unsaved content. Raises UsageError when the notebook can't be read."""
    from nbflow.check.validate import shown_path
    from nbflow.load.notebook import NotebookError, load_notebook

    path = Path(notebook)
    try:
        nb = load_notebook(path, shown_path(path), text=notebook_text)
    except NotebookError as exc:
        raise UsageError(exc.diagnostic.message) from None
    draft, _, _ = _draft(path, nb, None)
    return render(draft, nb, schema_ref(path.parent))
