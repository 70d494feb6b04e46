"""The Optuna sampler of each Katib algorithm (`SAMPLERS`), and how its settings map.

Katib algorithm        Optuna sampler                          settings mapped (Katib -> Optuna)
random                 RandomSampler                           random_state -> seed
grid                   GridSampler (every combination, in a    -
                       seeded random order)
tpe                    TPESampler(multivariate=False), i.e.    random_state -> seed, n_startup_trials,
                       hyperopt's independent TPE, as Katib's  n_ei_candidates, prior_weight,
                                                               gamma g -> n -> min(ceil(g*sqrt(n)), 25)
                                                               (hyperopt's rule)
multivariate-tpe       TPESampler(multivariate=True)           random_state -> seed, n_startup_trials,
                                                               n_ei_candidates
bayesianoptimization   GPSampler (needs torch and scipy)       random_state -> seed,
                                                               n_initial_points -> n_startup_trials;
                                                               base_estimator (only GP), acq_func and
                                                               acq_optimizer have no equivalent: noted,
                                                               ignored
cmaes                  CmaEsSampler (needs the cmaes package)  random_state -> seed, sigma -> sigma0;
                                                               restart_strategy: ignored (Optuna >= 4.4
                                                               dropped it)
sobol                  QMCSampler(qmc_type="sobol")            -
hyperband              not available locally (it needs a       -
                       resource parameter stepped per trial)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from nbflow.errors import EnvironmentProblem, UsageError

if TYPE_CHECKING:
    from nbflow.local.tune.space import Dimension


class SamplerFactory(Protocol):
    """Builds the Optuna sampler of one Katib algorithm; appends what it could not map to notes."""

    def __call__(
        self, settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]
    ) -> Any: ...


def _require(module: str, algorithm: str, sampler: str, install: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise EnvironmentProblem(
            f"the {algorithm} algorithm is not available locally: Optuna's {sampler} needs "
            f"`{module}`, which is not installed\n  install it (`pip install {install}`), "
            "or tune with another algorithm (e.g. `tpe`)"
        )


def _ignored(
    settings: Mapping[str, Any], keys: Sequence[str], algorithm: str, why: str, notes: list[str]
) -> None:
    for key in keys:
        if key in settings:
            notes.append(f"{algorithm} setting `{key}={settings[key]}` is ignored locally: {why}")


def _categorical_note(dims: Sequence[Dimension], algorithm: str, notes: list[str]) -> None:
    names = [d.name for d in dims if d.kind == "categorical"]
    if names:
        notes.append(
            f"{algorithm} samples {', '.join(f'`{n}`' for n in names)} at random (categorical)"
        )


def _random(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=settings.get("random_state"))


def _grid(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    from optuna.samplers import GridSampler

    class _Grid(GridSampler):
        # GridSampler ends Optuna's own optimize loop once every point is done, and raises
        # under ask-and-tell; this loop stops itself (trials are capped at the grid's size).
        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            pass

    # a seed, so that the order of the points is the same from one search to the next
    return _Grid({d.name: d.grid() for d in dims}, seed=settings.get("random_state", 0))


def _tpe_gamma(fraction: float) -> Callable[[int], int]:
    def gamma(n: int) -> int:  # hyperopt's number of "good" trials, which Katib's tpe uses
        return min(math.ceil(fraction * math.sqrt(n)), 25)

    return gamma


def _tpe(
    settings: Mapping[str, Any],
    dims: Sequence[Dimension],
    notes: list[str],
    multivariate: bool = False,
) -> Any:
    from optuna.samplers import TPESampler

    kwargs: dict[str, Any] = {"seed": settings.get("random_state"), "multivariate": multivariate}
    for key in ("n_startup_trials", "n_ei_candidates"):
        if key in settings:
            kwargs[key] = settings[key]
    if "gamma" in settings:
        kwargs["gamma"] = _tpe_gamma(float(settings["gamma"]))
    if "prior_weight" in settings:
        import inspect

        if "prior_weight" in inspect.signature(TPESampler).parameters:
            kwargs["prior_weight"] = float(settings["prior_weight"])
        else:
            _ignored(
                settings,
                ("prior_weight",),
                "tpe",
                "this Optuna's TPESampler has no prior weight",
                notes,
            )
    with warnings.catch_warnings():
        # Optuna >= 4.9 deprecates prior_weight (still honoured until 6.0)
        warnings.simplefilter("ignore", FutureWarning)
        return TPESampler(**kwargs)


def _multivariate_tpe(
    settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]
) -> Any:
    return _tpe(settings, dims, notes, multivariate=True)


def _gp(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    # GPSampler imports torch only once its startup trials are done: check before the search
    _require("torch", "bayesianoptimization", "GPSampler", "torch")
    _require("scipy", "bayesianoptimization", "GPSampler", "scipy")
    from optuna.samplers import GPSampler

    if settings.get("base_estimator", "GP") != "GP":
        notes.append(
            f"bayesianoptimization base_estimator={settings['base_estimator']} has no Optuna "
            "equivalent: a Gaussian process is used locally"
        )
    _ignored(
        settings,
        ("acq_func", "acq_optimizer"),
        "bayesianoptimization",
        "GPSampler optimises log expected improvement its own way",
        notes,
    )
    kwargs: dict[str, Any] = {"seed": settings.get("random_state")}
    if "n_initial_points" in settings:
        kwargs["n_startup_trials"] = settings["n_initial_points"]
    return GPSampler(**kwargs)


def _cmaes(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    _require("cmaes", "cmaes", "CmaEsSampler", "cmaes")
    from optuna.samplers import CmaEsSampler

    _ignored(
        settings,
        ("restart_strategy",),
        "cmaes",
        "Optuna's CmaEsSampler dropped restarts in 4.4",
        notes,
    )
    _categorical_note(dims, "cmaes", notes)
    kwargs: dict[str, Any] = {
        "seed": settings.get("random_state"),
        "warn_independent_sampling": False,
    }
    if "sigma" in settings:
        kwargs["sigma0"] = float(settings["sigma"])
    return CmaEsSampler(**kwargs)


def _sobol(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    from optuna.exceptions import ExperimentalWarning
    from optuna.samplers import QMCSampler

    _categorical_note(dims, "sobol", notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return QMCSampler(
            qmc_type="sobol",
            seed=settings.get("random_state", 0),
            warn_asynchronous_seeding=False,
            warn_independent_sampling=False,
        )


def _hyperband(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    raise UsageError(
        "the hyperband algorithm is not supported by `nbflow tune`: it runs brackets of trials "
        f"with a growing resource (`{settings.get('resource_name', 'resource_name')}`), which "
        "the local engine does not do; tune locally with another algorithm (e.g. `tpe`), or "
        "run hyperband on the cluster with Katib"
    )


SAMPLERS: dict[str, SamplerFactory] = {
    "random": _random,
    "grid": _grid,
    "tpe": _tpe,
    "multivariate-tpe": _multivariate_tpe,
    "bayesianoptimization": _gp,
    "cmaes": _cmaes,
    "sobol": _sobol,
    "hyperband": _hyperband,
}
