"""The step runtime, imported from its archive exactly as a generated component does."""

from __future__ import annotations

import atexit
import base64
import builtins
import functools
import importlib
import json
import pkgutil
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_runtime() -> dict[str, Any]:
    """The runtime's names (those of its modules, then the package's: `main`, `run`)."""
    return dict(_runtime_names())


@functools.cache
def _runtime_names() -> dict[str, Any]:
    """The runtime as a step imports it: its archive, unpacked from the packed text the pipeline
    carries, written to a file and imported from there as `nbflow_runtime`."""
    from nbflow.generate.runtime import RUNTIME_PACKAGE, packed_runtime, unpack_runtime

    archive = unpack_runtime(packed_runtime())
    folder = tempfile.mkdtemp(prefix="nbflow-test-runtime-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / f"{RUNTIME_PACKAGE}.zip"
    path.write_bytes(archive)
    sys.path.insert(0, str(path))
    try:
        package = importlib.import_module(RUNTIME_PACKAGE)
        modules = [
            importlib.import_module(f"{RUNTIME_PACKAGE}.{m.name}")
            for m in pkgutil.iter_modules(package.__path__)
        ]
    finally:
        sys.path.remove(str(path))
    assert package.__file__ is not None and package.__file__.startswith(str(path))
    names: dict[str, Any] = {}
    for module in [*modules, package]:
        names.update(vars(module))
    return names


# What KFP records of each output artifact apart from its files (its metadata, in ML Metadata):
# the record its step returned (serializer and digest), by path. run_step hands it to a later
# step as KFP does.
RECORDED: dict[str, object] = {}


class StepRun:
    def __init__(self, result: dict[str, Any], report: str, outputs: dict[str, Path]) -> None:
        self.metrics = result["metrics"]
        self.records = result["records"]
        self.serializers = {k: r["nbflow.serializer"] for k, r in self.records.items()}
        self.report = report
        self.outputs = outputs

    def meta(self, name: str) -> dict[str, Any]:
        return json.loads((self.outputs[name] / "nbflow.json").read_text())


def run_step(
    tmp_path: Path,
    cells: Sequence[str | tuple[int, str]],
    *,
    step: str = "train",
    inputs: dict[str, Path] | None = None,
    records: dict[str, object] | None = None,
    outputs: Sequence[str] = (),
    parameters: dict[str, object] | None = None,
    metrics: Sequence[str] = (),
    setup: Sequence[str] = (),
) -> StepRun:
    """Run one step; cells are sources (numbered 1, 2, ...) or (number, source) pairs. The
    record of each input is the one kept when an earlier run_step saved it, unless `records`
    says otherwise."""
    program_cells = [{"number": 100 + i, "source": s, "setup": True} for i, s in enumerate(setup)]
    for i, cell in enumerate(cells, 1):
        number, source = cell if isinstance(cell, tuple) else (i, cell)
        program_cells.append({"number": number, "source": source, "setup": False})
    program = {
        "pipeline": "demo",
        "step": step,
        "notebook": "demo.ipynb",
        "cells": program_cells,
        "inputs": list(inputs or {}),
        "outputs": list(outputs),
        "parameters": list(parameters or {}),
        "metrics": list(metrics),
    }
    out_dir = tmp_path / f"{step}-out"
    out_dir.mkdir(exist_ok=True)
    out_paths = {name: out_dir / name for name in outputs}
    report = tmp_path / f"{step}-report" / "report.html"
    try:
        result = load_runtime()["main"](
            program,
            inputs={k: str(v) for k, v in (inputs or {}).items()},
            records={k: RECORDED.get(str(v)) for k, v in (inputs or {}).items()} | (records or {}),
            outputs={k: str(v) for k, v in out_paths.items()},
            parameters=dict(parameters or {}),
            report_path=str(report),
        )
    finally:
        text = report.read_text(encoding="utf-8") if report.exists() else ""
        # the report must not leak the machine's temporary paths
        assert str(tmp_path) not in text
    for name, record in result["records"].items():
        RECORDED[str(out_paths[name])] = record
    return StepRun(result, text, out_paths)


def record(serializer: object, path: Path | None = None) -> dict[str, object]:
    """A record as a producing step keeps it (of the files at `path`, else of none)."""
    digest = load_runtime()["artifact_digest"](str(path)) if path else "0" * 64
    return {"nbflow.serializer": serializer, "nbflow.sha256": digest}


def fail_step(tmp_path: Path, cells: Sequence[str | tuple[int, str]], **kwargs: Any) -> str:
    """Run a step that must fail; return its stderr message."""
    capsys = kwargs.pop("capsys")
    with pytest.raises(SystemExit) as exc_info:
        run_step(tmp_path, cells, **kwargs)
    assert exc_info.value.code == 1
    return str(capsys.readouterr().err)


def pngs(report: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([^\"']+)", report)]


# --- parameters, metrics ---------------------------------------------------------------------


def test_parameters_are_injected_and_metrics_printed(tmp_path: Path, capsys: Any) -> None:
    run = run_step(
        tmp_path,
        ["accuracy = C * 2 + len(name) + sum(layers)", "loss = 1 / 3"],
        parameters={"C": 0.25, "name": "abc", "layers": [1, 2]},
        metrics=["accuracy", "loss"],
    )
    assert run.metrics == {"accuracy": 6.5, "loss": 1 / 3}
    lines = capsys.readouterr().out.splitlines()
    assert "accuracy=6.5" in lines
    assert f"loss={1 / 3!r}" in lines  # full precision: 0.3333333333333333


def test_numpy_scalar_metric(tmp_path: Path) -> None:
    run = run_step(tmp_path, ["import numpy as np\nacc = np.float32(0.5)"], metrics=["acc"])
    assert run.metrics == {"acc": 0.5}
    assert type(run.metrics["acc"]) is float


@pytest.mark.parametrize(
    ("source", "shown"),
    [("acc = 'high'", "str 'high'"), ("acc = [0.1, 0.2]", "list [0.1, 0.2]")],
)
def test_metric_that_is_not_a_number(tmp_path: Path, capsys: Any, source: str, shown: str) -> None:
    err = fail_step(tmp_path, [source], metrics=["acc"], capsys=capsys)
    assert f"step 'train': metric 'acc' must be a number, got {shown}" in err


def test_missing_parameter_value(tmp_path: Path, capsys: Any) -> None:
    program_parameters = {"C": 1.0}
    with pytest.raises(SystemExit):
        load_runtime()["main"](
            {
                "pipeline": "demo",
                "step": "s",
                "notebook": "n.ipynb",
                "cells": [],
                "inputs": [],
                "outputs": [],
                "parameters": [*program_parameters, "gamma"],
                "metrics": [],
            },
            inputs={},
            outputs={},
            parameters=program_parameters,
            report_path=None,
        )
    assert "step 's': no value for parameter(s) gamma" in capsys.readouterr().err


# --- inputs and outputs: every serializer ---------------------------------------------------


def round_trip(tmp_path: Path, make: str, check: str, *, setup: Sequence[str] = ()) -> str:
    """Save `value` in one step and check it in another; return the serializer used."""
    first = run_step(tmp_path, [make], step="make", outputs=["value"], setup=setup)
    run_step(tmp_path, [check], step="use", inputs={"value": first.outputs["value"]}, setup=setup)
    meta = first.meta("value")
    assert meta["variable"] == "value"
    return str(meta["serializer"])


def test_numpy_round_trip(tmp_path: Path) -> None:
    serializer = round_trip(
        tmp_path,
        "import numpy as np\nvalue = np.arange(12, dtype=np.float32).reshape(3, 4).T",
        "import numpy as np\nassert value.dtype == np.float32 and value.shape == (4, 3)\n"
        "assert (value == np.arange(12, dtype=np.float32).reshape(3, 4).T).all()",
    )
    assert serializer == "numpy"


def test_numpy_object_array_falls_back_to_cloudpickle(tmp_path: Path) -> None:
    serializer = round_trip(
        tmp_path,
        "import numpy as np\nvalue = np.array([{'a': 1}, None], dtype=object)",
        "assert value[0] == {'a': 1} and value[1] is None and value.dtype == object",
    )
    assert serializer == "cloudpickle"


FRAME = """
import pandas as pd
rows = pd.Index(['r1', 'r2', 'r3'], name='row')
value = pd.DataFrame({
    'x': [1.5, 2.5, None],
    'n': pd.array([1, None, 3], dtype='Int64'),
    's': ['a', 'b', 'c'],
    'o': pd.Series(['p', 'q', None], dtype=object, index=rows),
    'c': pd.Categorical(['u', 'v', 'u']),
    't': pd.to_datetime(['2024-01-01', '2024-01-02', None]).tz_localize('UTC'),
}, index=rows)
"""


def test_pandas_frame_round_trip_via_parquet(tmp_path: Path) -> None:
    check = FRAME.replace("value =", "expected =") + (
        "pd.testing.assert_frame_equal(value, expected)"
    )
    assert round_trip(tmp_path, FRAME, check) == "parquet"


def test_pandas_series_round_trip(tmp_path: Path) -> None:
    make = "import pandas as pd\nvalue = pd.Series([1.0, 2.0], index=['a', 'b'], name='w')"
    check = make.replace("value =", "expected =") + (
        "\npd.testing.assert_series_equal(value, expected)"
    )
    assert round_trip(tmp_path, make, check) == "parquet"


def test_pandas_frame_with_non_string_columns_falls_back(tmp_path: Path) -> None:
    make = "import pandas as pd\nvalue = pd.DataFrame({0: [1, 2], ('a', 1): [3.0, 4.0]})"
    check = make.replace("value =", "expected =") + (
        "\npd.testing.assert_frame_equal(value, expected)"
    )
    assert round_trip(tmp_path, make, check) == "cloudpickle"


def test_pandas_frame_with_mixed_object_column_falls_back(tmp_path: Path) -> None:
    make = "import pandas as pd\nvalue = pd.DataFrame({'m': [1, 'two', 3.0]})"
    check = make.replace("value =", "expected =") + (
        "\npd.testing.assert_frame_equal(value, expected)"
    )
    assert round_trip(tmp_path, make, check) == "cloudpickle"


SKLEARN_SETUP = (
    "import numpy as np\nX = np.array([[0.0], [1.0], [2.0], [3.0]])\ny = np.array([0, 0, 1, 1])"
)


@pytest.mark.slow
def test_sklearn_estimator_round_trip_via_joblib(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    make = "from sklearn.linear_model import LogisticRegression\nvalue = LogisticRegression().fit(X, y)"
    check = "assert type(value).__name__ == 'LogisticRegression'\nassert list(value.predict(X)) == [0, 0, 1, 1]"
    assert round_trip(tmp_path, make, check, setup=[SKLEARN_SETUP]) == "joblib"


@pytest.mark.slow
def test_sklearn_pipeline_with_notebook_function_falls_back_to_cloudpickle(
    tmp_path: Path,
) -> None:
    # joblib would pickle `double` by reference to __main__, which the next step lacks
    pytest.importorskip("sklearn")
    make = (
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "def double(a):\n    return a * 2\n"
        "value = make_pipeline(FunctionTransformer(double), LogisticRegression()).fit(X, y)"
    )
    check = "assert list(value.predict(X)) == [0, 0, 1, 1]\nassert 'double' not in dir()"
    assert round_trip(tmp_path, make, check, setup=[SKLEARN_SETUP]) == "cloudpickle"


def test_dict_with_lambda_and_notebook_class_via_cloudpickle(tmp_path: Path) -> None:
    make = (
        "class Point:\n    def __init__(self, x):\n        self.x = x\n"
        "value = {'f': lambda v: v + 1, 'p': Point(3), 'items': [1, (2, 3)]}"
    )
    check = "assert value['f'](1) == 2 and value['p'].x == 3 and value['items'] == [1, (2, 3)]"
    assert round_trip(tmp_path, make, check) == "cloudpickle"


@pytest.mark.slow
def test_torch_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    make = (
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(2, 1)\n"
        "    def forward(self, x):\n        return self.lin(x)\n"
        "torch.manual_seed(0)\nvalue = Net()\n"
        "expected = value(torch.ones(1, 2)).item()"
    )
    first = run_step(tmp_path, [make], step="make", outputs=["value", "expected"])
    assert first.meta("value")["serializer"] == "torch"
    run_step(
        tmp_path,
        ["import torch\nassert abs(value(torch.ones(1, 2)).item() - expected) < 1e-6"],
        step="use",
        inputs={"value": first.outputs["value"], "expected": first.outputs["expected"]},
    )
    tensor = run_step(tmp_path, ["import torch\nt = torch.arange(4)"], step="t", outputs=["t"])
    assert tensor.meta("t")["serializer"] == "torch"


def test_output_path_becomes_a_directory_with_metadata(tmp_path: Path) -> None:
    run = run_step(tmp_path, ["import numpy as np\nx = np.zeros(3)"], outputs=["x"])
    assert sorted(p.name for p in run.outputs["x"].iterdir()) == ["data.npy", "nbflow.json"]
    assert run.meta("x") == {"serializer": "numpy", "type": "numpy.ndarray", "variable": "x"}


def test_input_that_is_not_an_nbflow_artifact(tmp_path: Path, capsys: Any) -> None:
    stray = tmp_path / "stray"
    stray.write_text("hello")
    err = fail_step(
        tmp_path, ["pass"], inputs={"df": stray}, records={"df": record("parquet")}, capsys=capsys
    )
    assert "step 'train': cannot load input variable 'df'" in err
    assert "not an nbflow value" in err


def test_broken_input_artifact_error_has_no_machine_paths_in_report(
    tmp_path: Path, capsys: Any
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "nbflow.json").write_text('{"serializer": "numpy", "variable": "a"}')
    err = fail_step(
        tmp_path,
        ["pass"],
        inputs={"a": broken},
        records={"a": record("numpy", broken)},
        capsys=capsys,
    )
    assert "step 'train': cannot load input variable 'a': FileNotFoundError" in err
    report = (tmp_path / "train-report" / "report.html").read_text()
    assert "&lt;input a&gt;/data.npy" in report  # run_step checked that tmp_path is not there


def test_cell_changing_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    run = run_step(
        tmp_path,
        ["%cd -q sub", "import os\nhere = os.path.basename(os.getcwd())"],
        outputs=["here"],
    )
    assert Path.cwd() == tmp_path
    assert load_runtime()["load_value"](str(run.outputs["here"]), run.records["here"]) == "sub"


# --- output errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "type_name"),
    [
        ("f = open(__import__('os').devnull)\nf.close()", "_io.TextIOWrapper"),
        ("import threading\nf = threading.Lock()", "_thread.lock"),
        ("f = (i for i in range(3))", "generator"),
    ],
)
def test_unsavable_value_names_variable_step_and_type(
    tmp_path: Path, capsys: Any, source: str, type_name: str
) -> None:
    err = fail_step(tmp_path, [source], step="prep", outputs=["f"], capsys=capsys)
    assert f"step 'prep': cannot save variable 'f' of type {type_name}: " in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("f = (i for i in range(3))", "is (or holds) a generator"),
        ("import threading\nf = {'lock': threading.Lock()}", "a lock, thread or process pool"),
        ("f = open(__import__('os').devnull)\nf.close()", "an open file or stream"),
    ],
)
def test_unsavable_value_hint_names_what_it_is(
    tmp_path: Path, capsys: Any, source: str, what: str
) -> None:
    err = fail_step(tmp_path, [source], step="prep", outputs=["f"], capsys=capsys)
    [hint] = [line for line in err.splitlines() if line.startswith("hint: ")]
    assert what in hint


