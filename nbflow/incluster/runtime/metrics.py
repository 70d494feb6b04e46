"""The step's metrics: each a number, printed as the `name=value` lines Katib's collector reads."""

from __future__ import annotations

from collections.abc import Iterable

from .failures import StepFailure
from .sessions import Session
from .util import short_repr, short_type_name


def collect_metrics(session: Session, names: Iterable[str], *, step: str) -> dict[str, float]:
    """The value of each metric variable once the step's cells have run, as a float."""
    metrics: dict[str, float] = {}
    for name in names:
        found, value = session.get(name)
        if not found:
            raise StepFailure(f"step '{step}': metric variable '{name}' was never assigned")
        metrics[name] = metric_value(value, name, step)
    return metrics


def print_metrics(metrics: dict[str, float]) -> None:
    """One `name=value` line per metric on stdout: what Katib's StdOut collector (and the
    trial launcher, docs/launcher.md) reads."""
    for name, value in metrics.items():
        print(f"{name}={value!r}", flush=True)


def metric_value(value: object, name: str, step: str) -> float:
    import numbers

    if isinstance(value, bool | str | bytes):
        ok = False
    elif isinstance(value, numbers.Real):
        ok = True
    else:
        ok = hasattr(value, "__float__") and getattr(value, "ndim", 0) == 0
    if ok:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            pass
    raise StepFailure(
        f"step '{step}': metric '{name}' must be a number, "
        f"got {short_type_name(value)} {short_repr(value)}"
    )
