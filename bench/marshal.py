"""Cost of passing values between steps through the runtime's serializers.

Times save+load of a 200 MB float64 array and of a 1M-row DataFrame through
the runtime's ``values`` module (imported from its archive, as a generated component does) against
raw ``np.save``/``np.load`` and ``DataFrame.to_parquet``/``pd.read_parquet``, in one process and
one temporary directory, best of 3. The target is at most 1.5x the raw cost.

    python bench/marshal.py [--repeat 3]

Exits 1 when a ratio is over the target.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.5


def load_runtime() -> dict[str, Any]:
    """The names of the runtime's `values` module, imported from the archive a pipeline
    carries (nbflow/generate/runtime.py), as a generated step imports it."""
    import importlib

    sys.path.insert(0, str(REPO))
    from nbflow.generate.runtime import RUNTIME_PACKAGE, runtime_archive

    path = Path(tempfile.mkdtemp()) / f"{RUNTIME_PACKAGE}.zip"
    path.write_bytes(runtime_archive())
    sys.path.insert(0, str(path))
    return vars(importlib.import_module(f"{RUNTIME_PACKAGE}.values"))


def best(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_array() -> np.ndarray:
    return np.random.default_rng(0).random(200 * 2**20 // 8)


def make_frame(rows: int = 1_000_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "x": rng.random(rows),
            "y": rng.standard_normal(rows).astype(np.float32),
            "n": rng.integers(0, 1000, rows),
            "label": pd.Series(rng.choice(["cat", "dog", "bird", "fish"], rows)).astype(str),
        }
    )


def compare(
    name: str,
    value: object,
    raw_save: Callable[[Any, str], object],
    raw_load: Callable[[str], object],
    runtime: dict[str, Any],
    workdir: str,
    repeat: int,
) -> float:
    raw_path = os.path.join(workdir, f"{name}.raw")
    ours_path = os.path.join(workdir, f"{name}.nbflow")
    save_value, load_value = runtime["save_value"], runtime["load_value"]
    serializer = save_value(value, ours_path, variable=name)
    raw_save(value, raw_path)  # warm both paths (imports, page cache) before timing
    load_value(ours_path)
    raw_load(raw_path)
    raw = (
        best(repeat, lambda: raw_save(value, raw_path)),
        best(repeat, lambda: raw_load(raw_path)),
    )
    ours = (
        best(repeat, lambda: save_value(value, ours_path, variable=name)),
        best(repeat, lambda: load_value(ours_path)),
    )
    ratio = sum(ours) / sum(raw)
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(
        f"{name:<10} {serializer:<8} raw save {raw[0]:6.3f} s load {raw[1]:6.3f} s | "
        f"nbflow save {ours[0]:6.3f} s load {ours[1]:6.3f} s | "
        f"ratio {ratio:4.2f}x (target <= {TARGET}x) {verdict}"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best of)")
    args = parser.parse_args()
    runtime = load_runtime()
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as workdir:
        array = make_array()
        print(f"array: {array.nbytes / 2**20:.0f} MiB float64")
        ratios = [
            compare(
                "array",
                array,
                lambda v, p: np.save(p + ".npy", v, allow_pickle=False),
                lambda p: np.load(p + ".npy", allow_pickle=False),
                runtime,
                workdir,
                args.repeat,
            )
        ]
        del array
        frame = make_frame()
        print(f"frame: {len(frame):,} rows, columns {', '.join(map(str, frame.dtypes))}")
        ratios.append(
            compare(
                "dataframe",
                frame,
                lambda v, p: v.to_parquet(p + ".parquet"),
                lambda p: pd.read_parquet(p + ".parquet"),
                runtime,
                workdir,
                args.repeat,
            )
        )
    return 0 if all(r <= TARGET for r in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
