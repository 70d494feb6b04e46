"""`nbflow init` on plain notebooks, the command's behaviour, and the YAML it writes.

Golden cases live in tests/kale_cases/<case>/ (plain-* here, kale-* in test_kale.py): a notebook,
the manifest init writes for a copy of it outside any repository (expected.yaml, byte for byte)
and the warnings it prints (expected-warnings.txt). `python tests/kale_cases/make.py --golden`
regenerates them; review the diff.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nbflow.authoring.guesses import metric_goal, pip_installs, slug, unique
from nbflow.authoring.init import cell_spec, scalar, schema_ref
from nbflow.check.validate import validate_manifest
from nbflow.load.notebook import load_notebook
from tests.support.cases import CASES
from tests.support.cli import Result, run_cli, run_subprocess
from tests.support.projects import Cell, write_notebook

KALE_CASES = Path(__file__).resolve().parent / "kale_cases"
REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"


def run_init(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """`nbflow init ARGV` in-process, through `nbflow.cli.main.main`."""
    return run_cli(capsys, "init", *argv)


def case_names(prefix: str) -> list[str]:
    return sorted(
        p.name
        for p in KALE_CASES.iterdir()
        if p.name.startswith(prefix) and (p / "expected.yaml").exists()
    )


def copy_case(case: str, tmp_path: Path) -> Path:
    """The case's notebook, copied to a folder of its own under tmp_path; returns its path."""
    folder = tmp_path / case
    folder.mkdir()
    (src,) = (KALE_CASES / case).glob("*.ipynb")
    shutil.copy(src, folder / src.name)
    return folder / src.name


def check_golden(capsys: pytest.CaptureFixture[str], case: str, tmp_path: Path) -> Path:
    nb = copy_case(case, tmp_path)
    before = nb.read_bytes()
    r = run_init(capsys, str(nb))
    expected = (KALE_CASES / case / "expected.yaml").read_text(encoding="utf-8")
    written = (nb.parent / "nbflow.yaml").read_text(encoding="utf-8")
    assert written == expected, (
        "init's output drifted: `python tests/kale_cases/make.py --golden` and review"
    )
    warnings = [line for line in r.err.splitlines() if line.startswith("nbflow: warning:")]
    expected_warnings = (
        (KALE_CASES / case / "expected-warnings.txt").read_text(encoding="utf-8").splitlines()
    )
    assert warnings == expected_warnings
    assert r.code == 0, r.err
    assert "wrote " in r.out
    assert nb.read_bytes() == before  # the notebook is left as it was
    return nb


@pytest.mark.parametrize("case", case_names("plain-"))
def test_plain_golden(capsys, case, tmp_path):
    check_golden(capsys, case, tmp_path)


@pytest.mark.parametrize("case", case_names(""))  # plain notebooks and Kale imports alike
def test_expected_validates(case, tmp_path):
    nb = copy_case(case, tmp_path)
    shutil.copy(KALE_CASES / case / "expected.yaml", nb.parent / "nbflow.yaml")
    report, project = validate_manifest(nb.parent / "nbflow.yaml")
    assert report.ok, [d.message for d in report.diagnostics]
    if not case.startswith("kale-upstream-"):
        # Kale's own test notebook assigns parameters no step reads (NBF406): warnings allowed
        assert not report.warnings, [d.message for d in report.diagnostics]
    assert project is not None and project.plan is not None


def test_digits_proposal_matches_the_hand_written_manifest(capsys, tmp_path):
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "digits.ipynb")
    r = run_init(capsys, str(tmp_path / "digits.ipynb"))
    assert r.code == 0, r.err
    report, project = validate_manifest(tmp_path / "nbflow.yaml")
    assert report.ok and project is not None
    assert {s.name: s.cells for s in project.steps} == {
        "load": (5, 6),
        "preprocess": (8,),
        "train": (10,),
        "evaluate": (12, 13),
    }
    assert project.setup == (2,) and project.skip == (14,) and project.parameters_cell == 3
    assert {p.name: (p.type, p.default) for p in project.parameters} == {
        "C": ("float", 1.0),
        "gamma": ("float", 0.001),
        "test_size": ("float", 0.25),
    }
    assert dict(project.manifest.metrics) == {"accuracy": project.manifest.metrics["accuracy"]}
    assert project.manifest.metrics["accuracy"].goal == "maximize"
    text = (tmp_path / "nbflow.yaml").read_text()
    assert "accuracy: maximize  # TODO: check" in text
    assert "requirements: [matplotlib, numpy, scikit-learn]" in text


