"""A project's local runs, as `nbflow run` leaves them in `.nbflow/runs/<id>/run.json`: listed,
compared two by two (what changed in parameters and metrics, as `dvc metrics diff` shows it),
and pruned to the newest N so that run folders never grow without bound.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.errors import UsageError

__all__ = ["Change", "Comparison", "RunRecord", "compare", "list_runs", "prune", "resolve"]


class RunNotFound(UsageError):
    """A run reference that names no run, or more than one."""


@dataclass(frozen=True)
class RunRecord:
    id: str
    folder: Path
    started: str
    status: str  # running, succeeded, failed, interrupted (SIG...), unreadable (no run.json)
    seconds: float | None
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "folder": str(self.folder),
            "started": self.started,
            "status": self.status,
            "seconds": self.seconds,
            "parameters": self.parameters,
            "metrics": self.metrics,
        }


def state_of(path: Path) -> Path:
    """The `.nbflow` folder of the project at `path` (its folder or its nbflow.yaml)."""
    folder = path.parent if path.is_file() or path.suffix in (".yaml", ".yml") else path
    return folder / ".nbflow"


def _record(folder: Path) -> RunRecord:
    try:
        doc = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        return RunRecord(folder.name, folder, "", "unreadable", None)
    status = doc.get("status") or ("succeeded" if doc.get("ok") else "failed")
    if doc.get("interrupted"):  # stopped by a signal (Ctrl-C, SIGTERM, SIGHUP)
        status = f"interrupted ({doc['interrupted']})"
    seconds = doc.get("seconds") if status != "running" else None
    return RunRecord(
        id=folder.name,
        folder=folder,
        started=str(doc.get("started") or ""),
        status=str(status),
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        parameters=dict(doc.get("parameters") or {}),
        metrics=dict(doc.get("metrics") or {}),
    )


def list_runs(state: Path) -> list[RunRecord]:
    """The runs under `state/runs`, oldest first (run ids sort by their start time)."""
    runs = state / "runs"
    if not runs.is_dir():
        return []
    folders = [p for p in runs.iterdir() if p.is_dir() and not p.is_symlink()]
    return [_record(p) for p in sorted(folders, key=lambda p: p.name)]


def resolve(runs: list[RunRecord], ref: str, state: Path) -> RunRecord:
    """A run by id, unique id prefix, `latest`, or `latest~N` (the Nth run before the newest)."""
    if not runs:
        raise RunNotFound(f"no runs in {state / 'runs'}: `nbflow run` makes them")
    if ref == "latest" or ref.startswith("latest~"):
        target = (state / "runs" / "latest").resolve()
        index = next((i for i, r in enumerate(runs) if r.folder.resolve() == target), len(runs) - 1)
        back = ref.partition("~")[2]
        if back and not back.isdigit():
            raise RunNotFound(f"`{ref}`: the number after `~` counts runs back, e.g. latest~1")
        index -= int(back or 0)
        if index < 0:
            raise RunNotFound(f"`{ref}`: there are only {len(runs)} runs")
        return runs[index]
    found = [r for r in runs if r.id == ref] or [r for r in runs if r.id.startswith(ref)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise RunNotFound(f"no run `{ref}` in {state / 'runs'} (`nbflow runs` lists them)")
    raise RunNotFound(f"`{ref}` names {len(found)} runs: give more of the id")


@dataclass(frozen=True)
class Change:
    name: str
    old: Any
    new: Any
    diff: float | None  # new - old, for two numbers

    @property
    def changed(self) -> bool:
        return bool(self.old != self.new)


@dataclass(frozen=True)
class Comparison:
    a: RunRecord
    b: RunRecord
    parameters: list[Change]
    metrics: list[Change]

    def to_json(self, *, everything: bool = False) -> dict[str, Any]:
        def rows(changes: list[Change]) -> dict[str, Any]:
            return {
                c.name: {"old": c.old, "new": c.new, "diff": c.diff}
                for c in changes
                if everything or c.changed
            }

        return {
            "a": self.a.id,
            "b": self.b.id,
            "parameters": rows(self.parameters),
            "metrics": rows(self.metrics),
        }


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        out.append(Change(name, a, b, (b - a) if numbers else None))  # type: ignore[operator]
    return out


def compare(a: RunRecord, b: RunRecord) -> Comparison:
    """What changed from run `a` to run `b`, in parameters and in metrics."""
    return Comparison(a, b, _changes(a.parameters, b.parameters), _changes(a.metrics, b.metrics))


def prune(state: Path, keep: int) -> list[RunRecord]:
    """Delete all but the newest `keep` runs (never the one `latest` points at, nor one still
    running); returns those deleted."""
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    runs = list_runs(state)
    latest = (state / "runs" / "latest").resolve()
    old = runs[: max(len(runs) - keep, 0)]
    gone = [r for r in old if r.folder.resolve() != latest and r.status != "running"]
    for r in gone:
        shutil.rmtree(r.folder, ignore_errors=True)
    return gone
