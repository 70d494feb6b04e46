"""Time the data-flow analysis and plan of a realistic 200-cell notebook.

    python bench/analysis.py [--cells 200] [--repeat 20]

Builds a notebook of imports, helper functions, pandas-style cells, plotting, magics and shell
commands, spread over setup, a parameters cell and 20 steps; then times, in this process,
``analyse_cell`` over every cell and ``make_plan`` (which analyses every cell itself), best of
``--repeat``. The import of nbflow.dataflow.planner is timed apart, in a fresh interpreter. The target is
well under 100 ms for the whole analysis and plan.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

TARGET_S = 0.100

SETUP = [
    "import os\nimport json\nimport numpy as np\nimport pandas as pd\n"
    "import matplotlib.pyplot as plt\nfrom sklearn.model_selection import train_test_split\n"
    "from sklearn.ensemble import RandomForestClassifier\n",
    "%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n",
    "DATA_DIR = os.environ.get('DATA_DIR', '/data')\n\n"
    "def read_table(name, **kw):\n    path = os.path.join(DATA_DIR, name)\n"
    "    return pd.read_csv(path, **kw)\n\n"
    "def plot_hist(frame, column, bins=BINS):\n    fig, ax = plt.subplots()\n"
    "    frame[column].hist(ax=ax, bins=bins)\n    return fig\n",
]
PARAMS = "n_estimators = 100\nmax_depth = 8\nseed = 0\nBINS = 30\ntest_size = 0.2\n"

# One block of cells; {b} is the block's number, {a} the previous block's. Every name a cell
# reads is defined by setup, the parameters cell, an earlier cell of its block or the block
# before: a well-formed notebook, as the analysis sees most of the time.
TEMPLATES = [
    "df{b} = read_table('part{b}.csv', sep=',')\n"
    "df{b} = pd.concat([df{b}, df{a}.tail(5)]) if {b} else df{b}\n",
    "df{b} = df{b}.dropna(subset=['a', 'b'])\ndf{b}['ratio'] = df{b}['a'] / (df{b}['b'] + 1)\n"
    "df{b} = df{b}[df{b}['ratio'] < df{b}['ratio'].quantile(0.99)]\n",
    "summary{b} = (\n    df{b}.groupby('key')\n    .agg(mean_a=('a', 'mean'), n=('a', 'size'))\n"
    "    .reset_index()\n)\nsummary{b}.head()\n",
    "def feature{b}(frame, k=3):\n    out = frame.copy()\n    for j in range(k):\n"
    "        out[f'f{{j}}'] = out['a'].shift(j) * scale{b}\n    return out\n\nscale{b} = 0.5\n",
    "X{b} = feature{b}(df{b}).fillna(0).to_numpy()\ny{b} = (df{b}['label'] > 0).astype(int).to_numpy()\n",
    "X_train{b}, X_test{b}, y_train{b}, y_test{b} = train_test_split(\n"
    "    X{b}, y{b}, test_size=test_size, random_state=seed)\n",
    "model{b} = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth)\n"
    "model{b}.fit(X_train{b}, y_train{b})\n",
    "%%time\nscores{b} = {{name: m.score(X_test{b}, y_test{b}) for name, m in [('rf', model{b})]}}\n",
    "fig{b} = plot_hist(df{b}, 'ratio')\nplt.close(fig{b})\n",
    "!ls {{DATA_DIR}} | head\nfiles{b} = !ls {{DATA_DIR}}\ncounts{b} = len(files{b})\n",
    "with open(os.path.join(DATA_DIR, 'meta{b}.json')) as fh:\n    meta{b} = json.load(fh)\n"
    "meta{b}.update({{'rows': len(df{b})}})\n",
    "try:\n    best{b} = max(scores{b}.values())\nexcept (ValueError, NameError) as err:\n"
    "    best{b} = float('nan')\nprint(f'best={{best{b}:.3f}}')\n",
    "class Wrapper{b}:\n    def __init__(self, model):\n        self.model = model\n"
    "    def predict(self, X):\n        return self.model.predict(X) > threshold{b}\n"
    "threshold{b} = 0.5\nwrapped{b} = Wrapper{b}(model{b})\npreds{b} = wrapped{b}.predict(X_test{b})\n",
    "match meta{b}:\n    case {{'rows': int(n)}} if n > 0:\n        rows{b} = n\n    case _:\n"
    "        rows{b} = 0\n",
    "values{b} = np.array([v ** 2 for v in range(100) if v % 3])\ntotal{b} = values{b}.sum()\n"
    "del values{b}\nbest = best{b}\n",
]


def build(n_cells: int) -> tuple[dict[int, str], list[int], int, list[tuple[str, tuple[int, ...]]]]:
    cells: dict[int, str] = {}
    number = 1
    for src in SETUP:
        cells[number] = src
        number += 1
    setup = list(range(1, number))
    params_cell = number
    cells[number] = PARAMS
    number += 1
    body: list[int] = []
    i = 0
    while number <= n_cells:
        b = i // len(TEMPLATES)
        cells[number] = TEMPLATES[i % len(TEMPLATES)].format(b=b, a=max(b - 1, 0))
        body.append(number)
        number += 1
        i += 1
    n_steps = 20
    size = max(len(body) // n_steps, 1)
    steps = [
        (f"step-{k:02d}", tuple(body[k * size : (k + 1) * size if k < n_steps - 1 else len(body)]))
        for k in range(n_steps)
        if body[k * size : (k + 1) * size]
    ]
    return cells, setup, params_cell, steps


def best_of(repeat: int, fn: object) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def import_cost() -> float:
    code = "import time; t = time.perf_counter(); import nbflow.dataflow.planner; print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    ]
    return min(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    from nbflow.dataflow.cell_flow import analyse_cell
    from nbflow.dataflow.planner import StepInput, make_plan
    from nbflow.diagnostics import Location

    cells, setup, params_cell, steps = build(args.cells)
    inputs = [
        StepInput(n, c, (), Location("nbflow.yaml", line=i + 1)) for i, (n, c) in enumerate(steps)
    ]

    def analyse() -> None:
        for n, src in cells.items():
            analyse_cell(n, src)

    def plan() -> tuple[object, list[object]]:
        return make_plan(
            cells=cells,
            setup=setup,
            steps=inputs,
            parameters=["n_estimators", "max_depth", "seed", "BINS", "test_size"],
            parameters_cell=params_cell,
            metrics=["best"],
            manifest_path="nbflow.yaml",
            notebook_path="bench.ipynb",
        )

    result, diags = plan()
    n_lines = sum(src.count("\n") + 1 for src in cells.values())
    edges = len(result.edges)  # type: ignore[attr-defined]
    t_analyse = best_of(args.repeat, analyse)
    t_plan = best_of(args.repeat, plan)
    t_import = import_cost()
    ipython = "IPython" in sys.modules
    print(
        f"notebook: {len(cells)} code cells, {n_lines} lines, {len(steps)} steps, {edges} edges, {len(diags)} diagnostics"
    )
    print(f"analyse_cell x {len(cells)}:     {t_analyse * 1000:7.2f} ms (best of {args.repeat})")
    print(f"make_plan (analysis + plan): {t_plan * 1000:7.2f} ms (best of {args.repeat})")
    print(
        f"import nbflow.dataflow.planner:          {t_import * 1000:7.2f} ms (fresh interpreter, best of 5)"
    )
    print(f"IPython imported by the analysis: {'yes' if ipython else 'no'}")
    print(f"make_plan / 100 ms target:   {t_plan / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
