"""Time `nbflow validate` as a user runs it (a fresh process each time).

Generates N manifest + notebook pairs (30 cells each) in a temp folder, then times
  (a) `nbflow validate` of one pair, wall time including interpreter start (target <= 1.0 s);
  (b) `nbflow validate` of a folder holding 200 pairs, one process (target <= 3.0 s);
against a baseline of the bare interpreter start (`python -c pass`) measured in the same run.

    python bench/validate.py [--pairs 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 5
CELLS_PER_STEP = 5


def notebook(i: int) -> dict:
    cells = [
        {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": f"# Project {i}"},
        {
            "cell_type": "code",
            "id": "imports",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "import math\nimport json\n\ndef scale(v, k):\n    return [x * k for x in v]\n",
        },
        {
            "cell_type": "code",
            "id": "params",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "execution_count": None,
            "source": "factor = 2.0\nrounds = 3\nlabel = 'run'\n",
        },
    ]
    prev = None
    for s in range(STEPS):
        for c in range(CELLS_PER_STEP):
            if c == 0:
                src = f"v{s} = scale({prev if prev else '[1, 2, 3]'}, factor)\n"
            elif c == CELLS_PER_STEP - 1:
                src = f"out{s} = [round(x, rounds) for x in v{s}]\n"
            else:
                src = f"%time total{s}_{c} = sum(v{s})\nprint(label, total{s}_{c})\n"
            cells.append(
                {
                    "cell_type": "code",
                    "id": f"s{s}c{c}",
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                    "source": src,
                }
            )
        prev = f"out{s}"
    cells.append(
        {
            "cell_type": "code",
            "id": "metric",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": f"score = sum({prev}) / len({prev})\n",
        }
    )
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": cells,
    }


def manifest(i: int) -> str:
    lines = [
        "apiVersion: nbflow/v1",
        f"name: project-{i}",
        "notebook: nb.ipynb",
        "image: python:3.11-slim",
        "setup: 2",
        "steps:",
    ]
    first = 4
    for s in range(STEPS):
        last = first + CELLS_PER_STEP - 1 + (1 if s == STEPS - 1 else 0)
        lines += [
            f"  step{s}:",
            f"    cells: {first}-{last}",
            "    resources: {cpu: 500m, memory: 1Gi}",
        ]
        first = last + 1
    lines += [
        "parameters:",
        "  factor: 2.0",
        "  rounds: 3",
        "  label: run",
        "metrics:",
        "  score: maximize",
        "tuning:",
        "  objective: score",
        "  algorithm: tpe",
        "  maxTrials: 8",
        "  parallelTrials: 2",
        "  search:",
        "    factor: {min: 0.5, max: 4.0}",
        "    rounds: [1, 2, 3]",
    ]
    return "\n".join(lines) + "\n"


def make(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"p{i:03d}"
        d.mkdir(parents=True)
        (d / "nbflow.yaml").write_text(manifest(i))
        (d / "nb.ipynb").write_text(json.dumps(notebook(i), indent=1))


def timed(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if proc.returncode not in (0,):
            sys.exit(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(root / "one", 1)
        make(root / "many", args.pairs)
        nbflow = [sys.executable, "-m", "nbflow", "validate"]
        base_best, base_med = timed([sys.executable, "-c", "pass"], args.repeat)
        one_best, one_med = timed([*nbflow, str(root / "one")], args.repeat)
        many_best, many_med = timed([*nbflow, str(root / "many")], max(1, args.repeat // 2))
    print(f"interpreter start (baseline):  best {base_best:.3f} s  median {base_med:.3f} s")
    print(
        f"validate 1 pair:               best {one_best:.3f} s  median {one_med:.3f} s  "
        f"target 1.0 s -> {one_med / 1.0:.2f}x of target, {one_med / base_med:.1f}x interpreter start"
    )
    print(
        f"validate {args.pairs} pairs:           best {many_best:.3f} s  median {many_med:.3f} s  "
        f"target 3.0 s -> {many_med / 3.0:.2f}x of target, {(many_med - one_med) / max(args.pairs - 1, 1) * 1000:.1f} ms per extra pair"
    )


if __name__ == "__main__":
    main()
