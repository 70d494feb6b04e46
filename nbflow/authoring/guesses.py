"""What a notebook's code suggests for its manifest: DNS names for steps, metric goals from
variable names, the literals of a parameters cell, `pip install` cells, and the distributions
behind its imports. Shared by `nbflow init` (`nbflow.authoring.init`) and the Kale import
(`nbflow.authoring.kale`).
"""

from __future__ import annotations

import ast
import re
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.check.rules import is_literal_expression, name_assignment

if TYPE_CHECKING:
    from nbflow.dataflow.cell_flow import CellFlow

DNS_MAX = 63


def slug(text: str, fallback: str = "step") -> str:
    """`text` as a DNS-1123 label: lowercase ASCII letters, digits and `-`, at most 63 long."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return s[:DNS_MAX].rstrip("-") or fallback


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`... the first not in `taken` (which it joins)."""
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"-{n}"
        candidate = name[: DNS_MAX - len(suffix)].rstrip("-") + suffix
        n += 1
    taken.add(candidate)
    return candidate


_METRIC_MAX = {"accuracy", "acc", "auc", "f1", "precision", "recall", "r2", "score", "iou", "bleu",
               "rouge", "kappa", "sensitivity", "specificity", "ndcg"}  # fmt: skip
_METRIC_MIN = {"loss", "rmse", "mse", "mae", "mape", "error", "err", "logloss", "nll", "perplexity",
               "wer", "cer"}  # fmt: skip


def metric_goal(name: str) -> str | None:
    """`maximize` or `minimize` when the variable's name looks like a metric, else None. A
    negated metric (`negative_mse`, `neg_log_loss`, scikit-learn's scorers) goes the other way."""
    tokens = set(re.split(r"[_\d]+", name.lower())) | {name.lower()}
    negated = bool(tokens & {"neg", "negative", "minus"})
    if tokens & _METRIC_MIN:
        return "maximize" if negated else "minimize"
    if tokens & _METRIC_MAX:
        return "minimize" if negated else "maximize"
    return None


def literal_assignments(source: str) -> tuple[dict[str, Any], list[int]]:
    """The `name = <literal>` statements of a parameters cell, and the lines of any other."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return {}, [exc.lineno or 1]
    values: dict[str, Any] = {}
    other: list[int] = []
    for stmt in tree.body:
        if is_literal_expression(stmt):
            continue  # a docstring or a stray literal
        assigned = name_assignment(stmt)
        if assigned is not None:
            try:
                values[assigned[0]] = ast.literal_eval(assigned[1])
                continue
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
        other.append(stmt.lineno)
    return values, other


_PIP = re.compile(
    r"^\s*[!%]\s*(?:pip3?|conda|mamba|\{sys\.executable\}\s+-m\s+pip|python3?\s+-m\s+pip)\s+install\b(.*)$"
)


def pip_installs(source: str) -> list[str] | None:
    """The packages of a cell made only of `!pip install` lines (and comments), else None."""
    packages: list[str] = []
    seen = False
    for line in source.splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        m = _PIP.match(line)
        if m is None:
            return None
        seen = True
        args = m.group(1).split("#")[0].split()
        skip_next = False
        for arg in args:
            if skip_next:
                skip_next = False
            elif arg in ("-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "-e"):
                skip_next = True
            elif not arg.startswith("-"):
                packages.append(arg.strip("'\""))
    return packages if seen else None


def guess_requirements(modules: Iterable[str], folder: Path) -> list[str]:
    """Distribution names for the top-level modules a pipeline imports (stdlib and local
    modules left out): the installed distribution that provides the module, else a known alias,
    else the module's own name."""
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    out: dict[str, str] = {}
    for m in modules:
        if not m or m in sys.stdlib_module_names or m.startswith("_") or m in ("nbflow",):
            continue
        if (folder / f"{m}.py").exists() or (folder / m / "__init__.py").exists():
            continue
        dists = provided.get(m) or []
        name = dists[0] if len(set(dists)) == 1 else _ALIASES.get(m, m)
        out.setdefault(name.lower(), name)
    return sorted(out.values(), key=str.lower)


_ALIASES = {"sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "pillow", "yaml": "pyyaml",
            "skimage": "scikit-image", "bs4": "beautifulsoup4", "dateutil": "python-dateutil",
            "Crypto": "pycryptodome", "IPython": "ipython"}  # fmt: skip


def imported_modules(flows: Iterable[CellFlow]) -> list[str]:
    """Top-level modules of the import statements of the given cells, in order."""
    out: dict[str, None] = {}
    for flow in flows:
        for stmt in flow.import_statements.values():
            try:
                node = ast.parse(stmt.strip()).body[0]
            except (SyntaxError, IndexError):
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    out.setdefault(alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out.setdefault(node.module.split(".")[0])
    return list(out)


def default_image() -> str:
    """The image a plain notebook's manifest starts with: the manifest's own default."""
    from nbflow.check.manifest import Manifest

    return str(Manifest.model_fields["image"].default)
