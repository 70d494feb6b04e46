"""The scopes of functions, lambdas, comprehensions and class bodies inside a cell: the names
each binds and loads. Order does not matter inside them (a function's body runs where it is
called); `nbflow.dataflow.cell_flow` reads what they leave free as reads of the cell, or of the
function wherever it is called.
"""

from __future__ import annotations

import ast

FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_NAMED = (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)  # nodes whose `name` is a binding


class Scope:
    """Names bound and loaded in one function, lambda, comprehension or class body."""

    __slots__ = (
        "bound",
        "deferred",
        "generator",
        "global_writes",
        "globals",
        "kind",
        "loaded",
        "nested",
        "nonlocals",
        "walrus",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "function", "comprehension" or "class"
        self.bound: set[str] = set()
        self.loaded: set[str] = set()
        self.nested: set[str] = set()  # free names of nested scopes
        self.deferred: set[str] = set()  # class: free names of its methods
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.walrus: set[str] = set()  # comprehension: names `:=` binds in the enclosing scope
        self.global_writes: set[str] = set()
        self.generator = False

    def visit(self, node: ast.AST) -> None:
        t = type(node)
        if t is ast.Name:
            if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                self.loaded.add(node.id)  # type: ignore[attr-defined]
            else:
                self.bound.add(node.id)  # type: ignore[attr-defined]
            return
        if t in FUNCS or t is ast.Lambda:
            fn: ast.FunctionDef | ast.Lambda = node  # type: ignore[assignment]
            if t is not ast.Lambda:
                self.bound.add(fn.name)  # type: ignore[union-attr]
                for d in fn.decorator_list:  # type: ignore[union-attr]
                    self.visit(d)
                if fn.returns is not None:  # type: ignore[union-attr]
                    self.visit(fn.returns)  # type: ignore[union-attr]
            visit_arguments(self, fn.args)
            inner = function_scope(fn)
            if self.kind == "class" and t is not ast.Lambda:
                self.deferred |= inner.free()
            else:
                self.nested |= inner.free()
            self.global_writes |= inner.global_writes
            return
        if t in COMPS:
            comp: ast.ListComp = node  # type: ignore[assignment]
            self.visit(comp.generators[0].iter)
            inner = comprehension_scope(comp)
            self.nested |= inner.free()
            if self.kind == "comprehension":
                self.walrus |= inner.walrus
            else:
                self.bound |= inner.walrus
            return
        if t is ast.ClassDef:
            cls: ast.ClassDef = node  # type: ignore[assignment]
            self.bound.add(cls.name)
            for e in (*cls.decorator_list, *cls.bases, *cls.keywords):
                self.visit(e)
            inner = class_scope(cls)
            self.nested |= inner.free() | inner.deferred
            return
        if t is ast.NamedExpr:
            self.visit(node.value)  # type: ignore[attr-defined]
            target = node.target.id  # type: ignore[attr-defined]
            if self.kind == "comprehension":
                self.walrus.add(target)
            else:
                self.bound.add(target)
            return
        if t is ast.Global:
            self.globals.update(node.names)  # type: ignore[attr-defined]
            return
        if t is ast.Nonlocal:
            self.nonlocals.update(node.names)  # type: ignore[attr-defined]
            return
        if t is ast.Import or t is ast.ImportFrom:
            for a in node.names:  # type: ignore[attr-defined]
                if a.name != "*":
                    self.bound.add(a.asname or a.name.partition(".")[0])
            return
        if t in _NAMED and node.name:  # type: ignore[attr-defined]
            self.bound.add(node.name)  # type: ignore[attr-defined]
        elif t is ast.MatchMapping and node.rest:  # type: ignore[attr-defined]
            self.bound.add(node.rest)  # type: ignore[attr-defined]
        elif t is ast.Yield or t is ast.YieldFrom:
            self.generator = True
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def free(self) -> set[str]:
        local = self.bound - self.globals - self.nonlocals
        return (self.loaded | self.nested) - local - self.walrus

    @property
    def writes(self) -> set[str]:
        return (self.bound & self.globals) | self.global_writes


def visit_arguments(scope: Scope, args: ast.arguments) -> None:
    """Defaults and annotations: evaluated where the function is defined."""
    for d in (*args.defaults, *args.kw_defaults):
        if d is not None:
            scope.visit(d)
    for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if a is not None and a.annotation is not None:
            scope.visit(a.annotation)


def _params(args: ast.arguments) -> set[str]:
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def function_scope(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Scope:
    s = Scope("function")
    s.bound |= _params(fn.args)
    if isinstance(fn, ast.Lambda):
        s.visit(fn.body)
    else:
        for stmt in fn.body:
            s.visit(stmt)
    s.global_writes = s.writes
    return s


def comprehension_scope(
    comp: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp,
) -> Scope:
    s = Scope("comprehension")
    for i, gen in enumerate(comp.generators):
        if i:
            s.visit(gen.iter)
        s.visit(gen.target)
        for cond in gen.ifs:
            s.visit(cond)
    if isinstance(comp, ast.DictComp):
        s.visit(comp.key)
        s.visit(comp.value)
    else:
        s.visit(comp.elt)
    return s


def class_scope(cls: ast.ClassDef) -> Scope:
    s = Scope("class")
    for stmt in cls.body:
        s.visit(stmt)
    return s
