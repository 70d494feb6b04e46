"""nbflow's optional parts, by job: which extra installs what, and the check that it is there.

`pip install nbflow` installs what validating needs: `validate`, `graph`, `lock`, `cells`,
`explain`, `schema`, `init`, `runs` and `completion` import nothing else. The other commands
need an extra (docs/install.md):

    build   nbflow build                        kfp, kfp-kubernetes, Katib's models, gitpython
    run     nbflow run (and the JupyterLab Run)  build + ipykernel, cloudpickle, markdown-it-py
    tune    nbflow tune                         run + optuna, cmaes, rich
    deploy  nbflow diff, nbflow apply           build + kubernetes

`EXTRAS` is the one table of them: tests/test_extras.py checks it against pyproject.toml's
`[project.optional-dependencies]`, so that the message a user gets names the extra that really
installs what is missing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from nbflow.errors import EnvironmentProblem

__all__ = ["EXTRAS", "Extra", "MissingExtra", "extra_of", "missing", "require"]


@dataclass(frozen=True)
class Extra:
    """One extra of pyproject.toml: the extras it includes, and what it adds as a map of
    distribution (as pyproject names it) -> the module nbflow imports from it."""

    includes: tuple[str, ...]
    modules: Mapping[str, str]


EXTRAS: dict[str, Extra] = {
    "build": Extra(
        includes=(),
        modules={
            "kfp": "kfp",
            "kfp-kubernetes": "kfp.kubernetes",
            "kubeflow-katib-api": "kubeflow_katib_api",
            # the build's snapshot: the commit and whether the inputs are as committed
            "gitpython": "git",
        },
    ),
    "run": Extra(
        includes=("build",),  # a local run runs the compiled pipeline
        modules={
            "ipykernel": "ipykernel",  # matplotlib's inline backend, as in a notebook
            "cloudpickle": "cloudpickle",
            "markdown-it-py": "markdown_it",  # step reports
        },
    ),
    "tune": Extra(
        includes=("run",),  # a trial is a local run
        modules={"optuna": "optuna", "cmaes": "cmaes", "rich": "rich"},
    ),
    "deploy": Extra(includes=("build",), modules={"kubernetes": "kubernetes"}),
}


class MissingExtra(EnvironmentProblem):
    """What was asked needs an extra that is not installed (exit 2); one line says which."""

    def __init__(self, what: str, extra: str, distribution: str) -> None:
        self.extra = extra
        self.distribution = distribution
        super().__init__(
            f"{what} needs the '{extra}' extra ({distribution} is not installed): "
            f"pip install 'nbflow[{extra}]'"
        )


def _closure(extra: str) -> dict[str, str]:
    """Distribution -> module for `extra` and every extra it includes."""
    out: dict[str, str] = {}
    for name in EXTRAS[extra].includes:
        out.update(_closure(name))
    out.update(EXTRAS[extra].modules)
    return out


def _installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing it (nor, for `a.b`, `a`:
    kfp's own `__init__` is what nbflow.generate.kfp_import avoids)."""
    if module in sys.modules:  # None there: its import is refused, as for a missing module
        return sys.modules[module] is not None
    top, _, rest = module.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    for part in rest.split(".") if rest else ():
        if spec is None or spec.submodule_search_locations is None:
            return False
        spec = importlib.machinery.PathFinder.find_spec(part, list(spec.submodule_search_locations))
    return spec is not None


def missing(extra: str) -> list[str]:
    """The distributions of `extra` (with the extras it includes) that are not installed."""
    return [dist for dist, module in _closure(extra).items() if not _installed(module)]


def require(extra: str, what: str) -> None:
    """Raise MissingExtra when `extra` is not fully installed; `what` names the asker
    (`` `nbflow build` ``) in the message."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(what, extra, absent[0])


def extra_of(module: str | None) -> tuple[str, str] | None:
    """For an import of `module` that failed: (the extra that installs it, its distribution);
    None when no extra does (the failed import is then a bug or a broken install)."""
    found = [
        (len(name), extra, dist)
        for extra, spec in EXTRAS.items()
        for dist, name in spec.modules.items()
        if module and (module == name or module.startswith(name + "."))
    ]
    if not found:
        return None
    _, extra, dist = max(found)  # `kfp.kubernetes.x`: kfp-kubernetes, not kfp
    return extra, dist