def test_unsavable_value_of_another_kind_does_not_blame_files(tmp_path: Path, capsys: Any) -> None:
    source = "import ctypes\nf = ctypes.pointer(ctypes.c_int(1))"
    err = fail_step(tmp_path, [source], step="prep", outputs=["f"], capsys=capsys)
    [hint] = [line for line in err.splitlines() if line.startswith("hint: ")]
    assert "no serializer of nbflow can store" in hint and "open files" not in hint


# --- values that cross steps as the notebook has them (issue 14) -----------------------------


def test_notebook_function_sees_the_loading_steps_globals(tmp_path: Path) -> None:
    """A function (or method) from another step looks its globals up in the step that calls
    it: parameters given to that step, names it defines, later changes of them."""
    make = (
        "def size():\n    return IMG_SIZE * 2\n"
        "class Box:\n    def area(self):\n        return IMG_SIZE * WIDTH\n"
        "def make(k):\n    def scaled(v):\n        return v * k + IMG_SIZE\n    return scaled\n"
        "WIDTH = 3\nscaled = make(10)"
    )
    first = run_step(tmp_path, [make], step="make", outputs=["size", "Box", "scaled", "WIDTH"])
    use = (
        "assert size() == 256\nassert Box().area() == 128 * 3\nassert scaled(1) == 138\n"
        "IMG_SIZE = 1\nassert size() == 2\n"  # the step's own, later, value
        "WIDTH = 5\nassert Box().area() == 5"
    )
    run_step(tmp_path, [use], step="use", inputs=first.outputs, parameters={"IMG_SIZE": 128})


