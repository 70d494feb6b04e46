"""`nbflow tune`: the manifest's `tuning` search on this machine, with Optuna.

The same `tuning` block generates the Katib Experiment for the cluster. Locally, each Katib
algorithm name maps to an Optuna sampler (`SAMPLERS`), and each trial is a run of the compiled
pipeline through `nbflow.local.run` (the local engine), with its cache on: a step that reads no
searched parameter has the same inputs in every trial, so it runs in the first trial and hits
the cache after that.

The modules, in the order a search uses them:

- `space`: the searched parameters (`Dimension`), resolved from `tuning.search`
- `samplers`: the Optuna sampler of each Katib algorithm (`SAMPLERS`), and how settings map
- `spec`: the `tuning` block resolved into a `SearchSpec` (`resolve_search`)
- `search`: the trial loop (`tune`), and how a run becomes a trial's result (`judge`)
- `workers`: the worker processes of a parallel search (`python -m nbflow.local.tune --worker`)
- `results`: `TuneResult` and `TrialResult`, and the files they are written to
- `display`: the live table or the line per trial that `nbflow tune` shows

`nbflow tune` itself (summary, exit code) is `nbflow.cli.commands.tune`.
"""

from nbflow.local.tune.display import TrialLog
from nbflow.local.tune.results import TrialResult, TuneResult
from nbflow.local.tune.samplers import SAMPLERS
from nbflow.local.tune.search import judge, tune
from nbflow.local.tune.space import Dimension
from nbflow.local.tune.spec import SearchSpec, resolve_search

__all__ = [
    "SAMPLERS",
    "Dimension",
    "SearchSpec",
    "TrialLog",
    "TrialResult",
    "TuneResult",
    "judge",
    "resolve_search",
    "tune",
]
