"""Time `nbflow run` of a trivial 4-step pipeline against running its notebook with nbclient.

The notebook: a setup cell (`import numpy as np`), a parameters cell, and four one-line cells,
each a step passing a small numpy array to the next. Measured in the same run, each a fresh
process, best of N (default 3):
  (a) `nbflow run DIR --no-cache` (the local pipeline is compiled once, by a first run that is
      reported on its own as "cold");
  (b) the same notebook executed top to bottom with nbclient (`NotebookClient(nb,
      kernel_name="python3")`, kernel start included).
Per-step overhead = ((a) - (b)) / 4; target <= 1.5 s per step.

Then where one step's time goes, each part timed in a fresh process as a step runs it:
interpreter start, `import kfp.dsl.executor_main` (as kfp runs it, with _KFP_RUNTIME=true),
compiling and exec'ing the embedded runtime, importing IPython, and the runtime's `main` (IPython
shell start, the cell, loading and saving the arrays, the HTML report); the rest of a task's
wall time under kfp.local is kfp.local's own (sh wrapper, executor input and output files).

    python bench/run.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_PER_STEP = 1.5
STEPS = 4

CELLS = [
    ("code", "import numpy as np", []),
    ("code", "scale = 2", ["parameters"]),
    ("code", "a = np.arange(16.0)", []),
    ("code", "b = a * scale", []),
    ("code", "c = b + 1", []),
    ("code", "total = float(c.sum())", []),
]
MANIFEST = """\
apiVersion: nbflow/v1
name: trivial
notebook: trivial.ipynb
setup: 1
steps:
  one: {cells: 3}
  two: {cells: 4}
  three: {cells: 5}
  four: {cells: 6}
parameters: {scale: 2}
metrics: {total: maximize}
"""

NBCLIENT = """\
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3").execute()
"""

# One step as kfp.local's subprocess runs it, each part timed. argv: the runtime's archive, work
# dir.
# `runtime main` includes the setup cell's `import numpy`, as in the pipeline.
STEP_PROFILE = """\
import time
t0 = time.perf_counter()
import json, os, sys
os.environ["_KFP_RUNTIME"] = "true"
import kfp.dsl.executor_main  # what `python -m kfp.dsl.executor_main` imports
t1 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import nbflow_runtime
ns = vars(nbflow_runtime)
t2 = time.perf_counter()
import IPython
t3 = time.perf_counter()
work = sys.argv[2]  # holds in_a, an array saved by the bench
program = {"pipeline": "trivial", "step": "two", "notebook": "trivial.ipynb",
           "cells": [{"number": 1, "source": "import numpy as np", "setup": True},
                     {"number": 4, "source": "b = a * scale", "setup": False}],
           "inputs": ["a"], "outputs": ["b"], "parameters": ["scale"], "metrics": []}
t4 = time.perf_counter()
ns["main"](program, inputs={"a": os.path.join(work, "in_a")}, outputs={"b": os.path.join(work, "out_b")},
           parameters={"scale": 2}, report_path=os.path.join(work, "report.html"))
t5 = time.perf_counter()
print(json.dumps({"kfp executor import": t1 - t0, "runtime import (from its archive)": t2 - t1,
                  "IPython import": t3 - t2, "runtime main (shell, numpy import, cell, I/O, report)": t5 - t4}))