def test_captured_globals_fill_only_names_the_step_lacks(tmp_path: Path) -> None:
    make = "helper = lambda: 7\ndef f():\n    return helper() + OFFSET\nOFFSET = 1"
    first = run_step(tmp_path, [make], step="make", outputs=["f"])
    # `helper` comes with `f` (the step does not have it); OFFSET is the step's own
    run_step(
        tmp_path, ["assert f() == 107"], step="use", inputs=first.outputs, setup=["OFFSET = 100"]
    )


def test_values_sharing_objects_are_saved_and_loaded_together(tmp_path: Path) -> None:
    make = (
        "a = {'w': 0}\nb = [1]\nboth = [a, b]\nby_name = {'a': a}\n"
        "alone = {'w': 0}\nimport numpy as np\narr = np.zeros(2)\nview = arr"
    )
    first = run_step(
        tmp_path,
        [make],
        step="make",
        outputs=["a", "b", "both", "by_name", "alone", "arr", "view"],
    )
    metas = {n: first.meta(n) for n in first.outputs}
    groups = {n: tuple(m["bundle"]["names"]) for n, m in metas.items() if "bundle" in m}
    assert groups == {
        "a": ("a", "b", "both", "by_name"),
        "b": ("a", "b", "both", "by_name"),
        "both": ("a", "b", "both", "by_name"),
        "by_name": ("a", "b", "both", "by_name"),
        "arr": ("arr", "view"),
        "view": ("arr", "view"),
    }
    assert metas["alone"]["serializer"] == "cloudpickle"
    use = (
        "for x in both:\n    x.append(1) if isinstance(x, list) else x.update(w=1)\n"
        "assert a['w'] == 1 and b == [1, 1] and by_name['a'] is a\n"
        "assert view is arr and alone == {'w': 0}"
    )
    run_step(tmp_path, [use], step="use", inputs=first.outputs)


