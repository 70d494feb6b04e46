"""Build the notebooks of tests/kale_cases, and with --golden their expected outputs.

    python tests/kale_cases/make.py            # (re)write every case's notebook
    python tests/kale_cases/make.py --golden   # and expected.yaml / expected-warnings.txt

Each case is a folder with one notebook, `expected.yaml` (the manifest `nbflow init` writes for
a copy of the notebook outside any repository, byte for byte) and `expected-warnings.txt` (the
warnings it prints, one a line). `kale-*` cases carry Kale's tags and metadata; `plain-*` cases
don't. Cell ids are fixed so that the notebooks are the same bytes on every run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent


def code(source: str, *tags: str) -> dict[str, Any]:
    return {"type": "code", "source": source, "tags": list(tags)}


def md(source: str) -> dict[str, Any]:
    return {"type": "markdown", "source": source}


def notebook(
    cells: list[dict[str, Any]], kale: dict[str, Any] | None = None
) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    if kale is not None:
        nb.metadata["kubeflow_notebook"] = kale
    for i, c in enumerate(cells, start=1):
        if c["type"] == "code":
            cell = nbformat.v4.new_code_cell(c["source"])
            if c["tags"]:
                cell.metadata["tags"] = c["tags"]
        else:
            cell = nbformat.v4.new_markdown_cell(c["source"])
        cell.id = f"cell-{i:02d}"
        nb.cells.append(cell)
    return nb


IMAGE_GPU = "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"

CASES: dict[str, tuple[str, nbformat.NotebookNode]] = {}

# Every Kale 2.3.0 tag and metadata key nbflow reads.
CASES["kale-full"] = (
    "churn.ipynb",
    notebook(
        [
            md("# Churn\nA random forest on a synthetic data set, tagged for Kale."),
            code("import json\nimport numpy as np", "imports"),
            code(
                "from sklearn.datasets import make_classification\n"
                "from sklearn.ensemble import RandomForestClassifier\n"
                "from sklearn.metrics import accuracy_score, log_loss"
            ),
            code(
                "def split(X, y, frac):\n    n = int(len(X) * (1 - frac))\n    return X[:n], X[n:], y[:n], y[n:]",
                "functions",
            ),
            code(
                'n_estimators = 50\nmax_depth = 4\ncriterion = "gini"\nbootstrap = True\nval_frac = 0.2',
                "pipeline-parameters",
            ),
            code(
                "X, y = make_classification(n_samples=500, random_state=0)",
                "step:load_data",
                "limit:cpu:2",
                "limit:memory:4Gi",
                "annotation:team:ml",
                "label:tier:gold",
            ),
            code("print(X.shape)"),
            md("## Explore"),
            code("import matplotlib.pyplot as plt\nplt.hist(y)", "skip"),
            code("X_train, X_val, y_train, y_val = split(X, y, val_frac)", "remove-output"),
            code(
                "model = RandomForestClassifier(\n"
                "    n_estimators=n_estimators, max_depth=max_depth, criterion=criterion,\n"
                "    bootstrap=bootstrap, random_state=0,\n"
                ")\nmodel.fit(X_train, y_train)",
                "step:train",
                "prev:load_data",
                "limit:nvidia.com/gpu:1",
                f"image:{IMAGE_GPU}",
                "cache:disabled",
            ),
            code(
                "accuracy = accuracy_score(y_val, model.predict(X_val))\n"
                "val_loss = log_loss(y_val, model.predict_proba(X_val))",
                "step:evaluate",
                "prev:train",
                "secret:db-credentials:password:DB_PASSWORD",
                "report:disabled",
                "limit:ephemeral-storage:1Gi",
            ),
            code('print(json.dumps({"accuracy": accuracy}))'),
            code("print(accuracy)\nprint(val_loss)", "pipeline-metrics"),
            code(""),
        ],
        {
            "pipeline_name": "churn",
            "experiment_name": "churn-experiments",
            "pipeline_description": "Predict churn with a random forest.",
            "base_image": "python:3.12-slim",
            "enable_caching": True,
            "steps_defaults": ["limit:memory:1Gi", "label:app:churn"],
            "volumes": [
                {
                    "name": "churn-data",
                    "type": "pvc",
                    "mount_point": "/data",
                    "annotations": [{"key": "backup", "value": "daily"}],
                    "expose_as_env_var": True,
                },
                {
                    "name": "scratch",
                    "type": "new_pvc",
                    "mount_point": "/scratch",
                    "size": 5,
                    "size_type": "Gi",
                    "storage_class_name": "fast",
                    "volume_access_mode": "rwm",
                },
                {"name": "legacy", "type": "pv", "mount_point": "/legacy"},
            ],
            "katib_run": True,
            "katib_metadata": {
                "parameters": [
                    {
                        "name": "n_estimators",
                        "parameterType": "int",
                        "feasibleSpace": {"min": "10", "max": "200", "step": "10"},
                    },
                    {
                        "name": "max_depth",
                        "parameterType": "discrete",
                        "feasibleSpace": {"list": ["2", "4", "8"]},
                    },
                    {
                        "name": "criterion",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["gini", "entropy"]},
                    },
                    {
                        "name": "bootstrap",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["True", "False"]},
                    },
                ],
                "objective": {
                    "type": "maximize",
                    "objectiveMetricName": "accuracy",
                    "goal": 0.95,
                    "additionalMetricNames": ["val-loss"],
                },
                "algorithm": {
                    "algorithmName": "bayesianoptimization",
                    "algorithmSettings": [
                        {"name": "random_state", "value": "10"},
                        {"name": "acq_func", "value": "EI"},
                    ],
                },
                "maxTrialCount": 20,
                "parallelTrialCount": 4,
                "maxFailedTrialCount": 2,
            },
            "kfp_host": "http://ml-pipeline.kubeflow.svc:8888",
        },
    ),
)

# A Kale 1.x notebook: `block:` tags, `docker_image`, a parameters block over two cells, an
# untagged cell before any tag, a limit on a cell without a step, a `prev:` to no step.
CASES["kale-v1"] = (
    "Loss Curve.ipynb",
    notebook(
        [
            code("!pip install -q tqdm"),
            code("import math", "imports"),
            code("lr = 0.1", "pipeline-parameters"),
            code("epochs = 3"),
            code(
                "weights = [1.0, -2.0, 0.5]\nfor _ in range(epochs):\n    weights = [w - lr * math.copysign(1, w) for w in weights]",
                "block:train_model",
            ),
            code("train_loss = sum(abs(w) for w in weights)", "limit:cpu:1"),
            code(
                'print(f"loss {train_loss:.3f}")', "block:report", "prev:train_model", "prev:tune"
            ),
            code("print(train_loss)", "pipeline-metrics"),
        ],
        {
            "experiment": {"id": "new", "name": "loss"},
            "experiment_name": "loss",
            "pipeline_name": "Loss_Curve",
            "pipeline_description": "",
            "docker_image": "gcr.io/kubeflow-kale/jupyter-kale:v0.7.0",
            "volumes": [],
            "katib_run": True,
            "katib_metadata": {
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["0.1", "0.01"]},
                    },
                ],
                "objective": {"type": "minimize", "objectiveMetricName": "train-loss"},
                "algorithm": {"algorithmName": "grid"},
                "maxTrialCount": 2,
                "maxFailedTrialCount": 1,
                "parallelTrialCount": 1,
            },
        },
    ),
)

# Step defaults for every step, caching off for the pipeline, a `notebook:` reference whose
# following cells join the next step, AMD GPUs, a volume exposed as an env var.
CASES["kale-defaults"] = (
    "defaults.ipynb",
    notebook(
        [
            code("import os", "imports"),
            code('rows = 100\nname = "demo"', "pipeline-parameters"),
            code(
                'data = list(range(rows))\nout_dir = os.environ.get("KALE_VOLUME_WORK", "/work")',
                "step:prepare",
                "limit:memory:2Gi",
            ),
            code("# holds no code: references another notebook", "notebook:features"),
            code("total = sum(data)"),
            code(
                'summary = f"{name}: {total} in {out_dir}"',
                "step:summarize",
                "cache:enabled",
                "limit:amd.com/gpu:2",
            ),
            code("print(summary)", "step:show", "prev:summarize"),
        ],
        {
            "pipeline_name": "defaults-demo",
            "experiment_name": "defaults-demo",
            "pipeline_description": "",
            "base_image": "",
            "enable_caching": False,
            "steps_defaults": [
                "limit:cpu:500m",
                "limit:memory:512Mi",
                f"image:{IMAGE_GPU}",
                "secret:s3:key:AWS_KEY",
            ],
            "volumes": [
                {"name": "work", "type": "pvc", "mount_point": "/work", "expose_as_env_var": True}
            ],
            "storage_class_name": "standard",
            "timeout": 3600,
        },
    ),
)

# Small enough to run here: `nbflow run` on the imported project (tests/test_kale.py, slow).
CASES["kale-iris-run"] = (
    "iris.ipynb",
    notebook(
        [
            md("# Iris\nLogistic regression on scikit-learn's bundled iris data, tagged for Kale."),
            code(
                "import numpy as np\n"
                "from sklearn.datasets import load_iris\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.model_selection import train_test_split",
                "imports",
            ),
            code(
                "def accuracy_of(model, X, y):\n    return float(np.mean(model.predict(X) == y))",
                "functions",
            ),
            code("C = 1.0\ntest_size = 0.3\nmax_iter = 200", "pipeline-parameters"),
            code("iris = load_iris()\nX, y = iris.data, iris.target", "step:load_data"),
            code("print(X.shape)"),
            code(
                "X_train, X_test, y_train, y_test = train_test_split(\n"
                "    X, y, test_size=test_size, random_state=0, stratify=y\n)",
                "step:split",
                "prev:load_data",
            ),
            code(
                "model = LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)",
                "step:train",
                "prev:split",
                "limit:cpu:1",
                "limit:memory:1Gi",
            ),
            code(
                'accuracy = accuracy_of(model, X_test, y_test)\nprint(f"accuracy {accuracy:.3f}")',
                "step:evaluate",
                "prev:train",
            ),
            code("print(accuracy)", "pipeline-metrics"),
        ],
        {
            "pipeline_name": "iris-kale",
            "experiment_name": "iris",
            "pipeline_description": "Classify iris flowers.",
            "base_image": "python:3.11-slim",
            "volumes": [],
            "katib_run": True,
            "katib_metadata": {
                "parameters": [
                    {
                        "name": "C",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.01", "max": "10"},
                    }
                ],
                "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
                "algorithm": {"algorithmName": "random"},
                "maxTrialCount": 6,
                "parallelTrialCount": 2,
                "maxFailedTrialCount": 1,
            },
        },
    ),
)

# Plain notebooks: headings, a papermill `parameters` cell, metric names, scratch cells.
CASES["plain-headings"] = (
    "Churn Model.ipynb",
    notebook(
        [
            md("# Churn model"),
            code("!pip install -q tqdm"),
            code(
                "%matplotlib inline\nimport warnings\n\nimport numpy as np\nimport pandas as pd\n\n"
                'warnings.filterwarnings("ignore")\nSEED = 0'
            ),
            code(
                'def standardize(df):\n    """Zero mean, unit variance."""\n    return (df - df.mean()) / df.std()'
            ),
            code(
                'n_rows = 200\nthreshold = 0.5\nlabel = "churn"\nuse_fast = False\ncols = ["a", "b"]',
                "parameters",
            ),
            md("## 1. Load data"),
            code(
                "rng = np.random.default_rng(SEED)\n"
                "df = pd.DataFrame(rng.normal(size=(n_rows, 2)), columns=cols)\n"
                'df[label] = (df["a"] + df["b"] > 0).astype(int)'
            ),
            md("### Peek"),
            code("df.describe()"),
            md("## Features"),
            code("X = standardize(df[cols]).to_numpy()\ny = df[label].to_numpy()"),
            md("## Evaluate"),
            code(
                "scores = X @ np.ones(X.shape[1])\n"
                "pred = (scores > (0 if use_fast else threshold)).astype(int)\n"
                "accuracy = float((pred == y).mean())\n"
                "val_loss = float(np.mean((scores - y) ** 2))"
            ),
            code("# scratch: compare by eye\nprint(accuracy, val_loss)"),
            code(""),
        ]
    ),
)

# No headings: steps from data flow.
CASES["plain-dataflow"] = (
    "flow.ipynb",
    notebook(
        [
            code(
                "import numpy as np\nfrom sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression"
            ),
            code("C = 0.5", "parameters"),
            code("iris = load_iris()\nX, y = iris.data, iris.target"),
            code("print(X.shape, y.shape)"),
            code("X = (X - X.mean(axis=0)) / X.std(axis=0)"),
            code("model = LogisticRegression(C=C, max_iter=500).fit(X, y)"),
            code("error_rate = float(np.mean(model.predict(X) != y))\nprint(error_rate)"),
            code("model"),
        ]
    ),
)

# Kale's Katib panel as users leave it: grid search chosen after Bayesian optimisation (whose
# settings stay in the metadata), categorical values as strings, an int default searched over
# fractions, more trials than the grid has combinations, a metrics cell printing parameters, and
# Katib parameters that are not the notebook's (`bs` for `batch_size`, `dropout` for nothing).
CASES["kale-katib-grid"] = (
    "sgd.ipynb",
    notebook(
        [
            code("import numpy as np", "imports"),
            code(
                "def loss_of(w, lr, momentum):\n    return float(np.mean((w - lr * momentum) ** 2))",
                "functions",
            ),
            code(
                "lr = 0\nmomentum = 0.9\noptimizer = 'sgd'\nbatch_size = 32", "pipeline-parameters"
            ),
            code("w = np.ones(batch_size)", "block:init"),
            code(
                "mse = loss_of(w, lr, momentum) if optimizer == 'sgd' else 1.0",
                "step:fit",
                "prev:init",
            ),
            code("negative_mse = -mse"),
            code("print(lr)\nprint(momentum)\nprint(mse)\nprint(negative_mse)", "pipeline-metrics"),
        ],
        {
            "pipeline_name": "sgd",
            "katib_run": True,
            "katib_metadata": {
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["0.0001", "0.001", "0.01", "0.1"]},
                    },
                    {
                        "name": "momentum",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.5", "max": "0.9", "step": "0.2"},
                    },
                    {
                        "name": "optimizer",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["sgd", "adam"]},
                    },
                    {
                        "name": "bs",
                        "parameterType": "discrete",
                        "feasibleSpace": {"list": ["16", "32"]},
                    },
                    {
                        "name": "dropout",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.1", "max": "0.5", "step": "0.1"},
                    },
                ],
                "objective": {"type": "minimize", "objectiveMetricName": "mse"},
                "algorithm": {
                    "algorithmName": "grid",
                    "algorithmSettings": [
                        {"name": "acq_optimizer", "value": "auto"},
                        {"name": "acq_func", "value": "gp_hedge"},
                        {"name": "base_estimator", "value": "GP"},
                        {"name": "random_state", "value": "7"},
                    ],
                },
                "maxTrialCount": 128,
                "parallelTrialCount": 3,
                "maxFailedTrialCount": 3,
            },
        },
    ),
)

# A Kaggle-style notebook: no headings, no tags, one thing per cell, plots and peeks between
# the work. init groups it into a few steps by where values are made and used.
CASES["plain-kaggle"] = (
    "house-prices.ipynb",
    notebook(
        [
            code(
                "%matplotlib inline\nimport numpy as np\nimport pandas as pd\n"
                "import matplotlib.pyplot as plt\nfrom sklearn.model_selection import train_test_split\n"
                "from sklearn.linear_model import Ridge\nfrom sklearn.ensemble import RandomForestRegressor\n"
                "from sklearn.metrics import mean_squared_error"
            ),
            code("def rmse_of(y, p):\n    return float(np.sqrt(mean_squared_error(y, p)))"),
            code("test_size = 0.2\nalpha = 1.0\nn_trees = 50\nseed = 42"),
            code(
                "rng = np.random.default_rng(seed)\n"
                "train = pd.DataFrame(rng.normal(size=(300, 4)), columns=['area', 'rooms', 'age', 'noise'])\n"
                "train['price'] = 3 * train['area'] + train['rooms'] - 0.5 * train['age'] + rng.normal(size=300)"
            ),
            code("train.head()"),
            code("train.shape"),
            code("train.describe()"),
            code("train.isnull().sum()"),
            code("plt.hist(train['price'], bins=30)\nplt.show()"),
            code("corr = train.corr()\ncorr['price'].sort_values()"),
            code("plt.imshow(corr)\nplt.colorbar()\nplt.show()"),
            code("train = train.drop(columns=['noise'])"),
            code("train['area_per_room'] = train['area'] / (train['rooms'].abs() + 1)"),
            code("train['old'] = (train['age'] > 0).astype(int)"),
            code("features = [c for c in train.columns if c != 'price']\nfeatures"),
            code("X = train[features].to_numpy()\ny = train['price'].to_numpy()"),
            code("X.shape, y.shape"),
            code(
                "X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=test_size, random_state=seed)"
            ),
            code("ridge = Ridge(alpha=alpha).fit(X_train, y_train)"),
            code("ridge_pred = ridge.predict(X_val)"),
            code("ridge_rmse = rmse_of(y_val, ridge_pred)\nprint(ridge_rmse)"),
            code("plt.scatter(y_val, ridge_pred)\nplt.show()"),
            code(
                "forest = RandomForestRegressor(n_estimators=n_trees, random_state=seed).fit(X_train, y_train)"
            ),
            code("forest_pred = forest.predict(X_val)"),
            code("forest_rmse = rmse_of(y_val, forest_pred)\nprint(forest_rmse)"),
            code("importances = pd.Series(forest.feature_importances_, index=features)"),
            code("importances.sort_values().plot.barh()\nplt.show()"),
            code("blend = 0.5 * ridge_pred + 0.5 * forest_pred"),
            code("rmse = rmse_of(y_val, blend)\nnegative_mse = -rmse ** 2\nprint(rmse)"),
            code(
                "results = pd.DataFrame({'model': ['ridge', 'forest', 'blend'], 'rmse': [ridge_rmse, forest_rmse, rmse]})"
            ),
            code("results"),
            code("plt.bar(results['model'], results['rmse'])\nplt.show()"),
        ]
    ),
)

# A title, then a cell of constants (the run's settings, though not tagged), then a "Setup"
# heading over the imports: the constants are the parameters, the imports setup.
CASES["plain-title-constants"] = (
    "iris classifier.ipynb",
    notebook(
        [
            md("# Iris classifier\nA small logistic regression."),
            code("test_size = 0.3\nC = 1.0\nmax_iter = 200"),
            md("## Setup"),
            code(
                "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
                "from sklearn.datasets import load_iris\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.model_selection import train_test_split\n\n"
                'plt.rcParams["figure.figsize"] = (6, 4)\nnp.set_printoptions(precision=3)'
            ),
            md("## Data"),
            code("X, y = load_iris(return_X_y=True)"),
            code(
                "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=0)"
            ),
            md("## Model"),
            code("model = LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)"),
            md("## Evaluate"),
            code("accuracy = float(np.mean(model.predict(X_test) == y_test))\nprint(accuracy)"),
            code("plt.bar(['accuracy'], [accuracy])\nplt.show()"),
        ]
    ),
)

# Nothing to go on: no parameters cell, no metric, two headings with the same text.
CASES["plain-bare"] = (
    "bare.ipynb",
    notebook([md("## Step"), code('x = len("abc")'), md("## Step"), code("print(x + 1)")]),
)


def write_notebooks() -> None:
    for case, (name, nb) in CASES.items():
        folder = HERE / case
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.ipynb"):
            if old.name != name:
                old.unlink()
        nbformat.write(nb, str(folder / name))


def upstream_cases() -> dict[str, str]:
    """Kale 2.3.0's own test notebooks (kale/tests/assets/notebooks of the kubeflow-kale wheel,
    Apache-2.0, see KALE-LICENSE), copied as they are into kale-upstream-* folders."""
    return {p.name: next(p.glob("*.ipynb")).name for p in sorted(HERE.glob("kale-upstream-*"))}


def write_golden() -> None:
    """Run `nbflow init` on a copy of each notebook outside the repository; keep what it wrote."""
    from nbflow.authoring.init import init

    names = {case: name for case, (name, _) in CASES.items()} | upstream_cases()
    for case, name in names.items():
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / name
            shutil.copy(HERE / case / name, copy)
            result = init(copy)
            (HERE / case / "expected.yaml").write_text(
                result.manifest.read_text(encoding="utf-8"), encoding="utf-8"
            )
            warnings = [f"nbflow: warning: {note}" for note in result.notes]
            (HERE / case / "expected-warnings.txt").write_text(
                "".join(f"{w}\n" for w in warnings), encoding="utf-8"
            )
            print(f"{case}: {'ok' if result.report.ok else 'ERRORS'}, {len(warnings)} warnings")


if __name__ == "__main__":
    write_notebooks()
    if "--golden" in sys.argv[1:]:
        write_golden()
