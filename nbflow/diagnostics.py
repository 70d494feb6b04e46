"""Diagnostics as data: every problem nbflow finds in a user's input.

A diagnostic has a stable code (registered in ``nbflow.codes``), a severity, a message, where
it is (file, line, column; for a notebook also the cell and the line inside it) and a hint that
says how to fix it. Reporters (``nbflow.cli.reporters``) turn a list of them into text, JSON, GitHub
annotations or SARIF; nothing else prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from nbflow.codes import REGISTRY, Code, Severity

__all__ = ["Diagnostic", "Location", "Report", "Severity", "error", "warning"]


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
    code: str  # the id of a registered code, `NBF302`
    severity: Severity
    message: str
    location: Location
    hint: str | None = None
    related: tuple[Location, ...] = ()

    @property
    def title(self) -> str:
        known = REGISTRY.get(self.code)
        return known.name if known else self.code

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


def error(
    code: Code,
    message: str,
    location: Location,
    hint: str | None = None,
    related: tuple[Location, ...] = (),
) -> Diagnostic:
    return Diagnostic(code.id, Severity.ERROR, message, location, hint, related)


def warning(
    code: Code,
    message: str,
    location: Location,
    hint: str | None = None,
    related: tuple[Location, ...] = (),
) -> Diagnostic:
    return Diagnostic(code.id, Severity.WARNING, message, location, hint, related)
