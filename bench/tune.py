"""Time `nbflow tune` against executing the whole notebook once per trial (what a tuning loop
around papermill does), on a notebook whose data preparation is most of the work.

The notebook: `prepare` generates a regression data set and embeds it with a fixed random
network (a stand-in for a pretrained feature extractor; about 1-2 s); `fit` fits a ridge
regression with the searched `alpha` and computes the validation R^2, the objective.

  (a) `nbflow tune` with N trials (default 8), run as a user does: a fresh process, timed
      from start to end; per step, how many trials ran it and how many hit the cache
      (target: `prepare` ran once);
  (b) a loop executing the whole notebook N times with nbclient (fresh kernel each time, the
      parameters cell replaced by the same trial's values, as papermill does);
  target: tune wall / loop wall <= 0.5. The two must agree on every trial's objective.

    python bench/tune.py [--trials 8] [--parallel 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.projects import md, tagged, write_project  # noqa: E402

CELLS = [
    md("# Ridge on embedded features"),
    "import numpy as np",
    tagged("alpha = 1.0\nn_samples = 6000\nseed = 0", "parameters"),
    md("## Prepare: data and features (the expensive part)"),
    """\
rng = np.random.default_rng(seed)
X = rng.normal(size=(n_samples, 40))
w = rng.normal(size=40)
y = np.sin(X @ w / 4) + 0.3 * np.cos(X[:, 0] * X[:, 1]) + 0.1 * rng.normal(size=n_samples)
# embed with a fixed random network: 6 layers of 512 units
h = X
for layer in range(6):
    W = rng.normal(scale=1 / np.sqrt(h.shape[1]), size=(h.shape[1], 512))
    h = np.tanh(h @ W + 0.1)
    h = (h - h.mean(0)) / (h.std(0) + 1e-6)
features = h
split = int(0.8 * n_samples)
F_train, F_val, y_train, y_val = features[:split], features[split:], y[:split], y[split:]
""",
    md("## Fit and score (cheap)"),
    """\
A = F_train.T @ F_train + alpha * np.eye(F_train.shape[1])
coef = np.linalg.solve(A, F_train.T @ y_train)
pred = F_val @ coef
r2 = float(1 - np.sum((y_val - pred) ** 2) / np.sum((y_val - y_val.mean()) ** 2))
print(f"r2={r2!r}")
""",
]

MANIFEST = """
name: ridge
setup: 2
steps:
  prepare: {cells: 5}
  fit: {cells: 7}
parameters: {alpha: 1.0, n_samples: 6000, seed: 0}
metrics: {r2: maximize}
tuning:
  objective: r2
  algorithm: random
  settings: {random_state: 0}
  maxTrials: 8
  parallelTrials: 1
  search:
    alpha: {min: 0.001, max: 10000, log: true}
"""

# what a user runs, through the library API (the same as `nbflow tune --json`)
DRIVER = """
import json, sys
from nbflow.local.tune import tune
from nbflow.check.validate import load_project
report, project = load_project(sys.argv[1])
result = tune(project, trials=int(sys.argv[2]), parallel=int(sys.argv[3]))
print(json.dumps(result.to_json(), default=str))
"""


def run_tune(root: Path, trials: int, parallel: int) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(root), str(trials), str(parallel)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - started, json.loads(proc.stdout.strip().splitlines()[-1])


def run_loop(root: Path, trials: list[dict]) -> tuple[float, list[float]]:
    import nbformat
    from nbclient import NotebookClient

    source = nbformat.read(root / "nb.ipynb", as_version=4)
    values: list[float] = []
    started = time.perf_counter()
    with _quiet_stderr():  # each kernel warns that it runs over TCP without encryption
        for t in trials:
            nb = nbformat.from_dict(json.loads(json.dumps(source)))
            params = {"alpha": 1.0, "n_samples": 6000, "seed": 0, **t["parameters"]}
            for cell in nb.cells:
                if "parameters" in cell.get("metadata", {}).get("tags", []):
                    cell.source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
            NotebookClient(nb, kernel_name="python3", cwd=str(root)).execute()
            out = "".join(
                o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
            )
            values.append(float(out.rsplit("r2=", 1)[1].split()[0]))
    return time.perf_counter() - started, values


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="trials at once for nbflow tune (the loop runs one at a time)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="alternate tune and loop this many times; medians are reported",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nbflow-bench-tune-"))
    tune_walls: list[float] = []
    loop_walls: list[float] = []
    try:
        for i in range(args.repeat):
            root = write_project(tmp / f"ridge-{i}", CELLS, MANIFEST)  # a cold cache each time
            wall, result = run_tune(root, args.trials, args.parallel)
            tune_walls.append(wall)
            if i == 0:
                first_result = result
                trials = result["trials"]
                run = json.loads((Path(trials[0]["run_dir"]) / "run.json").read_text())
                prepare_s = next(s["seconds"] for s in run["steps"] if s["name"] == "prepare")
                fit_s = [
                    next(
                        s["seconds"]
                        for s in json.loads((Path(t["run_dir"]) / "run.json").read_text())["steps"]
                        if s["name"] == "fit"
                    )
                    for t in trials
                ]
            wall, loop_values = run_loop(root, trials)
            loop_walls.append(wall)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = first_result
    n = len(trials)
    tune_wall, loop_wall = statistics.median(tune_walls), statistics.median(loop_walls)
    print(
        f"{n} trials of `alpha` (random search, seeded: the same values each time); median of {args.repeat}"
    )
    print(
        f"  step `prepare` {prepare_s:.2f} s in trial 1; step `fit` {statistics.median(fit_s):.2f} s median"
    )
    print(
        f"nbflow tune (parallel {args.parallel}): {tune_wall:6.1f} s wall  {_spread(tune_walls)}  fresh process, cold cache"
    )
    for name, c in result["step_runs"].items():
        target = "  (target: 1)" if name == "prepare" else ""
        print(f"    {name:<8} ran in {c['ran']}/{n} trials, cached in {c['cached']}{target}")
    print(
        f"nbclient loop:           {loop_wall:6.1f} s wall  {_spread(loop_walls)}  whole notebook {n} times"
    )
    agree = all(abs(t["value"] - v) < 1e-9 for t, v in zip(trials, loop_values, strict=True))
    print(f"objectives agree trial by trial: {'yes' if agree else 'NO'}")
    best = result["best"]
    print(f"best: r2={best['value']:.4f} with alpha={best['parameters']['alpha']:.4g}")
    ratio = tune_wall / loop_wall
    ok = ratio <= 0.5 and result["step_runs"]["prepare"]["ran"] == 1 and agree
    print(f"tune / loop = {ratio:.2f} (target <= 0.50): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


def _spread(values: list[float]) -> str:
    return f"(runs: {', '.join(f'{v:.1f}' for v in values)})"


if __name__ == "__main__":
    raise SystemExit(main())
