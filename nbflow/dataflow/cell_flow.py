"""What one notebook cell reads and defines: the data-flow facts the plan is built from.

:func:`analyse_cell` parses one code cell and returns a :class:`CellFlow`: the names it assigns at
top level (``defines``), the names it needs from before it (``reads``: read before, or without,
being assigned in the cell), what it imports, deletes, star-imports, the globals each of its
functions reads, and hints about values that cannot cross a step boundary (open files,
generators, sockets, connections, locks, threads).

Scoping follows Python: names bound inside functions, lambdas, comprehensions and class bodies
are local to them; a function's body is not run where it is defined but where it is called, so
the globals it reads are recorded per function (``functions``) and become reads of the cell only
where the cell refers to it (the plan does the same across cells). Mutations count as
definitions: ``df["a"] = 1``, ``x += 1``, ``del df["a"]``, ``model.fit(X, y)``, ``lst.append(1)``
and calls with ``inplace=True`` read the object and define it again.

IPython syntax (``%magic``, ``%%cell_magic``, ``!cmd``, ``x = !cmd``, ``obj?``) becomes Python
first (:mod:`nbflow.dataflow.ipython_syntax`). A cell is tried as plain Python, then through a small line
transformer that produces what IPython's ``TransformerManager`` produces for the usual forms, and
only then through IPython itself (imported lazily, since the import costs about a tenth of a
second). ``%%time``, ``%%capture`` and ``%%prun`` bodies and ``%time`` statements are analysed
as code; ``%%timeit`` and ``%timeit`` only read; shell and other cell magics read the variables
they interpolate (``{expr}``, ``$name``) when those exist. A cell that is not Python even then is data: its
``syntax_error`` is set and it reads and defines nothing.

Builtins are not reads: they are kept in ``optional_reads``, with the variables a shell command
interpolates, which the plan treats as reads only when some cell does define them. IPython's own
names (``display``, ``get_ipython``, ``In``, ``Out``, ``_``, ``_i3``...) are never reads.
``%run script.py`` and ``%store -r`` bind names no one can see: they count as star imports.
Names read inside ``try`` blocks that catch ``NameError`` (or everything) are optional reads too:
``try: model`` / ``except NameError: model = fit()`` needs no ``model`` from before.
The names of a scope (a comprehension, lambda or called function) are read in sorted order.

This module walks the top level of a cell; the scopes inside it are
:mod:`nbflow.dataflow.scopes`, and the values that can't cross a step boundary
:mod:`nbflow.dataflow.unmovable`.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from nbflow.dataflow.ipython_syntax import (
    INTERPOLATED,
    MAYBE_IPYTHON,
    NO_EXPAND,
    PRUN_FLAGS,
    PY_CELL_MAGICS,
    READ_ONLY_MAGICS,
    TIMEIT_FLAGS,
    cell_magic_parts,
    fast_transform,
    ipython_transform,
    magic_call,
)
from nbflow.dataflow.scopes import (
    COMPS,
    FUNCS,
    Scope,
    class_scope,
    comprehension_scope,
    function_scope,
    visit_arguments,
)
from nbflow.dataflow.unmovable import dotted, unmovable_value

__all__ = ["BUILTINS", "CellFlow", "Unmovable", "analyse_cell", "is_builtin"]

BUILTINS: frozenset[str] = frozenset(dir(builtins)) | {
    "__builtins__",
    "__name__",
    "__doc__",
    "__spec__",
    "__loader__",
    "__package__",
    "__annotations__",
    # what IPython puts in every kernel's namespace
    "display",
    "get_ipython",
    "In",
    "Out",
    "_",
    "__",
    "___",
    "_i",
    "_ii",
    "_iii",
    "_ih",
    "_oh",
    "_dh",
    "exit",
    "quit",
}
_PYTHON_BUILTINS = frozenset(dir(builtins))
_HISTORY = re.compile(r"_i?\d+\Z")


def is_builtin(name: str) -> bool:
    """Whether ``name`` is there in every kernel without being assigned."""
    return name in BUILTINS or _HISTORY.match(name) is not None


@dataclass(frozen=True)
class Unmovable:
    """A name assigned a value that cannot be saved and loaded in another step."""

    name: str
    what: str  # "an open file", "a generator", ...
    line: int
    fix: str


@dataclass(frozen=True)
class CellFlow:
    """The names one cell reads and defines at top level. Treat the mappings as read-only."""

    number: int
    defines: tuple[str, ...] = ()  # assigned (or mutated) and still bound at the end, in order
    reads: tuple[str, ...] = ()  # needed from before the cell, in order of first read
    deletes: tuple[str, ...] = ()  # names `del`eted at top level
    imports: tuple[str, ...] = ()  # names bound by imports (modules are not data)
    star_imports: tuple[str, ...] = ()  # modules of `from m import *` (and `%run x.py`)
    star_import_lines: Mapping[str, int] = field(default_factory=dict)
    mutations: tuple[str, ...] = ()  # the names of `defines` that the cell only mutates
    optional_reads: tuple[str, ...] = ()  # builtins and interpolated names: reads if defined
    functions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    function_writes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    generators: frozenset[str] = frozenset()  # functions of this cell that contain `yield`
    calls: tuple[tuple[str, str, int], ...] = ()  # (var, function, line): `var = function(...)`
    import_statements: Mapping[str, str] = field(default_factory=dict)
    read_lines: Mapping[str, int] = field(default_factory=dict)
    define_lines: Mapping[str, int] = field(default_factory=dict)
    unmovable: tuple[Unmovable, ...] = ()
    syntax_error: tuple[str, int] | None = None  # (message, line in the cell)
    ipython: bool = False  # whether IPython syntax had to be turned into Python
    # names bound at the end of the cell to a display of other names (`ms = [m1, m2]`, `d =
    # {"a": m1}`) or to another name (`y = x`): the objects they may share
    aliases: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # names bound before the cell whose elements it changes through a loop variable
    # (`for f in frames: f["w"] = 1`): the plan finds what they hold where they were bound
    element_mutations: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _parse(source: str) -> ast.Module:
    return ast.parse(source)


_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError)


def _syntax_error(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, SyntaxError):
        return (exc.msg or "invalid syntax", max(exc.lineno or 1, 1))
    if isinstance(exc, RecursionError | MemoryError):
        return ("too deeply nested to analyse", 1)
    return (str(exc) or type(exc).__name__, 1)


# --------------------------------------------------------------------------------------------
# The top level of a cell, in evaluation order
# --------------------------------------------------------------------------------------------

# Methods that change their object in place: a call of one is a definition of the object.
MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        "fit",
        "partial_fit",
        "fit_transform",
        "fit_predict",
        "set_params",
        "load_state_dict",
    }
)
_SHUFFLERS = frozenset({"random.shuffle", "np.random.shuffle", "numpy.random.shuffle", "shuffle"})


def _catches_name_error(h: ast.ExceptHandler) -> bool:
    if h.type is None:
        return True
    types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
    return any(
        isinstance(t, ast.Name) and t.id in ("NameError", "Exception", "BaseException")
        for t in types
    )


# methods that put their arguments into the object
_INSERTERS = frozenset({"append", "extend", "insert", "add", "update", "setdefault"})
# calls that iterate over the elements of their arguments
_ELEMENT_WISE = frozenset({"enumerate", "zip", "reversed", "sorted", "list", "tuple", "iter"})


def _displayed_names(value: ast.expr) -> set[str]:
    """Names whose objects ``value`` holds as it is written: `[a, b]`, `{"k": a}`, `(a, [b])`,
    or `a` itself."""
    if isinstance(value, ast.Name):
        return {value.id}
    out: set[str] = set()
    if isinstance(value, ast.List | ast.Tuple | ast.Set):
        parts: list[ast.expr | None] = list(value.elts)
    elif isinstance(value, ast.Dict):
        parts = list(value.values)
    else:
        return out
    for part in parts:
        if isinstance(part, ast.Starred):
            part = part.value
        if isinstance(part, ast.Name):
            out.add(part.id)
        elif isinstance(part, ast.List | ast.Tuple | ast.Set | ast.Dict):
            out |= _displayed_names(part)
    return out


def _root(node: ast.expr) -> ast.Name | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node if isinstance(node, ast.Name) else None


class _Cell:
    """Walks a cell's top level in order, keeping what is bound so far."""

    def __init__(self) -> None:
        self.bound: dict[str, str] = {}  # name -> "data" | "mutated" | "function" | "import"
        self.defined: dict[str, int] = {}  # first line of each data definition, in order
        self.reads: dict[str, int] = {}
        self.optional: dict[str, int] = {}
        self.deletes: dict[str, int] = {}
        self.imports: dict[str, int] = {}
        self.import_statements: dict[str, str] = {}
        self.star: dict[str, int] = {}
        self.assigned: set[str] = set()  # names assigned, not only mutated
        self.functions: dict[str, frozenset[str]] = {}
        self.function_writes: dict[str, frozenset[str]] = {}
        self.generators: set[str] = set()
        self.calls: list[tuple[str, str, int]] = []
        self.unmovable: dict[str, Unmovable] = {}
        self.ipython = False
        self.soft = 0  # inside a `try` whose handler catches NameError
        self.members: dict[str, set[str]] = {}  # name -> names whose objects it may hold
        self.element_of: dict[str, set[str]] = {}  # loop variable -> the containers it runs over
        self.element_mutations: dict[str, int] = {}

    # -- names ------------------------------------------------------------------------------

    def load(self, name: str, line: int, seen: frozenset[str] = frozenset()) -> None:
        kind = self.bound.get(name)
        if kind is None:
            if name in _PYTHON_BUILTINS or self.soft:  # a read only if some cell defines it
                self.optional.setdefault(name, line)
            elif not is_builtin(name):
                self.reads.setdefault(name, line)
        elif kind == "function" and name not in seen:
            # calling (or passing on) a function of this cell runs its body here
            seen = seen | {name}
            for g in sorted(self.functions.get(name, ())):
                self.load(g, line, seen)
            for w in sorted(self.function_writes.get(name, ())):
                self.store(w, line)

    def store(self, name: str, line: int, kind: str = "data") -> None:
        if kind != "mutated":  # a new object: what the name held before is no longer shared
            self.members.pop(name, None)
            self.element_of.pop(name, None)
        if kind == "mutated" and self.bound.get(name) in ("data", "function"):
            kind = self.bound[name]
        self.bound[name] = kind
        if kind == "import":
            self.imports.setdefault(name, line)
        else:
            self.defined.setdefault(name, line)
            if kind != "mutated":
                self.assigned.add(name)
        if kind != "function":
            self.functions.pop(name, None)
            self.function_writes.pop(name, None)
            self.generators.discard(name)
        self.unmovable.pop(name, None)

    def mutate(self, node: ast.expr | None) -> None:
        root = _root(node) if node is not None else None
        if root is not None and self.bound.get(root.id) != "import":
            self.load(root.id, root.lineno)
            self.store(root.id, root.lineno, "mutated")
            self.mutate_shared(root.id, root.lineno, {root.id})

    def mutate_shared(self, name: str, line: int, seen: set[str]) -> None:
        """Changing ``name``'s object changes the names it may be (an element of a container,
        another name for the same object) and the containers that hold it."""
        for other in sorted(self.members.get(name, ())):
            if other not in seen and self.bound.get(other) not in ("import", "function"):
                seen.add(other)
                self.load(other, line)
                self.store(other, line, "mutated")
                self.mutate_shared(other, line, seen)
        for container in sorted(self.element_of.get(name, ())):
            if container not in seen:
                seen.add(container)
                if container not in self.members:  # what it holds was bound in another cell
                    self.element_mutations.setdefault(container, line)
                self.store(container, line, "mutated")

    def delete(self, name: str, line: int) -> None:
        self.load(name, line)
        self.bound.pop(name, None)
        self.deletes.setdefault(name, line)
        self.functions.pop(name, None)
        self.unmovable.pop(name, None)

    def free(self, names: Iterable[str], line: int) -> None:
        for n in sorted(names):
            self.load(n, line)

    # -- statements -------------------------------------------------------------------------

    def body(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        t = type(s)
        if t is ast.Expr:
            self.expr(s.value)  # type: ignore[attr-defined]
        elif t is ast.Assign:
            a: ast.Assign = s  # type: ignore[assignment]
            if isinstance(a.value, ast.Lambda) and all(isinstance(x, ast.Name) for x in a.targets):
                self.define_lambda(a.value, [x.id for x in a.targets], a.lineno)  # type: ignore[attr-defined]
                return
            self.expr(a.value)
            for target in a.targets:
                self.target(target)
            self.note_value(a.targets, a.value)
        elif t is ast.AugAssign:
            g: ast.AugAssign = s  # type: ignore[assignment]
            if isinstance(g.target, ast.Name):
                self.load(g.target.id, g.target.lineno)
                self.expr(g.value)
                self.store(g.target.id, g.target.lineno, "mutated")
                held = _displayed_names(g.value) - {g.target.id}
                if held and not isinstance(g.value, ast.Name):  # `models += [model]`
                    self.members.setdefault(g.target.id, set()).update(held)
            else:
                self.expr(g.target.value)
                if isinstance(g.target, ast.Subscript):
                    self.expr(g.target.slice)
                self.expr(g.value)
                self.mutate(g.target)
        elif t is ast.AnnAssign:
            n: ast.AnnAssign = s  # type: ignore[assignment]
            if n.value is not None:
                self.expr(n.value)
            self.expr(n.annotation)
            if n.value is not None:
                self.target(n.target)
                self.note_value([n.target], n.value)
            elif not isinstance(n.target, ast.Name):
                self.expr(n.target)
        elif t in FUNCS:
            self.define_function(s)  # type: ignore[arg-type]
        elif t is ast.ClassDef:
            self.define_class(s)  # type: ignore[arg-type]
        elif t is ast.For or t is ast.AsyncFor:
            f: ast.For = s  # type: ignore[assignment]
            self.expr(f.iter)
            self.target(f.target)
            self.note_loop(f.target, f.iter)
            self.body(f.body)
            self.body(f.orelse)
        elif t is ast.While:
            w: ast.While = s  # type: ignore[assignment]
            self.expr(w.test)
            self.body(w.body)
            self.body(w.orelse)
        elif t is ast.If:
            i: ast.If = s  # type: ignore[assignment]
            self.expr(i.test)
            self.body(i.body)
            self.body(i.orelse)
        elif t is ast.With or t is ast.AsyncWith:
            wi: ast.With = s  # type: ignore[assignment]
            for item in wi.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars)
                    self.note_value([item.optional_vars], item.context_expr)
            self.body(wi.body)
        elif t is ast.Try or t is ast.TryStar:
            tr: ast.Try = s  # type: ignore[assignment]
            # `try: model` / `except NameError: model = fit()`: a read that may fail is no need
            guarded = any(_catches_name_error(h) for h in tr.handlers)
            self.soft += guarded
            self.body(tr.body)
            self.soft -= guarded
            for h in tr.handlers:
                if h.type is not None:
                    self.expr(h.type)
                before = self.bound.get(h.name) if h.name else None
                if h.name:
                    self.bound[h.name] = "data"
                self.body(h.body)
                if h.name:  # Python unbinds the name when the handler ends
                    if before is None:
                        self.bound.pop(h.name, None)
                    else:
                        self.bound[h.name] = before
            self.body(tr.orelse)
            self.body(tr.finalbody)
        elif t is ast.Match:
            m: ast.Match = s  # type: ignore[assignment]
            self.expr(m.subject)
            for case in m.cases:
                self.pattern(case.pattern)
                if case.guard is not None:
                    self.expr(case.guard)
                self.body(case.body)
        elif t is ast.Delete:
            for target in s.targets:  # type: ignore[attr-defined]
                if isinstance(target, ast.Name):
                    self.delete(target.id, target.lineno)
                elif isinstance(target, ast.Tuple | ast.List):
                    for e in target.elts:
                        self.stmt(ast.Delete(targets=[e], lineno=e.lineno, col_offset=0))
                else:
                    self.expr(target.value)
                    if isinstance(target, ast.Subscript):
                        self.expr(target.slice)
                    self.mutate(target)
        elif t is ast.Import:
            for alias in s.names:  # type: ignore[attr-defined]
                name = alias.asname or alias.name.partition(".")[0]
                self.store(name, s.lineno, "import")
                stmt = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                self.import_statements[name] = stmt
        elif t is ast.ImportFrom:
            fr: ast.ImportFrom = s  # type: ignore[assignment]
            module = "." * (fr.level or 0) + (fr.module or "")
            for alias in fr.names:
                if alias.name == "*":
                    self.star.setdefault(module, fr.lineno)
                    continue
                name = alias.asname or alias.name
                self.store(name, fr.lineno, "import")
                stmt = f"from {module} import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else ""
                )
                self.import_statements[name] = stmt
        elif t is ast.Global or t is ast.Nonlocal or t is ast.Pass:
            pass
        else:  # Return, Raise, Assert, Break, Continue, ...
            for child in ast.iter_child_nodes(s):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.store(node.id, node.lineno)
        elif isinstance(node, ast.Tuple | ast.List):
            for e in node.elts:
                self.target(e)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        elif isinstance(node, ast.Attribute | ast.Subscript):
            self.expr(node.value)
            if isinstance(node, ast.Subscript):
                self.expr(node.slice)
            self.mutate(node)
        else:
            self.expr(node)

    def pattern(self, p: ast.pattern) -> None:
        """Reads and captures of a match pattern, in source order."""
        if isinstance(p, ast.MatchValue):
            self.expr(p.value)
        elif isinstance(p, ast.MatchSequence | ast.MatchOr):
            for q in p.patterns:
                self.pattern(q)
        elif isinstance(p, ast.MatchMapping):
            for k in p.keys:
                self.expr(k)
            for q in p.patterns:
                self.pattern(q)
            if p.rest:
                self.store(p.rest, p.lineno)
        elif isinstance(p, ast.MatchClass):
            self.expr(p.cls)
            for q in (*p.patterns, *p.kwd_patterns):
                self.pattern(q)
        elif isinstance(p, ast.MatchStar):
            if p.name:
                self.store(p.name, p.lineno)
        elif isinstance(p, ast.MatchAs):
            if p.pattern is not None:
                self.pattern(p.pattern)
            if p.name:
                self.store(p.name, p.lineno)

    def note_loop(self, target: ast.expr, it: ast.expr) -> None:
        """`for x in xs`: ``x`` is each element of ``xs`` in turn (also `xs.items()`,
        `enumerate(xs)`, `zip(xs, ys)`, a display `[a, b]`)."""
        containers: set[str] = set()
        held: set[str] = set()
        todo = [it]
        while todo:
            node = todo.pop()
            if isinstance(node, ast.Name):
                if node.id in self.members:
                    held |= self.members[node.id]
                containers.add(node.id)
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and f.attr in ("items", "values", "keys"):
                    todo.append(f.value)
                elif isinstance(f, ast.Name) and f.id in _ELEMENT_WISE:
                    todo.extend(node.args)
            elif isinstance(node, ast.List | ast.Tuple | ast.Set):
                held |= {e.id for e in node.elts if isinstance(e, ast.Name)}
        names = [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
        for name in names:
            if containers:
                self.element_of[name] = set(containers)
            if held:
                self.members[name] = set(held)

    def note_value(self, targets: list[ast.expr], value: ast.expr) -> None:
        shared = _displayed_names(value)
        for t in targets:  # `models["lr"] = model`: `models` holds `model` now
            root = _root(t) if isinstance(t, ast.Subscript | ast.Attribute) else None
            if root is not None and shared - {root.id}:
                self.members.setdefault(root.id, set()).update(shared - {root.id})
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            return
        if shared:
            for name in names:
                self.members[name] = shared - {name}
        hint = unmovable_value(value, self.generators)
        for name in names:
            if hint is not None:
                self.unmovable[name] = Unmovable(name, hint[0], value.lineno, hint[1])
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                self.calls.append((name, value.func.id, value.lineno))

    def define_function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in fn.decorator_list:
            self.expr(d)
        self.arguments(fn.args, fn.lineno)
        if fn.returns is not None:
            self.expr(fn.returns)
        scope = function_scope(fn)
        self.store(fn.name, fn.lineno, "function")
        self.record(fn.name, scope)

    def define_lambda(self, fn: ast.Lambda, names: list[str], line: int) -> None:
        self.arguments(fn.args, line)
        scope = function_scope(fn)
        for name in names:
            self.store(name, line, "function")
            self.record(name, scope)

    def record(self, name: str, scope: Scope) -> None:
        self.functions[name] = frozenset(n for n in scope.free() if not is_builtin(n))
        self.function_writes[name] = frozenset(scope.global_writes)
        if scope.generator:
            self.generators.add(name)
        else:
            self.generators.discard(name)

    def define_class(self, cls: ast.ClassDef) -> None:
        for e in (*cls.decorator_list, *cls.bases, *cls.keywords):
            self.expr(e)
        scope = class_scope(cls)
        self.free(scope.free(), cls.lineno)  # the class body runs now
        self.store(cls.name, cls.lineno, "function")
        self.functions[cls.name] = frozenset(n for n in scope.deferred if not is_builtin(n))
        self.function_writes[cls.name] = frozenset(scope.global_writes)

    def arguments(self, args: ast.arguments, line: int) -> None:
        scope = Scope("function")
        visit_arguments(scope, args)
        self.free(scope.loaded | scope.nested, line)

    # -- expressions ------------------------------------------------------------------------

    def expr(self, node: ast.AST) -> None:
        t = type(node)
        if t is ast.Name:
            if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                self.load(node.id, node.lineno)  # type: ignore[attr-defined]
            else:
                self.store(node.id, node.lineno)  # type: ignore[attr-defined]
            return
        if t is ast.Constant:
            return
        if t is ast.Attribute:
            self.expr(node.value)  # type: ignore[attr-defined]
            return
        if t is ast.Call:
            self.call(node)  # type: ignore[arg-type]
            return
        if t is ast.NamedExpr:
            self.expr(node.value)  # type: ignore[attr-defined]
            self.store(node.target.id, node.lineno)  # type: ignore[attr-defined]
            return
        if t is ast.Lambda:
            lam: ast.Lambda = node  # type: ignore[assignment]
            self.arguments(lam.args, lam.lineno)
            self.free(function_scope(lam).free(), lam.lineno)  # most are called right away
            return
        if t in COMPS:
            comp: ast.ListComp = node  # type: ignore[assignment]
            self.expr(comp.generators[0].iter)
            scope = comprehension_scope(comp)
            self.free(scope.free(), comp.lineno)
            for name in sorted(scope.walrus):
                self.store(name, comp.lineno)
            return
        for child in ast.iter_child_nodes(node):
            self.expr(child)

    def call(self, node: ast.Call) -> None:
        magic = magic_call(node)
        if magic is not None:
            self.magic(magic[0], magic[1], node.lineno)
            return
        self.expr(node.func)
        for a in node.args:
            self.expr(a)
        for k in node.keywords:
            self.expr(k.value)
        f = node.func
        if isinstance(f, ast.Attribute) and (
            f.attr in MUTATORS
            or any(
                k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
        ):
            self.mutate(f.value)
            root = _root(f.value)
            if root is not None and f.attr in _INSERTERS:  # `models.append(model)`
                held: set[str] = set()
                for a in (*node.args, *(k.value for k in node.keywords)):
                    held |= _displayed_names(a)
                if held - {root.id}:
                    self.members.setdefault(root.id, set()).update(held - {root.id})
        elif node.args and dotted(f) in _SHUFFLERS:
            self.mutate(node.args[0])

    # -- IPython ----------------------------------------------------------------------------

    def magic(self, method: str, args: list[str], line: int) -> None:
        self.ipython = True
        if method == "run_line_magic" and len(args) == 2:
            name, arg = args
            if name in ("time", "prun"):
                self.code(PRUN_FLAGS.sub("", arg) if name == "prun" else arg, line)
            elif name == "timeit":
                self.code(TIMEIT_FLAGS.sub("", arg), line, read_only=True)
            elif name == "store" and arg.split()[:1] == ["-r"]:
                names = arg.split()[1:]
                for n in names:
                    if n.isidentifier():
                        self.store(n, line)
                if not names:  # restores every stored variable: names unknown
                    self.star.setdefault("%store -r", line)
            elif name == "run":  # runs a script in the namespace: names unknown
                self.star.setdefault(f"%run {arg}".strip(), line)
            elif name not in NO_EXPAND:
                self.interpolated(arg, line)
        elif method in ("system", "getoutput") and args:
            self.interpolated(args[0], line)
        elif method == "run_cell_magic" and len(args) == 3:
            self.cell_magic(args[0], args[1], args[2], line)  # a body that isn't code: no flow

    def code(self, source: str, line: int, *, read_only: bool = False) -> None:
        try:
            tree = _parse(source)
        except _PARSE_ERRORS:
            return
        ast.increment_lineno(tree, line - 1)
        if read_only:
            scope = Scope("function")
            for s in tree.body:
                scope.visit(s)
            self.free(scope.free() - scope.bound, line)
        else:
            self.body(tree.body)

    def interpolated(self, text: str, line: int) -> None:
        if "$" not in text and "{" not in text:
            return
        for m in INTERPOLATED.finditer(text):
            if m.group(1):
                if m.group(1) not in self.bound:
                    self.optional.setdefault(m.group(1), line)
                continue
            try:
                tree = ast.parse(m.group(2).strip(), mode="eval")
            except _PARSE_ERRORS:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id not in self.bound:
                    self.optional.setdefault(node.id, line)

    def cell_magic(
        self, name: str, first_line: str, body: str, line: int
    ) -> tuple[str, int] | None:
        """A ``%%name first_line`` cell whose body starts on the line after ``line``.

        Returns the body's syntax error, if any, with its line in the cell.
        """
        self.ipython = True
        if name in PY_CELL_MAGICS or name in READ_ONLY_MAGICS:
            if name == "capture":
                words = [w for w in first_line.split() if not w.startswith("-")]
                if words and words[0].isidentifier():
                    self.store(words[0], line)
            flow = _analyse(0, body)
            if flow.syntax_error is not None:
                msg, at = flow.syntax_error
                return (msg, at + line)
            self.merge(flow, line, read_only=name in READ_ONLY_MAGICS)
        return None

    def merge(self, flow: CellFlow, offset: int, *, read_only: bool) -> None:
        for name in flow.reads:
            self.load(name, flow.read_lines.get(name, 1) + offset)
        for name in flow.optional_reads:
            if name not in self.bound:
                self.optional.setdefault(name, flow.read_lines.get(name, 1) + offset)
        if read_only:
            return
        for name in flow.imports:
            self.store(name, flow.define_lines.get(name, 1) + offset, "import")
        self.import_statements.update(flow.import_statements)
        for module, at in flow.star_import_lines.items():
            self.star.setdefault(module, at + offset)
        for name in flow.deletes:
            if name not in flow.defines and name not in flow.imports:
                self.bound.pop(name, None)
                self.deletes.setdefault(name, flow.define_lines.get(name, 1) + offset)
        for name in flow.defines:
            kind = "mutated" if name in flow.mutations else "data"
            if name in flow.functions:
                kind = "function"
            self.store(name, flow.define_lines.get(name, 1) + offset, kind)
        self.functions.update(flow.functions)
        self.function_writes.update(flow.function_writes)
        self.generators |= flow.generators
        self.calls.extend((v, f, n + offset) for v, f, n in flow.calls)
        for u in flow.unmovable:
            self.unmovable[u.name] = Unmovable(u.name, u.what, u.line + offset, u.fix)

    # -- result -----------------------------------------------------------------------------

    def closure(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """Each function's globals and global writes, through the functions of this cell it calls."""
        funcs = {n: f for n, f in self.functions.items() if self.bound.get(n) == "function"}
        reads: dict[str, frozenset[str]] = {}
        writes: dict[str, frozenset[str]] = {}
        for name in funcs:
            seen = {name}
            todo = [name]
            r: set[str] = set()
            w: set[str] = set()
            while todo:
                f = todo.pop()
                r |= funcs[f]
                w |= self.function_writes.get(f, frozenset())
                for g in funcs[f]:
                    if g in funcs and g not in seen:
                        seen.add(g)
                        todo.append(g)
            reads[name] = frozenset(r)
            if w:
                writes[name] = frozenset(w)
        return reads, writes

    def flow(self, number: int) -> CellFlow:
        functions, function_writes = self.closure()
        defines = tuple(
            n for n in self.defined if self.bound.get(n) in ("data", "mutated", "function")
        )
        imports = tuple(n for n in self.imports if self.bound.get(n) == "import")
        define_lines = dict(self.imports)
        define_lines.update(self.deletes)
        define_lines.update(self.defined)
        return CellFlow(
            number=number,
            defines=defines,
            reads=tuple(self.reads),
            deletes=tuple(self.deletes),
            imports=imports,
            star_imports=tuple(self.star),
            star_import_lines=dict(self.star),
            mutations=tuple(n for n in defines if n not in self.assigned),
            optional_reads=tuple(n for n in self.optional if n not in self.reads),
            functions=functions,
            function_writes=function_writes,
            generators=frozenset(g for g in self.generators if self.bound.get(g) == "function"),
            calls=tuple(c for c in self.calls if c[0] in defines),
            import_statements={
                n: self.import_statements[n] for n in imports if n in self.import_statements
            },
            read_lines={**self.optional, **self.reads},
            define_lines=define_lines,
            unmovable=tuple(u for n, u in self.unmovable.items() if n in defines),
            ipython=self.ipython,
            aliases={
                n: frozenset(m)
                for n, m in self.members.items()
                if m and self.bound.get(n) in ("data", "mutated")
            },
            element_mutations=tuple(self.element_mutations),
        )


def _analyse(number: int, source: str) -> CellFlow:
    cell = _Cell()
    tree: ast.Module | None = None
    try:
        tree = _parse(source)
    except _PARSE_ERRORS as exc:
        first_error = exc
        magic = cell_magic_parts(source)
        if magic is not None:
            name, first_line, body, line = magic
            error = cell.cell_magic(name, first_line, body, line)
            if error is not None:
                return CellFlow(number=number, syntax_error=error, ipython=True)
            return cell.flow(number)
        transforms: list[Callable[[str], str | None]] = [fast_transform]
        if MAYBE_IPYTHON.search(source):  # importing IPython costs ~0.1 s: only when it may help
            transforms.append(ipython_transform)
        for transform in transforms:
            text = transform(source)
            if text is None:
                continue
            try:
                tree = _parse(text)
                break
            except _PARSE_ERRORS:
                continue
        if tree is None:
            return CellFlow(number=number, syntax_error=_syntax_error(first_error))
        cell.ipython = True
    cell.body(tree.body)
    return cell.flow(number)


def analyse_cell(number: int, source: str) -> CellFlow:
    """The data flow of one code cell. Never raises: a cell that isn't code is data."""
    try:
        return _analyse(number, source)
    except (RecursionError, MemoryError) as exc:
        return CellFlow(number=number, syntax_error=_syntax_error(exc))
