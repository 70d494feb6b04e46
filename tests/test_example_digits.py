"""examples/digits as a pipeline gives the notebook's own answer.

`nbflow run` of a copy of the example (so that no state is written into the repository) and
the same notebook executed top to bottom with nbclient must compute the same accuracy.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from nbflow.cli import EXIT_OK
from tests.support.cli import run_cli
from tests.support.projects import load

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"

pytestmark = pytest.mark.slow


def notebook_accuracy(notebook: Path) -> float:
    """Execute the notebook top to bottom in a kernel; read `accuracy` at full precision."""
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print(repr(accuracy))"))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    client.execute()
    [out] = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    return float(out["text"].strip())


def test_digits_pipeline_computes_the_notebooks_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "digits"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(".nbflow", "dist"))

    # the pipeline runs with the manifest's defaults, which are the notebook's own values
    project = load(copy)
    assert project.parameters_cell is not None
    cell = project.notebook.cells[project.parameters_cell - 1].source
    in_notebook = {
        node.targets[0].id: ast.literal_eval(node.value)  # type: ignore[attr-defined]
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign)
    }
    assert {p.name: p.default for p in project.parameters} == in_notebook

    r = run_cli(capsys, "run", str(copy), "--json")
    assert r.code == EXIT_OK, r.err
    doc = json.loads(r.out)
    assert [s["status"] for s in doc["steps"]] == ["succeeded"] * 4
    pipeline = doc["metrics"]["accuracy"]

    notebook = notebook_accuracy(copy / "digits.ipynb")
    assert abs(pipeline - notebook) <= 1e-12, (pipeline, notebook)
    assert 0.9 < pipeline <= 1.0
    assert Path(doc["run_dir"]).is_relative_to(copy)  # nothing written into the repository