def test_init_refuses_to_overwrite(capsys, tmp_path):
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "digits.ipynb")
    (tmp_path / "nbflow.yaml").write_text("# mine\n")
    r = run_init(capsys, str(tmp_path / "digits.ipynb"))
    assert r.code == 2
    assert "already exists" in r.err and "--force" in r.err
    assert (tmp_path / "nbflow.yaml").read_text() == "# mine\n"
    r = run_init(capsys, str(tmp_path / "digits.ipynb"), "--force")
    assert r.code == 0, r.err
    assert (tmp_path / "nbflow.yaml").read_text().startswith("# yaml-language-server: $schema=")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.ipynb"], "no such notebook"),
        (["."], "is a folder"),
        ([], "needs a NOTEBOOK"),
        (["nb.ipynb", "--name", "Not_A_Label"], "not a DNS-1123 label"),
        (["corrupt.ipynb"], "not valid JSON"),
    ],
)
def test_init_usage_errors_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    shutil.copy(CASES / "notebooks" / "corrupt.ipynb", tmp_path / "corrupt.ipynb")
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "nb.ipynb")
    monkeypatch.chdir(tmp_path)
    r = run_init(capsys, *argv)
    assert r.code == 2
    assert message in r.err
    assert "Traceback" not in r.err
    assert not (tmp_path / "nbflow.yaml").exists()


def test_name_option(capsys, tmp_path):
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "digits.ipynb")
    r = run_init(capsys, str(tmp_path / "digits.ipynb"), "--name", "hand-digits")
    assert r.code == 0
    assert "\nname: hand-digits\n" in (tmp_path / "nbflow.yaml").read_text()


def _notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    return write_notebook(
        path, [Cell(source, kind, tags=tuple(tags)) for kind, source, tags in cells]
    )


def test_invalid_proposal_is_written_with_diagnostics_and_exit_1(capsys, tmp_path):
    nb = _notebook(
        tmp_path / "bad.ipynb",
        [
            ("code", "import math", []),
            ("code", "n = 3\nm = math.floor(2.5)", ["parameters"]),
            ("markdown", "## Work", []),
            ("code", "total = n * m", []),
        ],
    )
    r = run_init(capsys, str(nb))
    assert r.code == 1
    text = (tmp_path / "nbflow.yaml").read_text()
    assert "TODO: cell 2 does more than assign literals (line 2)" in text
    assert "error[NBF" in r.err and "does not validate" in r.err


def test_notebook_with_headings_parameters_and_metric_validates(capsys, tmp_path):
    nb = _notebook(
        tmp_path / "Sales Forecast.ipynb",
        [
            ("markdown", "# Sales forecast", []),
            ("code", "import statistics\nWINDOW = 3", []),
            ("code", "horizon = 2\nscale = 1.5", ["parameters"]),
            ("markdown", "## Load the data\nSome text.\n### detail", []),
            ("code", "sales = [3, 4, 5, 7, 6, 8]", []),
            ("markdown", "## Forecast", []),
            ("code", "forecast = [statistics.mean(sales[-WINDOW:]) * scale] * horizon", []),
            ("markdown", "## Score", []),
            (
                "code",
                "rmse = (sum((f - s) ** 2 for f, s in zip(forecast, sales[-horizon:])) / horizon) ** 0.5",
                [],
            ),
            ("code", "", []),
        ],
    )
    r = run_init(capsys, str(nb))
    assert r.code == 0, r.err
    report, project = validate_manifest(tmp_path / "nbflow.yaml")
    assert report.ok and project is not None
    assert [s.name for s in project.steps] == ["load-the-data", "forecast", "score"]
    assert project.manifest.name == "sales-forecast"
    assert project.manifest.metrics["rmse"].goal == "minimize"
    assert project.setup == (2,) and project.skip == (10,)
    text = (tmp_path / "nbflow.yaml").read_text()
    assert "rmse: minimize  # TODO: check" in text
    assert (
        "parameters:  # assigned in cell 3, tagged `parameters`\n  horizon: 2\n  scale: 1.5\n"
        in text
    )


