"""How `nbflow build` grows with the number of steps: it should grow linearly.

Writes a pipeline of N steps (a chain: each step reads the variable of the one before, one
code cell each, parameters and a metric) for each N, and times in this process, best of
`--repeat`, validation (manifest + notebook + plan) and the build (generation, the kfp
compiler: the pipeline spec built once by `@dsl.pipeline`, written as IR and as Kubernetes
resources; the Kubernetes YAML), each into an empty folder. Prints the seconds per step of each
N, wall and CPU, and the CPU's ratio to the smallest N's: linear growth keeps the ratio near 1
(target <= 1.5); a ratio that grows with N is superlinear work. The ratio is taken on CPU
seconds because wall seconds also measure whoever else uses the machine's cores.

    python bench/build_steps.py [--steps 50 100 200 400] [--repeat 2] [--volume] [--profile N]

`--volume` gives the pipeline a claim made per run that every step mounts: the steps then run
inside the exit handler that deletes it. `--profile N` prints cProfile's top functions of one
build of N steps, by cumulative time (`--sort tottime` for their own time).

With kfp 2.17.3 the ratio still grows with N: kfp's `build_spec_by_group`
(kfp/compiler/pipeline_spec_builder.py) lists the names of every task of a DAG again for each
task of it (lines 1383-1385), and the names of every executor and component so far
(lines 1404, 1570): N^2 work that nbflow cannot avoid from outside. With those three lines
fixed in kfp, a build of 5,000 steps costs per step what one of 100 does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.5


def write_project(root: Path, steps: int, *, volume: bool = False) -> Path:
    cells = [
        {"cell_type": "code", "source": "import math", "tags": []},
        {"cell_type": "code", "source": "scale = 2.0\nrounds = 3", "tags": ["parameters"]},
        {"cell_type": "code", "source": "v0 = [1.0, 2.0, 3.0]", "tags": []},
    ]
    for i in range(1, steps):
        cells.append(
            {
                "cell_type": "code",
                "source": f"v{i} = [x * scale + {i} for x in v{i - 1}]",
                "tags": [],
            }
        )
    cells.append({"cell_type": "code", "source": f"total = sum(v{steps - 1}) * rounds", "tags": []})
    nb = {
        "cells": [
            {
                "cell_type": c["cell_type"],
                "id": f"c{i}",
                "metadata": {"tags": c["tags"]} if c["tags"] else {},
                "source": c["source"],
                "outputs": [],
                "execution_count": None,
            }
            for i, c in enumerate(cells, 1)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "nb.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    lines = [
        "apiVersion: nbflow/v1",
        f"name: chain-{steps}",
        "notebook: nb.ipynb",
        "image: python:3.11-slim",
        "setup: 1",
        "parameters: {scale: 2.0, rounds: 3}",
        "metrics: {total: maximize}",
    ]
    if volume:  # a claim per run: every step mounts it, inside the exit handler that deletes it
        lines.append("volumes: [{name: scratch, mountPath: /scratch, size: 1Gi}]")
    lines.append("steps:")
    for i in range(steps - 1):
        lines.append(f"  s{i}: {{cells: {i + 3}}}")
    lines.append(f"  s{steps - 1}: {{cells: {steps + 2}-{steps + 3}}}")
    (root / "nbflow.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def measure(steps: int, repeat: int, *, volume: bool = False) -> tuple[float, float, float]:
    """Best of `repeat`: validation's seconds, the build's seconds, the build's CPU seconds."""
    from nbflow.check.validate import load_project
    from nbflow.generate.build import build
    from nbflow.generate.snapshot import Snapshot

    snapshot = Snapshot(commit=None, dirty=False, remote=None)
    best_validate = best_build = best_cpu = float("inf")
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as tmp:
        root = write_project(Path(tmp), steps, volume=volume)
        for run in range(repeat):
            started = time.perf_counter()
            report, project = load_project(root)
            validated = time.perf_counter()
            if project is None:
                sys.exit("\n".join(d.message for d in report.errors))
            cpu = time.process_time()
            build(project, Path(tmp) / f"dist-{run}", snapshot=snapshot)
            cpu = time.process_time() - cpu
            built = time.perf_counter()
            best_validate = min(best_validate, validated - started)
            best_build = min(best_build, built - validated)
            best_cpu = min(best_cpu, cpu)
    return best_validate, best_build, best_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--volume", action="store_true", help="a claim per run (exit handler)")
    parser.add_argument("--profile", type=int, metavar="N")
    parser.add_argument("--sort", default="cumulative", help="cProfile order (tottime...)")
    args = parser.parse_args()
    if args.profile:
        import cProfile
        import pstats

        with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as tmp:
            from nbflow.check.validate import load_project
            from nbflow.generate.build import build

            root = write_project(Path(tmp), args.profile, volume=args.volume)
            _, project = load_project(root)
            assert project is not None
            profile = cProfile.Profile()
            profile.runcall(build, project, Path(tmp) / "dist")
            pstats.Stats(profile).sort_stats(args.sort).print_stats(30)
        return 0
    measure(min(args.steps), 1, volume=args.volume)  # warm: imports, nbflow's cache
    rows = [(n, *measure(n, args.repeat, volume=args.volume)) for n in args.steps]
    first = rows[0][3] / rows[0][0]
    print(
        f"{'steps':>6} {'validate s':>11} {'build s':>9} {'build ms/step':>14} "
        f"{'CPU ms/step':>12} {'ratio':>6}"
    )
    worst = 0.0
    for n, v, b, cpu in rows:
        ratio = (cpu / n) / first
        worst = max(worst, ratio)
        print(
            f"{n:>6} {v:>11.2f} {b:>9.2f} {1000 * b / n:>14.1f} {1000 * cpu / n:>12.2f} "
            f"{ratio:>6.2f}"
        )
    verdict = "linear" if worst <= TARGET_RATIO else "SUPERLINEAR"
    print(f"worst per-step ratio {worst:.2f} (target <= {TARGET_RATIO}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