"""


def write_project(root: Path) -> None:
    cells = []
    for i, (kind, source, tags) in enumerate(CELLS, 1):
        cell = {
            "cell_type": kind,
            "id": f"c{i}",
            "metadata": {"tags": tags} if tags else {},
            "source": source,
        }
        cell.update({"execution_count": None, "outputs": []})
        cells.append(cell)
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "trivial.ipynb").write_text(json.dumps(nb, indent=1))
    (root / "nbflow.yaml").write_text(MANIFEST)


def timed(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process tree, stdout) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, proc.stdout


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    py = sys.executable

    with tempfile.TemporaryDirectory(prefix="nbflow-bench-run-") as tmp:
        root = Path(tmp) / "trivial"
        write_project(root)
        run_cmd = [py, "-m", "nbflow", "run", str(root), "--no-cache", "--json"]
        cold, _, _ = timed(run_cmd, cwd=Path(tmp))
        runs = [timed(run_cmd, cwd=Path(tmp)) for _ in range(args.repeat)]
        nbflow_wall = min(w for w, _, _ in runs)
        nbflow_cpu = min(c for _, c, _ in runs)
        docs = [json.loads(out) for _, _, out in runs]
        assert all(d["ok"] and d["metrics"] == {"total": 256.0} for d in docs), docs
        task_seconds = min(sum(s["seconds"] for s in d["steps"]) for d in docs) / STEPS
        pipeline_seconds = min(d["seconds"] for d in docs)

        nbclient = [
            timed([py, "-c", NBCLIENT, str(root / "trivial.ipynb")], cwd=Path(tmp))
            for _ in range(args.repeat)
        ]
        nb_wall = min(w for w, _, _ in nbclient)
        nb_cpu = min(c for _, c, _ in nbclient)

        start = min(timed([py, "-c", "pass"], cwd=Path(tmp))[0] for _ in range(args.repeat))
        validate = min(
            timed([py, "-m", "nbflow", "validate", str(root)], cwd=Path(tmp))[0]
            for _ in range(args.repeat)
        )
        kfp_local = min(
            timed([py, "-c", "from kfp import local"], cwd=Path(tmp))[0] for _ in range(args.repeat)
        )
        parts: dict[str, float] = {}
        sys.path.insert(0, str(REPO))
        from nbflow.generate.runtime import runtime_archive
        from nbflow.incluster.runtime.values import save_value

        archive = Path(tmp) / "nbflow_runtime.zip"
        archive.write_bytes(runtime_archive())
        import numpy as np

        for i in range(args.repeat):
            work = Path(tmp) / f"step{i}"
            work.mkdir()
            save_value(np.arange(16.0), str(work / "in_a"), variable="a")
            _, _, out = timed([py, "-c", STEP_PROFILE, str(archive), str(work)], cwd=Path(tmp))
            for k, v in json.loads(out).items():
                parts[k] = min(parts.get(k, v), v)

    overhead = (nbflow_wall - nb_wall) / STEPS
    print(
        f"nbflow run of a trivial {STEPS}-step pipeline (fresh process, --no-cache, wall, best of {args.repeat})"
    )
    print(f"  nbflow run (cold: compiles the local pipeline)  {cold:6.2f} s")
    print(
        f"  nbflow run                                      {nbflow_wall:6.2f} s   (CPU {nbflow_cpu:.2f} s)"
        f"; runs: {', '.join(f'{w:.2f}' for w, _, _ in runs)}"
    )
    print(
        f"    of which the pipeline under kfp.local         {pipeline_seconds:6.2f} s"
        f"  ({task_seconds:.2f} s per task)"
    )
    print(
        f"  nbclient, notebook top to bottom                {nb_wall:6.2f} s   (CPU {nb_cpu:.2f} s)"
        f"; runs: {', '.join(f'{w:.2f}' for w, _, _ in nbclient)}"
    )
    verdict = "met" if overhead <= TARGET_PER_STEP else "MISSED"
    print(
        f"per-step overhead = ({nbflow_wall:.2f} - {nb_wall:.2f}) / {STEPS} = {overhead:.2f} s"
        f" (target <= {TARGET_PER_STEP} s: {verdict}; ratio to target {overhead / TARGET_PER_STEP:.2f});"
        f" nbflow/nbclient = {nbflow_wall / nb_wall:.2f}"
    )
    fixed = nbflow_wall - pipeline_seconds
    print(
        f"once per run, outside the pipeline: {fixed:.2f} s; for scale, fresh processes:"
        f" `nbflow validate` {validate:.2f} s, `from kfp import local` {kfp_local:.2f} s"
    )
    print("where one step's time goes (each part best of the runs, fresh processes):")
    rows = [("interpreter start", start), *parts.items()]
    known = sum(v for _, v in rows)
    rows.append(
        ("kfp.local (sh wrapper, executor input/output, artifacts)", max(task_seconds - known, 0.0))
    )
    for name, seconds in rows:
        print(f"  {name:58s} {seconds:5.2f} s  {100 * seconds / task_seconds:4.0f} %")
    print(f"  {'task under kfp.local, measured':58s} {task_seconds:5.2f} s")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} CPUs: wall times are inflated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
