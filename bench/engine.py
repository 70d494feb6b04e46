"""The local engine's targets (issue 14, item 8), each measured side by side in one run.

Every figure is a whole command in a fresh process (CLI start included), min / median / max of
N runs (default 3), interleaved with what it is compared to so that the machine's load touches
both alike:
  1. digits: `nbflow run --no-cache` / the notebook executed straight through with nbclient
     (kernel start included); target <= 1.3x. kfp.local's figure beside it.
  2. Titanic-like, five independent classifier steps after a load step: the same ratio;
     target <= 1.5x.
  3. the fixed cost of a trivial step: (a 9-step chain of `x = x + 1` - a 1-step one) / 8,
     `--jobs 1`; target <= 0.3 s.
  4. two independent steps that each sleep 3 s: wall of `nbflow run --no-cache`; target <= 5.5 s.
  5. a second `nbflow run` of an unchanged project (everything cached); target <= 1 s.

    python bench/engine.py [--repeat 3] [--only 1,2,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

NBCLIENT = """\
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
"""

TITANIC_SETUP = """\
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC"""
TITANIC_MODELS = {
    "logreg": "LogisticRegression(max_iter=500)",
    "forest": "RandomForestClassifier(n_estimators=150, random_state=0)",
    "boost": "GradientBoostingClassifier(random_state=0)",
    "knn": "KNeighborsClassifier()",
    "svc": "SVC()",
}


def notebook(root: Path, name: str, sources: list[str], manifest: str) -> Path:
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": s, "outputs": [],
         "execution_count": None}
        for i, s in enumerate(sources, 1)
    ]  # fmt: skip
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.ipynb").write_text(json.dumps(nb))
    (root / "nbflow.yaml").write_text(
        f"apiVersion: nbflow/v1\nname: {name}\nnotebook: {name}.ipynb\n{manifest}"
    )
    return root


def titanic(root: Path) -> Path:
    sources = [
        TITANIC_SETUP,
        "X, y = make_classification(n_samples=1500, n_features=20, random_state=0)",
        *(f"{k} = {v}.fit(X, y).score(X, y)" for k, v in TITANIC_MODELS.items()),
    ]
    steps = "\n".join(f"  {k}: {{cells: {i}}}" for i, k in enumerate(TITANIC_MODELS, 3))
    return notebook(root, "titanic", sources, f"setup: 1\nsteps:\n  load: {{cells: 2}}\n{steps}\n")


def chain(root: Path, n: int) -> Path:
    sources = ["x = 0", *["x = x + 1"] * n]
    steps = "\n".join(f"  s{i}: {{cells: {i + 1}}}" for i in range(1, n + 1))
    return notebook(root, f"chain{n}", sources, f"setup: 1\nsteps:\n{steps}\n")


def sleeps(root: Path) -> Path:
    sources = ["import time", "time.sleep(3)\na = 1", "time.sleep(3)\nb = 1"]
    return notebook(root, "sleeps", sources, "setup: 1\nsteps:\n  a: {cells: 2}\n  b: {cells: 3}\n")


def wall(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    # this checkout's nbflow, whatever is installed
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds


def side_by_side(repeat: int, **commands: Callable[[], float]) -> dict[str, list[float]]:
    """Each command once per round, in turn: the load of the moment touches all of them."""
    out: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            out[name].append(command())
    return out


def fmt(values: list[float]) -> str:
    return f"{min(values):6.2f} / {statistics.median(values):6.2f} / {max(values):6.2f} s"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default="1,2,3,4,5")
    args = p.parse_args()
    only = {int(x) for x in args.only.split(",")}
    py = sys.executable
    env_note = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at start"
    print(f"nbflow local engine, min / median / max of {args.repeat} ({env_note})")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # measured: ~0.1 s CPU more per `nbflow run` of a cached project than with .pyc files
        print("note: PYTHONDONTWRITEBYTECODE is set: every command compiles nbflow's modules from")
        print("      source, which an installed nbflow (with its .pyc files) does not")

    def nbflow(root: Path, *more: str) -> Callable[[], float]:
        return lambda: wall([py, "-m", "nbflow", "run", str(root), *more], root.parent)

    def straight(root: Path) -> Callable[[], float]:
        [nb] = root.glob("*.ipynb")
        return lambda: wall([py, "-c", NBCLIENT, str(nb), str(root)], root.parent)

    def verdict(value: float, target: float) -> str:
        return f"target <= {target}: {'met' if value <= target else 'MISSED'}"

    with tempfile.TemporaryDirectory(prefix="nbflow-bench-engine-") as tmp:
        t = Path(tmp)
        cases: tuple[tuple[int, str, str | None, float], ...] = (
            (1, "digits", None, 1.3),
            (2, "titanic-like, 5 independent steps", "titanic", 1.5),
        )
        for number, label, folder, target in cases:
            if number not in only:
                continue
            if folder is None:
                project = t / "digits"
                shutil.copytree(
                    REPO / "examples" / "digits",
                    project,
                    ignore=shutil.ignore_patterns(".nbflow", "dist"),
                )
            else:
                project = titanic(t / folder)
            wall([py, "-m", "nbflow", "run", str(project), "--no-cache"], t)  # compiles once
            times = side_by_side(
                args.repeat,
                nbflow=nbflow(project, "--no-cache"),
                nbclient=straight(project),
                kfp_local=nbflow(project, "--no-cache", "--engine", "kfp-local"),
            )
            ratio = statistics.median(times["nbflow"]) / statistics.median(times["nbclient"])
            old = statistics.median(times["kfp_local"]) / statistics.median(times["nbclient"])
            print(f"{number}. {label}")
            for name, values in times.items():
                print(f"   {name:10s} {fmt(values)}")
            print(
                f"   nbflow/nbclient (medians) {ratio:.2f}x ({verdict(ratio, target)}); kfp.local {old:.2f}x"
            )
        if 3 in only:
            one, nine = chain(t / "chain1", 1), chain(t / "chain9", 9)
            for project in (one, nine):
                wall([py, "-m", "nbflow", "run", str(project), "--no-cache"], t)
            times = side_by_side(
                args.repeat,
                one=nbflow(one, "--no-cache", "-j", "1"),
                nine=nbflow(nine, "--no-cache", "-j", "1"),
            )
            cost = (statistics.median(times["nine"]) - statistics.median(times["one"])) / 8
            print("3. fixed cost of a trivial step")
            print(f"   1 step     {fmt(times['one'])}\n   9 steps    {fmt(times['nine'])}")
            print(f"   per step (medians) {cost:.3f} s ({verdict(cost, 0.3)})")
        if 4 in only:
            project = sleeps(t / "sleeps")
            wall([py, "-m", "nbflow", "run", str(project), "--no-cache"], t)
            times = side_by_side(args.repeat, run=nbflow(project, "--no-cache"))
            print("4. two independent steps sleeping 3 s each, CLI start included")
            print(
                f"   nbflow run {fmt(times['run'])} ({verdict(statistics.median(times['run']), 5.5)})"
            )
        if 5 in only:
            project = t / "digits-cached"
            shutil.copytree(
                REPO / "examples" / "digits",
                project,
                ignore=shutil.ignore_patterns(".nbflow", "dist"),
            )
            wall([py, "-m", "nbflow", "run", str(project)], t)
            times = side_by_side(
                args.repeat,
                cached=nbflow(project),
                validate=lambda: wall([py, "-m", "nbflow", "validate", str(project)], t),
            )
            print(
                "5. a second `nbflow run` of digits, everything cached (and `nbflow validate` beside it)"
            )
            print(
                f"   nbflow run {fmt(times['cached'])} ({verdict(statistics.median(times['cached']), 1.0)})"
            )
            print(f"   validate   {fmt(times['validate'])}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(
            f"note: load average {load:.1f} on {os.cpu_count()} CPUs at the end: wall times are inflated"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