def test_shared_values_without_cloudpickle_are_bundled_with_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # an image without cloudpickle
    first = run_step(tmp_path, ["a = [1]\nboth = {'a': a}"], step="make", outputs=["a", "both"])
    assert first.meta("a")["serializer"] == "bundle"
    run_step(
        tmp_path, ["a.append(2)\nassert both['a'] == [1, 2]"], step="use", inputs=first.outputs
    )


def test_shared_groups_ignore_classes_modules_and_immutables(tmp_path: Path) -> None:
    ns = load_runtime()

    class Model:
        pass

    empty = ()
    values = {"m1": Model(), "m2": Model(), "t1": (1, empty), "t2": (2, empty), "s": "text"}
    assert ns["shared_groups"](values) == []
    shared = [1]
    assert ns["shared_groups"]({"x": {"k": shared}, "y": (shared,), "z": []}) == [["x", "y"]]
    numbers = list(range(1000))  # long lists of atoms are not looked into, but count themselves
    assert ns["shared_groups"]({"n": numbers, "m": {"n": numbers}, "o": list(range(1000))}) == [
        ["n", "m"]
    ]


@pytest.mark.parametrize(
    "line",
    [
        "!pip install xgboost",
        "%pip install -q scikit-learn==1.5",
        "  !pip3 install --user -r requirements.txt",
        "!python -m pip install torch",
        "!conda install -y numpy",
        "%conda install numpy",
        "!uv pip install polars",
    ],
)
def test_install_lines_are_skipped(tmp_path: Path, capsys: Any, line: str) -> None:
    cell = f"import sys\nif True:\n{line if line.startswith(' ') else '    ' + line}\nx = 2"
    run = run_step(
        tmp_path, ["before = set(sys.modules)", (2, cell)], outputs=["x"], setup=["import sys"]
    )
    err = capsys.readouterr().err
    assert f"cell 2, line 3: skipped `{line.strip()}`" in err
    assert "requirements:" in err
    assert load_runtime()["load_value"](str(run.outputs["x"]), run.records["x"]) == 2
    # the report shows the cell as written
    assert "install" in run.report


def test_install_pattern_is_the_validators(tmp_path: Path) -> None:
    from nbflow.dataflow.files import INSTALL_LINE

    assert load_runtime()["_INSTALL_LINE"].pattern == INSTALL_LINE.pattern


def test_keras_model_round_trip(tmp_path: Path) -> None:
    pytest.importorskip(
        "tensorflow",
        reason="tensorflow is not installed here (too large for this project's machines): "
        "keras on torch is tested instead (test_keras_model_round_trip_on_the_torch_backend)",
    )
    make = (
        "from tensorflow import keras\nimport numpy as np\n"
        "value = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "expected = value.predict(np.ones((1, 2)), verbose=0).tolist()"
    )
    first = run_step(tmp_path, [make], step="make", outputs=["value", "expected"])
    assert first.meta("value")["serializer"] == "keras"
    check = (
        "import numpy as np\nassert value.predict(np.ones((1, 2)), verbose=0).tolist() == expected"
    )
    run_step(tmp_path, [check], step="use", inputs=first.outputs)


# One step in an interpreter of its own, as in its own pod: keras picks its backend once, at
# import, from KERAS_BACKEND, so a step that needs another backend than this process cannot run
# here. The records go back and forth as KFP carries them.
STEP_ELSEWHERE = """
import json, sys
from pathlib import Path
from tests.test_runtime import run_step
args = json.loads(sys.argv[1])
run = run_step(
    Path(args["tmp"]), args["cells"], step=args["step"], outputs=args["outputs"],
    inputs={k: Path(v) for k, v in args["inputs"].items()}, records=args["records"],
)
Path(args["records_file"]).write_text(json.dumps(run.records), encoding="utf-8")
"""


