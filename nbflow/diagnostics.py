"""Diagnostics as data: every problem nbflow finds in a user's input.

A diagnostic has a stable code (the catalogue below), a severity, a message, where it is
(file, line, column; for a notebook also the cell and the line inside it) and a hint that says
how to fix it. Reporters (``nbflow.cli.reporters``) turn a list of them into text, JSON, GitHub
annotations or SARIF; nothing else prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a file. Lines and columns are 1-based; ``None`` when unknown."""

    file: str
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    cell: int | None = None  # notebook cell number, 1-based, counting every cell
    cell_line: int | None = None  # line inside that cell, 1-based


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: Location
    hint: str | None = None
    related: tuple[Location, ...] = ()

    @property
    def title(self) -> str:
        return CODES.get(self.code, self.code)

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line or 0, loc.column or 0, self.code)


@dataclass
class Report:
    """What one validation (of one or many manifests) found."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    # file path -> text, so that reporters can show the offending line without reading again
    sources: dict[str, str] = field(default_factory=dict)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics.extend(diagnostics)

    def merge(self, other: Report) -> None:
        self.diagnostics.extend(other.diagnostics)
        self.manifests.extend(other.manifests)
        self.sources.update(other.sources)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics, key=Diagnostic.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())


# The catalogue: code -> short title. Codes are stable: never reuse or renumber one.
# NBF0xx loading, NBF1xx schema, NBF2xx cells, NBF3xx steps, NBF4xx parameters and metrics,
# NBF5xx tuning, NBF6xx resources/images/volumes/deploy, NBF7xx data flow, NBF8xx generation.
CODES: dict[str, str] = {
    "NBF001": "manifest-not-found",
    "NBF002": "yaml-syntax",
    "NBF003": "api-version",
    "NBF004": "notebook-not-found",
    "NBF005": "notebook-invalid",
    "NBF006": "notebook-version",
    "NBF007": "manifest-not-a-mapping",
    "NBF008": "duplicate-key",
    "NBF009": "requirements-file",
    "NBF010": "file-refused",
    "NBF101": "unknown-key",
    "NBF102": "wrong-type",
    "NBF103": "missing-key",
    "NBF104": "invalid-value",
    "NBF105": "invalid-name",
    "NBF201": "bad-cell-range",
    "NBF202": "cell-out-of-range",
    "NBF203": "cell-id-not-found",
    "NBF204": "cell-owned-twice",
    "NBF205": "forgotten-cell",
    "NBF206": "not-a-code-cell",
    "NBF207": "empty-step",
    "NBF208": "cell-drift",
    "NBF301": "after-unknown-step",
    "NBF302": "cycle",
    "NBF303": "after-self",
    "NBF401": "parameters-cell-missing",
    "NBF402": "parameter-not-assigned",
    "NBF403": "parameter-not-literal",
    "NBF404": "parameter-type-mismatch",
    "NBF405": "parameter-not-declared",
    "NBF406": "parameter-unused",
    "NBF407": "parameters-cell-syntax",
    "NBF408": "metric-not-assigned",
    "NBF409": "parameter-default-type",
    "NBF501": "objective-not-metric",
    "NBF502": "search-not-parameter",
    "NBF503": "search-range-order",
    "NBF504": "search-type",
    "NBF505": "algorithm-settings",
    "NBF506": "trial-counts",
    "NBF507": "experiment-name",
    "NBF508": "grid-too-small",
    "NBF509": "search-empty",
    "NBF510": "goal-direction",
    "NBF511": "katib-rejects",
    "NBF601": "bad-quantity",
    "NBF602": "bad-gpu",
    "NBF603": "image-tag",
    "NBF604": "volume",
    "NBF605": "timeout",
    "NBF606": "env-name",
    "NBF607": "label",
    "NBF608": "requirement-invalid",
    "NBF701": "undefined-name",
    "NBF702": "ambiguous-definition",
    "NBF703": "parameter-reassigned",
    "NBF704": "star-import",
    "NBF705": "unmovable-value",
    "NBF706": "cell-syntax",
    "NBF707": "setup-reads-step-value",
}


def error(
    code: str, message: str, location: Location, hint: str | None = None, **kw: object
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, location, hint, **kw)  # type: ignore[arg-type]


def warning(
    code: str, message: str, location: Location, hint: str | None = None, **kw: object
) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, location, hint, **kw)  # type: ignore[arg-type]
