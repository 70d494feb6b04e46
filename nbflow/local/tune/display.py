"""What `nbflow tune` shows while it searches: a live table on a terminal, else a line per trial."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.escape import terminal_lines
from nbflow.local.tune.results import FINISHED, TrialResult, best_trial

if TYPE_CHECKING:
    from nbflow.local.tune.spec import SearchSpec


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _steps_text(t: TrialResult) -> str:
    return f"{t.ran} ran, {t.cached} cached"


class TrialLog:
    """One line per finished trial: for CI logs and anything that is not a terminal."""

    def __init__(self, stream: TextIO, spec: SearchSpec) -> None:
        self.stream = stream
        self.spec = spec
        self.trials: dict[int, TrialResult] = {}

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, trial: TrialResult) -> None:
        self.trials[trial.number] = trial
        if trial.state not in FINISHED:
            return
        params = ", ".join(f"{k}={fmt(v)}" for k, v in trial.parameters.items())
        value = (
            f"{self.spec.objective}={fmt(trial.value)}" if trial.value is not None else trial.state
        )
        best = best_trial(list(self.trials.values()), self.spec.direction)
        tail = f"best #{best.number} {fmt(best.value)}" if best else "no best yet"
        self._print(
            f"trial {trial.number}/{self.spec.max_trials}  {value}  {params}  "
            f"{trial.seconds:.1f} s  ({_steps_text(trial)})  {tail}"
        )
        if trial.state == "failed" and trial.error:
            # the user's traceback: no ESC, CR or workflow command of it
            for line in terminal_lines(trial.error.strip()).split("\n")[:8]:
                self._print(f"    {line}")

    def close(self) -> None:
        pass


class TrialTable(TrialLog):
    """A live table of the trials (rich), for a terminal."""

    MAX_ROWS = 20

    def __init__(self, stream: TextIO, spec: SearchSpec) -> None:
        super().__init__(stream, spec)
        from rich.live import Live

        from nbflow.console import rich_console

        self.console = rich_console(stream)
        self.live = Live(
            self._table(),
            console=self.console,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        best = best_trial(list(self.trials.values()), self.spec.direction)
        caption = (
            f"best so far: #{best.number} {self.spec.objective}={fmt(best.value)}"
            if best
            else "best so far: -"
        )
        table = Table(caption=caption, caption_justify="left")
        table.add_column("#", justify="right")
        for d in self.spec.dimensions:
            table.add_column(d.name, justify="right")
        table.add_column(self.spec.objective, justify="right")
        table.add_column("state")
        table.add_column("s", justify="right")
        table.add_column("steps")
        rows = sorted(self.trials.values(), key=lambda t: t.number)[-self.MAX_ROWS :]
        for t in rows:
            style = (
                "bold green"
                if best is not None and t.number == best.number
                else ("red" if t.state == "failed" else None)
            )
            running = [n for n, s in t.steps.items() if s == "running"]
            state = f"running {running[0]}" if t.state == "running" and running else t.state
            table.add_row(
                str(t.number),
                *(fmt(t.parameters.get(d.name)) for d in self.spec.dimensions),
                "" if t.value is None else fmt(t.value),
                state,
                f"{t.seconds:.1f}" if t.state in FINISHED else "",
                _steps_text(t),
                style=style,
            )
        return table

    def update(self, trial: TrialResult) -> None:
        self.trials[trial.number] = trial
        self.live.update(self._table())

    def close(self) -> None:
        self.live.update(self._table())
        self.live.stop()


def display(stream: TextIO, spec: SearchSpec) -> TrialLog:
    live = stream.isatty() and os.environ.get("TERM") != "dumb"
    return TrialTable(stream, spec) if live else TrialLog(stream, spec)