def run_step_elsewhere(
    tmp_path: Path,
    cells: Sequence[str],
    *,
    step: str,
    env: dict[str, str],
    outputs: Sequence[str] = (),
    inputs: dict[str, Path] | None = None,
    records: dict[str, object] | None = None,
) -> tuple[dict[str, Path], dict[str, object]]:
    """Run one step as run_step does, in a fresh interpreter; its outputs and their records."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    records_file = tmp_path / f"{step}-records.json"
    args = {
        "tmp": str(tmp_path),
        "cells": list(cells),
        "step": step,
        "outputs": list(outputs),
        "inputs": {k: str(v) for k, v in (inputs or {}).items()},
        "records": records or {},
        "records_file": str(records_file),
    }
    pythonpath = os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", STEP_ELSEWHERE, json.dumps(args)],
        cwd=repo,
        env={**os.environ, **env, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = {name: tmp_path / f"{step}-out" / name for name in outputs}
    return out, json.loads(records_file.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_keras_model_round_trip_on_the_torch_backend(tmp_path: Path) -> None:
    """Keras 3 on torch (tensorflow is too large for this project's machines): a Sequential
    model saved by one step in the .keras format, loaded by the next, predicts the same."""
    import importlib.util

    # found, not imported: keras imported here would settle on its default backend, tensorflow
    if not (importlib.util.find_spec("torch") and importlib.util.find_spec("keras")):
        pytest.skip("keras or torch is not installed (both are in the dev extra)")
    torch_backend = {"KERAS_BACKEND": "torch"}
    make = (
        "import keras\nimport numpy as np\n"
        "assert keras.backend.backend() == 'torch'\n"
        "keras.utils.set_random_seed(0)\n"
        "value = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Dense(1)])\n"
        "expected = value.predict(np.array([[1.0, 2.0], [-3.0, 0.5]]), verbose=0).tolist()"
    )
    outputs, records = run_step_elsewhere(
        tmp_path, [make], step="make", env=torch_backend, outputs=["value", "expected"]
    )
    meta = json.loads((outputs["value"] / "nbflow.json").read_text())
    assert meta["serializer"] == "keras" and meta["options"] == {"module": "keras"}
    assert (outputs["value"] / "model.keras").is_file()
    check = (
        "import keras\nimport numpy as np\n"
        "assert keras.backend.backend() == 'torch'\n"
        "assert type(value).__name__ == 'Sequential' and len(value.layers) == 2\n"
        "got = value.predict(np.array([[1.0, 2.0], [-3.0, 0.5]]), verbose=0).tolist()\n"
        "assert got == expected, (got, expected)"
    )
    run_step_elsewhere(
        tmp_path, [check], step="use", env=torch_backend, inputs=outputs, records=records
    )


@pytest.mark.slow
def test_xgboost_dmatrix_and_booster_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    setup = [
        "import numpy as np\nimport xgboost as xgb\nX = np.arange(20.0).reshape(10, 2)\ny = X[:, 0] > 9"
    ]
    make = (
        "value = xgb.DMatrix(X, label=y)\nbooster = xgb.train({'max_depth': 1}, value, 2)\n"
        "expected = booster.predict(value).tolist()"
    )
    first = run_step(
        tmp_path, [make], step="make", outputs=["value", "booster", "expected"], setup=setup
    )
    assert first.meta("value")["serializer"] == first.meta("booster")["serializer"] == "xgboost"
    check = "assert value.num_row() == 10\nassert booster.predict(value).tolist() == expected"
    run_step(tmp_path, [check], step="use", inputs=first.outputs, setup=setup)


@pytest.mark.slow
def test_lightgbm_dataset_and_booster_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    setup = [
        "import numpy as np\nimport lightgbm as lgb\nX = np.arange(200.0).reshape(100, 2)\ny = (X[:, 0] > 90).astype(int)"
    ]
    make = (
        "value = lgb.Dataset(X, label=y, params={'verbose': -1}).construct()\n"
        "booster = lgb.train({'verbose': -1, 'num_leaves': 3}, value, 2)\n"
        "expected = booster.predict(X).tolist()"
    )
    first = run_step(
        tmp_path, [make], step="make", outputs=["value", "booster", "expected"], setup=setup
    )
    assert first.meta("value")["serializer"] == first.meta("booster")["serializer"] == "lightgbm"
    check = "assert value.num_data() == 100\nassert booster.predict(X).tolist() == expected"
    run_step(tmp_path, [check], step="use", inputs=first.outputs, setup=setup)


def test_step_runs_in_the_programs_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "notebook-folder"
    folder.mkdir()
    (folder / "data.txt").write_text("41")
    (folder / "nbflow_helper_mod.py").write_text("def inc(v):\n    return v + 1\n")
    monkeypatch.chdir(tmp_path)
    ns = load_runtime()
    out = tmp_path / "out"
    program = {
        "pipeline": "p",
        "step": "s",
        "notebook": "nb.ipynb",
        "workdir": str(folder),
        "cells": [
            {
                "number": 1,
                "source": "from nbflow_helper_mod import inc\nfrom pathlib import Path\nv = inc(int(Path('data.txt').read_text()))",
                "setup": False,
            }
        ],
        "outputs": ["v"],
    }
    try:
        result = ns["main"](
            program, inputs={}, outputs={"v": "out"}, parameters={}, report_path="r.html"
        )
    finally:
        sys.modules.pop("nbflow_helper_mod", None)
    # relative output paths are the caller's
    assert ns["load_value"](str(out), result["records"]["v"]) == 42
    assert (tmp_path / "r.html").is_file()
    assert Path.cwd() == tmp_path and str(folder) not in sys.path


def test_missing_output_variable(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(tmp_path, ["a = 1"], outputs=["model"], capsys=capsys)
    assert "step 'train': output variable 'model' was never assigned" in err


# --- IPython semantics ---------------------------------------------------------------------------


def test_magics_and_shell_commands(tmp_path: Path, capsys: Any) -> None:
    run = run_step(
        tmp_path,
        [
            "%time total = sum(range(10))",
            "%%time\nsquares = [i * i for i in range(5)]",
            "!echo hi from shell",
            "word = 'there'\nlines = !echo hello $word\ngreeting = lines[0]",
            "%matplotlib inline",
            "%pip --version",
        ],
        outputs=["total", "squares", "greeting"],
    )
    out = capsys.readouterr().out
    assert out.count("Wall time:") == 2
    assert "hi from shell" in out
    assert "pip " in out  # `pip X.Y from ...`
    assert "hi from shell" in run.report and "Wall time:" in run.report
    values = run_step(
        tmp_path,
        ["assert (total, squares, greeting) == (45, [0, 1, 4, 9, 16], 'hello there')"],
        step="check",
        inputs=dict(run.outputs),
    )
    assert values.metrics == {}


def test_bare_expression_is_displayed_like_out(tmp_path: Path, capsys: Any) -> None:
    run = run_step(tmp_path, [(7, "x = 20\nx + 22"), (8, "x;")])
    assert "Out[7]: 42" in capsys.readouterr().out
    assert re.search(r"Out\[7\]:</div><pre>42</pre>", run.report)
    assert "Out[8]" not in run.report  # a trailing semicolon hides the value


def test_dataframe_display_is_an_html_table(tmp_path: Path) -> None:
    run = run_step(
        tmp_path,
        [
            "import pandas as pd\ndf = pd.DataFrame({'col_a': [1, 2]})\ndisplay(df)",
            "df.rename(columns={'col_a': 'col_b'})",
        ],
    )
    tables = re.findall(r"<table[^>]*class=\"dataframe\".*?</table>", run.report, re.S)
    assert len(tables) == 2
    assert "col_a" in tables[0] and "col_b" in tables[1]


def test_matplotlib_figures_appear_as_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = run_step(
        tmp_path,
        [
            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
            "fig = plt.figure()\nplt.bar([1, 2], [3, 4])",  # left open: shown at cell end
            "%matplotlib inline\nplt.scatter([1], [1])",
        ],
    )
    images = pngs(run.report)
    assert len(images) == 3
    assert all(image.startswith(PNG_MAGIC) for image in images)
    sections = run.report.split('<section class="cell"')[1:4]
    assert [len(pngs(s)) for s in sections] == [1, 1, 1]


def test_report_escapes_user_text(tmp_path: Path) -> None:
    run = run_step(tmp_path, ["print('<b>bold</b>')  # <script>"])
    assert "<script>" not in run.report
    assert "&lt;b&gt;bold&lt;/b&gt;" in run.report
    assert "<title>demo / train</title>" in run.report


def test_stderr_and_carriage_returns_in_report(tmp_path: Path) -> None:
    run = run_step(
        tmp_path, ["import sys\nsys.stderr.write('warn!\\n')\nprint('10%\\r50%\\r100%')"]
    )
    assert '<pre class="stderr">warn!\n</pre>' in run.report
    assert '<pre class="stdout">100%\n</pre>' in run.report


# --- failures -----------------------------------------------------------------------------------


def test_failing_cell_names_step_cell_line_and_source(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(
        tmp_path,
        [(3, "def inverse(x):\n    return 1 / x"), (7, "a = 1\n\nb = inverse(0)\nc = 2")],
        capsys=capsys,
    )
    head = err[err.index("step 'train' failed") :]
    assert head.startswith(
        "step 'train' failed in cell 7 of demo.ipynb, line 3: "
        "ZeroDivisionError: division by zero\n    b = inverse(0)\n"
    )
    assert "raised in cell 3, line 2: return 1 / x" in head
    assert 'File "<cell 7>", line 3' in head and 'File "<cell 3>", line 2, in inverse' in head
    for internal in ("IPython", "interactiveshell", "nbflow_runtime", "run_code"):
        assert internal not in head


def test_failing_cell_report_has_error_and_earlier_output(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run_step(tmp_path, ["print('before')", "raise ValueError('bad <value>')", "print('x')"])
    report = (tmp_path / "train-report" / "report.html").read_text()
    assert "before" in report
    assert "ValueError: bad &lt;value&gt;" in report
    assert 'id="cell-3"' not in report  # never ran


def test_error_in_library_code_keeps_the_raising_frame_only(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(tmp_path, ["import json\njson.loads('{')"], capsys=capsys)
    assert 'File "<cell 1>", line 2' in err
    assert err.count("json/decoder.py") == 1  # not the whole library stack
    assert "JSONDecodeError" in err


def test_error_inside_time_cell_magic(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(tmp_path, [(4, "%%time\nx = 1\ny = {}['k']")], capsys=capsys)
    assert "failed in cell 4 of demo.ipynb, line 3: KeyError: 'k'\n    y = {}['k']" in err


def test_line_numbers_count_leading_blank_lines(tmp_path: Path, capsys: Any) -> None:
    # IPython drops them before compiling; the message must still use the cell's own lines
    err = fail_step(tmp_path, [(6, "\n\nx = 1\ny = x / 0")], capsys=capsys)
    assert "failed in cell 6 of demo.ipynb, line 4: ZeroDivisionError" in err
    assert 'File "<cell 6>", line 4, in <module>\n    y = x / 0' in err


def test_syntax_error(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(tmp_path, [(5, "x = 1\ndef g(:\n    pass")], capsys=capsys)
    assert "step 'train' failed in cell 5 of demo.ipynb, line 2: SyntaxError:" in err
    assert "    def g(:" in err


def test_unknown_magic(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(tmp_path, ["%nosuchmagic 1"], capsys=capsys)
    assert "failed in cell 1 of demo.ipynb, line 1: " in err
    assert "UsageError: Line magic function `%nosuchmagic` not found." in err


def test_error_that_ipython_shows_and_swallows_fails_the_cell(tmp_path: Path, capsys: Any) -> None:
    # event hooks (matplotlib's figure flush among them) report errors and carry on
    err = fail_step(
        tmp_path,
        [
            (
                2,
                "def hook():\n    raise RuntimeError('hook broke')\n"
                "get_ipython().events.register('post_execute', hook)",
            )
        ],
        capsys=capsys,
    )
    assert "step 'train' failed in cell 2 of demo.ipynb, line 2: RuntimeError: hook broke" in err


# --- one process, many runs ----------------------------------------------------------------------


def test_running_twice_in_one_process_leaves_no_trace(tmp_path: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    main_module = sys.modules["__main__"]
    stdout, stderr = sys.stdout, sys.stderr
    cells = ["import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()", "v = get_ipython()"]
    for i in range(2):
        run = run_step(tmp_path, cells, step=f"run{i}")
        assert len(pngs(run.report)) == 1
    assert not InteractiveShell.initialized()
    assert sys.modules["__main__"] is main_module
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    assert not hasattr(builtins, "display") and not hasattr(builtins, "get_ipython")
    assert not hasattr(sys, "ps1")


# --- without IPython in the step image --------------------------------------------------------


@pytest.fixture
def no_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)


@pytest.mark.usefixtures("no_ipython")
def test_plain_python_without_ipython(tmp_path: Path, capsys: Any) -> None:
    run = run_step(
        tmp_path,
        [
            "import pandas as pd\ndf = pd.DataFrame({'k': [C]})\ndisplay(df)",
            (4, "print('plain')\nint(df.k.sum()) + 1"),
        ],
        parameters={"C": 2},
        outputs=["df"],
    )
    assert "plain" in capsys.readouterr().out
    assert '<table border="1" class="dataframe">' in run.report
    assert re.search(r"Out\[4\]:</div><pre>3</pre>", run.report)
    assert run.meta("df")["serializer"] == "parquet"


@pytest.mark.usefixtures("no_ipython")
def test_plain_python_magic_fails_clearly(tmp_path: Path, capsys: Any) -> None:
    err = fail_step(tmp_path, [(2, "x = 1\n%time y = 2")], capsys=capsys)
    assert "step 'train' failed in cell 2 of demo.ipynb" in err
    assert "IPython is not installed in the step image" in err


@pytest.mark.usefixtures("no_ipython")
def test_plain_python_failure_and_figures(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit):
        run_step(
            tmp_path,
            [
                "import matplotlib.pyplot as plt\nplt.plot([1, 2])",
                (9, "def f():\n    raise KeyError('gone')\nf()"),
            ],
        )
    err = capsys.readouterr().err
    assert "failed in cell 9 of demo.ipynb, line 2: KeyError: 'gone'\n    raise KeyError" in err
    assert 'File "<cell 9>", line 3, in <module>\n    f()' in err
    report = (tmp_path / "train-report" / "report.html").read_text()
    assert len(pngs(report)) == 1


def test_inputs_win_over_setup_and_imports_are_replayed(tmp_path: Path) -> None:
    # a step changed a setup-defined config; the next step must see the changed value, and a
    # module imported in another step's cell is imported again before this step's cells
    setup = ["config = {'lr': 0.1}"]
    first = run_step(tmp_path, ["config['lr'] = 0.5"], step="tune", outputs=["config"], setup=setup)
    runtime = load_runtime()
    program = {
        "pipeline": "demo",
        "step": "use",
        "notebook": "demo.ipynb",
        "cells": [
            {"number": 1, "source": setup[0], "setup": True},
            {"number": 5, "source": "lr = config['lr']\nroot = math.sqrt(4)", "setup": False},
        ],
        "inputs": ["config"],
        "outputs": [],
        "parameters": [],
        "metrics": ["lr", "root"],
        "imports": ["import math"],
    }
    values = runtime["main"](
        program,
        inputs={"config": str(first.outputs["config"])},
        records=first.records,
        outputs={},
        parameters={},
        report_path=None,
    )
    assert values == {"metrics": {"lr": 0.5, "root": 2.0}, "records": {}}


# --- the serializer comes from the pipeline's record, not from the artifact (issue 12, item 5) --


PLANTED = """
import os
class Planted:
    def __reduce__(self):
        return (os.mkdir, ({marker!r},))
"""


def plant_pickle(artifact: Path, marker: Path) -> None:
    """Replace an artifact's files with a pickle that runs code when loaded, and an nbflow.json
    naming pickle: what anyone who can write to the artifact store could do."""
    import pickle

    namespace: dict[str, Any] = {}
    exec(PLANTED.format(marker=str(marker)), namespace)
    for f in artifact.iterdir():
        f.unlink()
    (artifact / "data.pkl").write_bytes(pickle.dumps(namespace["Planted"]()))
    (artifact / "nbflow.json").write_text('{"serializer": "pickle", "variable": "value"}')


@pytest.mark.parametrize("recorded", ["numpy", "parquet", "cloudpickle"])
def test_an_artifact_cannot_choose_its_serializer(
    tmp_path: Path, capsys: Any, recorded: str
) -> None:
    """load_value once trusted the serializer the artifact's own nbflow.json named, so whoever
    could write an artifact could make the next step run `pickle.load` on their bytes."""
    make = {
        "numpy": "import numpy as np\nvalue = np.zeros(3)",
        "parquet": "import pandas as pd\nvalue = pd.DataFrame({'a': [1]})",
        "cloudpickle": "value = lambda v: v",
    }[recorded]
    first = run_step(tmp_path, [make], step="make", outputs=["value"])
    assert first.serializers == {"value": recorded}
    marker = tmp_path / "planted-code-ran"
    plant_pickle(first.outputs["value"], marker)
    err = fail_step(
        tmp_path, ["pass"], step="use", inputs={"value": first.outputs["value"]}, capsys=capsys
    )
    assert "cannot load input variable 'value'" in err
    assert f"saved it with {recorded}: refusing to load it" in err
    assert not marker.exists()


def test_an_artifact_whose_bytes_changed_is_refused(tmp_path: Path, capsys: Any) -> None:
    """The producer saved with cloudpickle: the serializer alone can't tell a planted pickle
    from the real one, the recorded digest can."""
    first = run_step(tmp_path, ["value = lambda v: v"], step="make", outputs=["value"])
    marker = tmp_path / "planted-code-ran"
    plant_pickle(first.outputs["value"], marker)
    meta = first.outputs["value"] / "nbflow.json"
    meta.write_text('{"serializer": "cloudpickle", "variable": "value"}')
    err = fail_step(
        tmp_path, ["pass"], step="use", inputs={"value": first.outputs["value"]}, capsys=capsys
    )
    assert "files changed after the step that produced it saved them" in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "kept",
    [
        None,
        {},
        {"nbflow.serializer": "numpy"},  # no digest
        {"nbflow.serializer": "pickle5", "nbflow.sha256": "0" * 64},
        {"nbflow.serializer": 3, "nbflow.sha256": "0" * 64},
        "numpy",
    ],
)
def test_an_input_without_a_record_is_refused(tmp_path: Path, capsys: Any, kept: object) -> None:
    first = run_step(tmp_path, ["value = {'a': 1}"], step="make", outputs=["value"])
    err = fail_step(
        tmp_path,
        ["pass"],
        step="use",
        inputs={"value": first.outputs["value"]},
        records={"value": kept},
        capsys=capsys,
    )
    assert "the pipeline has no record of how this value was saved" in err


def test_each_output_reports_its_serializer(tmp_path: Path) -> None:
    run = run_step(
        tmp_path,
        ["import numpy as np\na = np.zeros(2)\nb = {'k': lambda: 1}"],
        outputs=["a", "b"],
    )
    assert run.serializers == {"a": "numpy", "b": "cloudpickle"}
    assert {n: run.meta(n)["serializer"] for n in ("a", "b")} == run.serializers
    digest = load_runtime()["artifact_digest"]
    assert {n: r["nbflow.sha256"] for n, r in run.records.items()} == {
        n: digest(str(run.outputs[n])) for n in ("a", "b")
    }


def test_a_bundle_is_loaded_only_as_recorded(tmp_path: Path, capsys: Any) -> None:
    """Values that share objects travel as one pickled bundle: its bytes are checked against
    the record too, and an artifact can't turn itself into a bundle."""
    first = run_step(tmp_path, ["a = [1]\nboth = {'a': a}"], step="make", outputs=["a", "both"])
    assert first.serializers == {"a": "bundle", "both": "bundle"}
    marker = tmp_path / "planted-code-ran"
    namespace: dict[str, Any] = {}
    exec(PLANTED.format(marker=str(marker)), namespace)
    import pickle

    planted = pickle.dumps(namespace["Planted"]())
    (first.outputs["a"] / "bundle.pkl").write_bytes(planted)
    err = fail_step(tmp_path, ["pass"], step="use", inputs=first.outputs, capsys=capsys)
    assert "files changed after the step that produced it saved them" in err
    # a numpy artifact whose nbflow.json now says it is a bundle
    second = run_step(tmp_path, ["import numpy as np\nx = np.zeros(2)"], step="n", outputs=["x"])
    folder = second.outputs["x"]
    (folder / "bundle.pkl").write_bytes(planted)
    meta = {"serializer": "bundle", "variable": "x", "bundle": {"id": "f", "names": ["x"]}}
    (folder / "nbflow.json").write_text(json.dumps(meta))
    err = fail_step(tmp_path, ["pass"], step="use2", inputs={"x": folder}, capsys=capsys)
    assert "saved it with numpy: refusing to load it" in err
    assert not marker.exists()


class FakeArtifact:
    """What KFP hands a step for an artifact: a path and metadata (and for metrics,
    `log_metric`)."""

    def __init__(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        self.path = str(path)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.logged: list[tuple[str, float]] = []

    def log_metric(self, metric: str, value: float) -> None:
        self.logged.append((metric, value))


def test_run_takes_records_from_kfps_artifacts(tmp_path: Path) -> None:
    """`run`, what a generated step calls: the program as the step carries it, KFP's artifacts
    in. Each input is loaded as its artifact's metadata records; each output's record goes into
    its artifact's metadata; the metrics are logged and written at the metrics artifact's path."""
    from nbflow.incluster.runtime.program import encode_program

    first = run_step(tmp_path, ["x = 20"], step="make", outputs=["x"])
    ns = load_runtime()
    program = {
        "pipeline": "demo",
        "step": "use",
        "notebook": "demo.ipynb",
        "cells": [{"number": 2, "source": "y = x + 1\nscore = y / 2", "setup": False}],
        "inputs": ["x"],
        "outputs": ["y"],
        "parameters": [],
        "metrics": ["score"],
    }
    x = FakeArtifact(first.outputs["x"], first.records["x"])
    y = FakeArtifact(tmp_path / "y")
    metrics = FakeArtifact(tmp_path / "metrics.json")
    report = FakeArtifact(tmp_path / "report.html")
    ns["run"](
        encode_program(program),
        inputs={"x": x},
        outputs={"y": y},
        parameters={},
        report=report,
        metrics=metrics,
    )
    assert ns["load_value"](y.path, y.metadata) == 21
    assert set(y.metadata) == {"nbflow.serializer", "nbflow.sha256"}
    assert metrics.logged == [("score", 10.5)]
    assert json.loads(Path(metrics.path).read_text()) == {"score": 10.5}
    # an input whose artifact's metadata holds no record is refused, whatever its files say
    with pytest.raises(SystemExit):
        ns["run"](
            encode_program({**program, "metrics": []}),
            inputs={"x": FakeArtifact(first.outputs["x"])},
            outputs={"y": FakeArtifact(tmp_path / "y2")},
            parameters={},
            report=FakeArtifact(tmp_path / "report2.html"),
        )
    assert "no record of how this value was saved" in Path(tmp_path / "report2.html").read_text()
