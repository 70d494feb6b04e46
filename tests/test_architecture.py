"""The house keeps its shape: the import contract holds, no module imports itself round a
cycle, every package is inside the contract, and docs/architecture.md draws the current graph."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import nbflow
from tests.support import architecture

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contract_holds() -> None:
    # the same command CI runs (.ci/run); it reads the contract from pyproject.toml
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_cycles() -> None:
    assert architecture.cycles(architecture.module_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": {"e"}}
    assert architecture.cycles(graph) == [["a", "b", "c"], ["e", "e2"]]
    assert architecture.cycles({"a": {"b"}, "b": set()}) == []


def test_every_package_is_in_the_contract() -> None:
    named = {p for layer in architecture.layers() for p in layer} | {"nbflow.incluster"}
    top = {f"nbflow.{m.name}" for m in pkgutil.iter_modules(nbflow.__path__)} - {"nbflow.__main__"}
    assert top - named == set(), "add the new package to [tool.importlinter] in pyproject.toml"


def test_the_drawing_in_docs_is_current() -> None:
    text = architecture.DOC.read_text(encoding="utf-8")
    expected = architecture.with_diagram(text, architecture.diagram())
    assert text == expected, "run `python -m tests.support.architecture --update`"


def test_the_drawing_has_the_layers_and_real_edges() -> None:
    drawing = architecture.diagram()
    assert drawing.startswith("```mermaid\nflowchart TD\n")
    assert "    cli --> check\n" in drawing  # cli/main.py imports check.validate
    assert "    check --> dataflow\n" in drawing
    assert "    dataflow --> check\n" not in drawing and "incluster -->" not in drawing


def test_exit_codes_are_decided_in_the_cli_alone() -> None:
    # library code returns results or raises; `incluster` holds programs of their own (pods)
    found = []
    for path in sorted((ROOT / "nbflow").rglob("*.py")):
        parts = path.relative_to(ROOT / "nbflow").parts
        if parts[0] in ("cli", "incluster"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and (
                node.name.startswith("cmd_") or node.name == "exit_code"
            ):
                found.append(f"{path.name}: def {node.name}")
            elif isinstance(node, ast.Name) and node.id.startswith("EXIT_"):
                found.append(f"{path.name}: {node.id}")
            elif isinstance(node, ast.Attribute) and node.attr == "exit":
                found.append(f"{path.name}: .exit")
    assert found == []