def test_ci_flag_writes_the_workflows(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workflows = tmp_path / ".github" / "workflows"
    r = run_init(capsys, "--ci", "github", "--root", str(tmp_path))
    assert r.code == 0 and "nbflow-deploy.yml" in r.out
    assert sorted(p.name for p in workflows.iterdir()) == [
        "nbflow-deploy.yml",
        "nbflow-validate.yml",
    ]
    assert not (tmp_path / "nbflow.yaml").exists()
    # with a notebook as well: the manifest first, then the CI files (--force rewrites them)
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "digits.ipynb")
    r = run_init(capsys, "digits.ipynb", "--ci", "github", "--force")
    assert r.code == 0 and (tmp_path / "nbflow.yaml").exists()
    assert r.out.index("wrote nbflow.yaml") < r.out.index("nbflow-deploy.yml")


def test_subprocess(tmp_path):
    shutil.copy(DIGITS / "digits.ipynb", tmp_path / "digits.ipynb")
    r = run_subprocess("init", "digits.ipynb", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.out.startswith("wrote nbflow.yaml from the notebook's structure: 4 steps")
    r = run_subprocess("init", "digits.ipynb", cwd=tmp_path)
    assert r.code == 2 and "already exists" in r.err


# -- pieces -------------------------------------------------------------------------------------------


def test_schema_ref(tmp_path):
    from nbflow.check.schema import SCHEMA_URL

    assert schema_ref(DIGITS) == "../../schemas/nbflow.v1.schema.json"
    assert schema_ref(tmp_path) == SCHEMA_URL
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "schemas").mkdir()
    (repo / "schemas" / "nbflow.v1.schema.json").write_text("{}")
    (repo / "a" / "b").mkdir(parents=True)
    assert schema_ref(repo / "a" / "b") == "../../schemas/nbflow.v1.schema.json"
    # a schema above the repository's root is not this repository's
    (tmp_path / "other" / ".git").mkdir(parents=True)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "nbflow.v1.schema.json").write_text("{}")
    assert schema_ref(tmp_path / "other").startswith("https://")


@pytest.mark.parametrize(
    "value",
    ["plain", "yes", "no", "on", "null", "~", "1.0", "12", "2024-01-01", "a: b", "#x", "x #y", "", " pad",
     "[a]", "{a}", "a,b", "*ref", "&a", "!tag", "@x", "`x`", "'q'", '"q"', "-", "- x", "?", "%x", "é",
     "line\nbreak", "tab\tx", True, False, 0, -3, 1.0, 0.001, 1e-05, 1e16, -2.5, None,
     [1, "a", "b,c"], {"k": "v,w", "n": 1.0}],
)  # fmt: skip
def test_scalar_round_trips(value):
    from nbflow.load.yaml_positions import load_text

    doc = load_text(f"k: {scalar(value)}\n", "t.yaml")
    assert doc.data["k"] == value and type(doc.data["k"]) is type(value)


def test_an_infinite_default_is_written_as_yaml_reads_it_and_refused():
    """`.inf` is what a notebook's `1e400` becomes; no KFP parameter can hold it (NBF012)."""
    from nbflow.load.yaml_positions import YamlLoadError, load_text

    assert scalar(float("inf")) == ".inf"
    with pytest.raises(YamlLoadError) as info:
        load_text(f"k: {scalar(float('inf'))}\n", "t.yaml")
    assert info.value.diagnostic.code == "NBF012"


def test_slug_and_unique():
    assert slug("1. Load the Data!") == "1-load-the-data"
    assert slug("Étape: données") == "etape-donnees"
    assert slug("***") == "step"
    assert len(slug("x" * 100)) == 63
    taken: set[str] = set()
    assert [unique("train", taken) for _ in range(3)] == ["train", "train-2", "train-3"]
    assert unique("y" * 63, {"y" * 63}) == "y" * 61 + "-2"


def test_cell_spec_folds_markdown_between_cells():
    nb = load_notebook(DIGITS / "digits.ipynb", "digits.ipynb")
    assert cell_spec([5, 6], nb, set()) == "5-6"
    assert cell_spec([8, 10], nb, set()) == "8-10"  # 9 is markdown
    assert cell_spec([8, 10], nb, {9}) == "[8, 10]"  # ... unless something else owns it
    assert cell_spec([2, 5, 6, 14], nb, {3}) == "[2, 5-6, 14]"
    assert cell_spec([12], nb, set()) == "12"


@pytest.mark.parametrize(
    ("name", "goal"),
    [("accuracy", "maximize"), ("val_acc", "maximize"), ("f1", "maximize"), ("roc_auc", "maximize"),
     ("test_loss", "minimize"), ("rmse", "minimize"), ("error_rate", "minimize"), ("r2", "maximize"),
     ("scores", None), ("model", None), ("accumulate", None), ("negative_mse", "maximize"),
     ("neg_log_loss", "maximize"), ("mse", "minimize"), ("negative_accuracy", "minimize")],
)  # fmt: skip
def test_metric_goal(name, goal):
    assert metric_goal(name) == goal


