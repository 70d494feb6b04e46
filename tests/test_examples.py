"""Every project under examples/ validates strictly, builds, and runs end to end.

The runs (marked slow) work on a copy of each example in tmp_path, so that no local state is
written into the repository, and compare the pipeline's metric with the one the notebook
computes when executed top to bottom with nbclient. Two examples make a point of their shape:
`sales` has two cleaning branches with no edge between them and a join after both, and
`digits-torch` requests a GPU for its train step only.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from nbflow.check.validate import load_project
from nbflow.cli.main import EXIT_OK
from tests.support.cli import run_cli

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(p.parent for p in EXAMPLES_DIR.glob("*/nbflow.yaml"))


# What a sensible run of each example gives: its metric, the range the metric must fall in, and
# how far the pipeline's value may be from the notebook's. scikit-learn and pandas on one
# machine give the same number; torch keeps a little room for CPU kernels that may reduce in
# another order in another process.
EXPECTED: dict[str, tuple[str, float, float, float]] = {
    "digits": ("accuracy", 0.9, 1.0, 1e-12),
    "sales": ("auc", 0.8, 1.0, 1e-12),
    "digits-torch": ("accuracy", 0.9, 1.0, 2 / 450),
}


def ids(path: Path) -> str:
    return path.name


def copy_example(example: Path, into: Path) -> Path:
    copy = into / example.name
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns(".nbflow", "dist"))
    return copy


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """`nbflow build` an example once per module; its pipeline.yaml."""
    from nbflow.cli.main import main

    out = tmp_path_factory.mktemp("dist")
    cache: dict[Path, Path] = {}

    def build(example: Path) -> Path:
        if example not in cache:
            code = main(["build", str(example), "--out", str(out)])
            assert code == EXIT_OK, f"nbflow build {example.name} exited with {code}"
            [cache[example]] = out.glob(f"{example.name}/*/pipeline.yaml")
        return cache[example]

    return build


def documents(pipeline: Path) -> list[dict[str, Any]]:
    """The documents of a pipeline.yaml: the IR, then the platform spec."""
    return [d for d in yaml.safe_load_all(pipeline.read_text(encoding="utf-8")) if d]


def executors_by_step(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each step's container spec, found through its task, its component and its executor
    (not the runtime task's, which every pipeline begins with)."""
    out = {}
    for name, task in ir["root"]["dag"]["tasks"].items():
        if name == "nbflow-runtime":
            continue
        component = ir["components"][task["componentRef"]["name"]]
        executor = ir["deploymentSpec"]["executors"][component["executorLabel"]]
        out[task["taskInfo"]["name"]] = executor["container"]
    return out


# -- every example ------------------------------------------------------------------------------


