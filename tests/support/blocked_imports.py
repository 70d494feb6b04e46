"""Run nbflow as a user does, in a fresh interpreter where some packages are as if not installed:
what `pip install nbflow` without an extra leaves out.

    python -m tests.support.blocked_imports kfp optuna -- validate examples
    python -m tests.support.blocked_imports kfp -- -c "from nbflow import api; ..."

A meta-path finder refuses the named modules (a top-level name refuses its submodules too) with
the ModuleNotFoundError an absent package gives, for `import` and `importlib.util.find_spec`
alike. Every refused import is listed on stderr after the command, on one line starting with
`REFUSED_PREFIX`, so that a test also sees an import that the code caught and did without.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

REFUSED_PREFIX = "blocked_imports: refused:"
ROOT = Path(__file__).resolve().parents[2]


class Refuse(importlib.abc.MetaPathFinder):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)
        self.tried: set[str] = set()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if any(".".join(parts[: i + 1]) in self.names for i in range(len(parts))):
            self.tried.add(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def run(
    blocked: Sequence[str],
    *argv: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`nbflow ARGV` (or `-c CODE`) in a fresh interpreter with `blocked` refused."""
    full_env = {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.support.blocked_imports", *blocked, "--", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def refused(stderr: str) -> set[str]:
    """The imports that were refused, from the run's stderr."""
    for line in stderr.splitlines():
        if line.startswith(REFUSED_PREFIX):
            return set(line.removeprefix(REFUSED_PREFIX).split())
    return set()


def without_report(stderr: str) -> str:
    """The run's stderr without the refused imports' line."""
    return "".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith(REFUSED_PREFIX)
    )


def _main(argv: list[str]) -> int:
    split = argv.index("--")
    finder = Refuse(argv[:split])
    sys.meta_path.insert(0, finder)
    rest = argv[split + 1 :]
    try:
        if rest[:1] == ["-c"]:
            exec(compile(rest[1], "<blocked_imports -c>", "exec"), {"__name__": "__main__"})
            code = 0
        else:
            from nbflow.cli.main import main

            code = main(rest)
    finally:
        sys.stdout.flush()
        print(REFUSED_PREFIX, *sorted(finder.tried), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