def test_pip_installs():
    assert pip_installs("!pip install -q tqdm 'rich>=13'\n# note\n%pip install -r req.txt x") == [
        "tqdm",
        "rich>=13",
        "x",
    ]
    assert pip_installs("import os") is None
    assert pip_installs("") is None


def test_written_yaml_loads_as_the_draft(tmp_path, capsys):
    """The hand-formatted YAML means what the draft says (spot check of the tricky values)."""
    from nbflow.load.yaml_positions import load_file

    nb = copy_case("kale-full", tmp_path)
    assert run_init(capsys, str(nb)).code == 0
    data = load_file(nb.parent / "nbflow.yaml").data
    assert data["steps"]["load-data"]["resources"] == {"cpu": "2", "memory": "4Gi"}
    assert data["tuning"]["search"]["bootstrap"] == [True, False]
    assert data["parameters"]["bootstrap"] is True
    assert json.dumps(data["volumes"][1]) == json.dumps(
        {
            "name": "scratch",
            "mountPath": "/scratch",
            "size": "5Gi",
            "storageClass": "fast",
            "accessMode": "ReadWriteMany",
        }
    )


def test_no_headings_gives_at_most_eight_steps_that_validate(capsys, tmp_path):
    # 51 cells, each making a value the next ones read, with peeks in between: init's data-flow
    # split alone would make a step of nearly every cell
    cells: list[str | Cell] = ["import math\n%matplotlib inline", "def half(v):\n    return v / 2"]
    for i in range(1, 50):
        cells.append(f"v{i} = half(v{i - 1}) + math.pi" if i > 1 else "v1 = 1.0")
        if i % 7 == 0:
            cells.append(f"v{i}")  # a peek
    cells.append("loss = v49 - v48\nprint(loss)")
    nb = write_notebook(tmp_path / "long.ipynb", cells)
    r = run_init(capsys, str(nb))
    assert r.code == 0, r.err
    report, project = validate_manifest(tmp_path / "nbflow.yaml")
    assert report.ok and project is not None
    assert 2 <= len(project.steps) <= 8
    assert project.setup == (1, 2)
    assert project.manifest.metrics["loss"].goal == "minimize"


def test_kaggle_style_notebook_proposal(capsys, tmp_path):
    nb = copy_case("plain-kaggle", tmp_path)
    assert run_init(capsys, str(nb)).code == 0
    report, project = validate_manifest(nb.parent / "nbflow.yaml")
    assert report.ok and not report.warnings and project is not None
    assert len(project.steps) == 8 and project.setup == (1, 2)
    # the untagged cell of constants is proposed as the parameters cell: not artifacts
    assert project.parameters_cell == 3
    assert [p.name for p in project.parameters] == ["test_size", "alpha", "n_trees", "seed"]
    assert project.manifest.metrics["negative_mse"].goal == "maximize"
    assert not any(d.code == "NBF702" for d in report.diagnostics)


def test_title_constants_and_setup_heading(capsys, tmp_path):
    nb = copy_case("plain-title-constants", tmp_path)
    assert run_init(capsys, str(nb)).code == 0
    report, project = validate_manifest(nb.parent / "nbflow.yaml")
    assert report.ok and project is not None
    # the title's constants are parameters, the "Setup" cell is setup, not steps of those names
    assert [s.name for s in project.steps] == ["data", "model", "evaluate"]
    assert project.setup == (4,) and project.parameters_cell == 2
    text = (nb.parent / "nbflow.yaml").read_text()
    for heading in ("Data", "Model", "Evaluate"):
        assert f'# from the heading "{heading}"' in text
    assert 'heading "iris-classifier"' not in text


def test_a_cell_of_constants_that_are_no_parameter_type_is_not_the_parameters_cell(
    capsys, tmp_path
):
    nb = write_notebook(
        tmp_path / "t.ipynb",
        [
            "classes = ('cat', 'dog')\nbatch = 4",
            "import math",
            "n = math.ceil(len(classes) / batch)",
        ],
    )
    assert run_init(capsys, str(nb)).code == 0
    report, project = validate_manifest(tmp_path / "nbflow.yaml")
    assert report.ok and project is not None and project.parameters_cell is None