def test_every_example_has_an_expected_metric_and_a_readme() -> None:
    assert [e.name for e in EXAMPLES] == sorted(EXPECTED), "add the new example to EXPECTED"
    for example in EXAMPLES:
        assert (example / "README.md").is_file(), f"{example.name} has no README.md"


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_validates_without_errors_or_warnings(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "validate", "--strict", str(example))
    assert r.code == EXIT_OK, r.out + r.err
    assert "0 errors, 0 warnings" in r.out


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_notebook_is_clean(example: Path) -> None:
    """Notebooks are committed without outputs, with cell ids and a python3 kernel."""
    _, project = load_project(example)
    assert project is not None
    nb = nbformat.read(project.root / project.manifest.notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(c.get("id") for c in nb.cells)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert any("parameters" in c.metadata.get("tags", []) for c in code)


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_builds_without_touching_its_folder(
    example: Path, built: Callable[[Path], Path]
) -> None:
    before = sorted(p.name for p in example.iterdir())
    pipeline = built(example)
    _, project = load_project(example)
    assert project is not None
    assert set(executors_by_step(documents(pipeline)[0])) == {s.name for s in project.steps}
    assert (pipeline.parent / "kubernetes.yaml").is_file()
    assert sorted(p.name for p in example.iterdir()) == before


# -- sales: parallel branches and a join --------------------------------------------------------


def test_sales_cleans_customers_and_orders_in_parallel_then_joins() -> None:
    _, project = load_project(EXAMPLES_DIR / "sales")
    assert project is not None and project.plan is not None
    plan = project.plan
    edges = {(e.src, e.dst) for e in plan.edges}
    branches = ("clean-customers", "clean-orders")

    assert ("clean-customers", "clean-orders") not in edges
    assert ("clean-orders", "clean-customers") not in edges
    for branch in branches:
        step = plan.step(branch)
        assert step.upstream == ("load",), step
        assert {src for _, src in step.inputs} == {"load"}
        assert ("load", branch) in edges and (branch, "join") in edges
    assert plan.step("clean-customers").inputs == (("customers", "load"),)
    assert plan.step("clean-orders").inputs == (("orders", "load"),)
    assert set(plan.step("join").upstream) == set(branches)
    order = plan.names
    assert order.index("join") > max(order.index(b) for b in branches)
    assert plan.step("model").metrics == ("auc",)


def test_sales_pipeline_runs_the_branches_side_by_side_on_the_cluster(
    built: Callable[[Path], Path],
) -> None:
    ir = documents(built(EXAMPLES_DIR / "sales"))[0]
    tasks = ir["root"]["dag"]["tasks"]
    # each also reads the step runtime from the first task
    assert tasks["step-clean-customers"]["dependentTasks"] == ["nbflow-runtime", "step-load"]
    assert tasks["step-clean-orders"]["dependentTasks"] == ["nbflow-runtime", "step-load"]
    assert sorted(tasks["step-join"]["dependentTasks"]) == [
        "nbflow-runtime",
        "step-clean-customers",
        "step-clean-orders",
    ]


# -- digits-torch: a GPU for the train step only ------------------------------------------------


def test_digits_torch_requests_the_gpu_for_train_only(built: Callable[[Path], Path]) -> None:
    ir, platform = documents(built(EXAMPLES_DIR / "digits-torch"))
    containers = executors_by_step(ir)
    assert set(containers) == {"load", "train", "evaluate"}

    train = containers["train"]["resources"]
    assert train["accelerator"]["type"] == "nvidia.com/gpu"
    assert train["accelerator"]["count"] == "1"
    assert train["resourceMemoryRequest"] == "4Gi"
    assert "cuda" in containers["train"]["image"]
    for name in ("load", "evaluate"):
        assert "accelerator" not in containers[name].get("resources", {}), name

    # the GPU nodes' taint is tolerated by the train pod alone
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tolerating = {label for label, spec in executors.items() if spec.get("tolerations")}
    assert tolerating == {"exec-step-train"}


def test_digits_torch_readme_shows_the_built_lines(built: Callable[[Path], Path]) -> None:
    lines_built = built(EXAMPLES_DIR / "digits-torch").read_text(encoding="utf-8").splitlines()
    readme = (EXAMPLES_DIR / "digits-torch" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip() != "..."]
        for line in lines:
            assert line in lines_built, f"README line not in the built pipeline.yaml: {line!r}"


# -- end to end ---------------------------------------------------------------------------------


def notebook_metric(notebook: Path, metric: str) -> float:
    """Execute the notebook top to bottom in a kernel; read the metric at full precision."""
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"print(repr({metric}))"))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    client.execute()
    return float(printed(nb.cells[-1].outputs).strip())


def printed(outputs: list[dict[str, Any]], stream: str = "stdout") -> str:
    """All a cell printed on `stream`: a kernel splits one print into as many stream outputs as
    it happens to flush (more of them on a loaded machine), so they are joined, never unpacked."""
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream" and o.get("name") == stream:
            text = o.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


@pytest.mark.parametrize(
    "chunks", [["0.9733\n"], ["0.97", "33\n"], ["0", ".", "9733", "\n"]], ids=["1", "2", "4"]
)
def test_the_printed_metric_is_read_however_the_kernel_splits_it(chunks: list[str]) -> None:
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=c) for c in chunks]
    outputs.insert(1, nbformat.v4.new_output("stream", name="stderr", text="a warning\n"))
    assert float(printed(outputs).strip()) == 0.9733


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_runs_end_to_end_like_its_notebook(example: Path, tmp_path: Path) -> None:
    metric, low, high, tolerance = EXPECTED[example.name]
    copy = copy_example(example, tmp_path)
    project = load_project(copy)[1]
    assert project is not None
    # the pipeline runs with the manifest's defaults: they must be the notebook's own values
    assert project.parameters_cell is not None
    cell = project.notebook.cells[project.parameters_cell - 1].source
    in_cell = {
        node.targets[0].id: ast.literal_eval(node.value)  # type: ignore[attr-defined]
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign)
    }
    assert {p.name: p.default for p in project.parameters} == in_cell

    # `nbflow run` as a user calls it, in a subprocess, while the notebook runs in its kernel
    run = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(copy), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        in_notebook = notebook_metric(project.root / project.manifest.notebook, metric)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()

    assert run.returncode == EXIT_OK, out + err
    doc = json.loads(out)
    assert doc["ok"]
    assert {s["status"] for s in doc["steps"]} == {"succeeded"}
    assert Path(doc["run_dir"]).is_relative_to(copy)  # the state stays in the copy
    value = doc["metrics"][metric]
    assert low < value <= high, (metric, value)
    assert all(
        (Path(doc["run_dir"]) / "reports" / f"{s['name']}.html").is_file() for s in doc["steps"]
    )
    assert abs(value - in_notebook) <= tolerance, (value, in_notebook)
