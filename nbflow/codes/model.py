"""What a diagnostic code is: an id, a name, severities, a summary and an explanation with a
wrong and a right example. The codes themselves are in the modules beside this one."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import StrEnum

REPOSITORY_URL = "https://github.com/nbflow/nbflow"
DOCS_URL = f"{REPOSITORY_URL}/blob/main/docs/diagnostics.md"  # generated from the registry


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


ERROR = (Severity.ERROR,)
WARNING = (Severity.WARNING,)
EITHER = (Severity.ERROR, Severity.WARNING)


@dataclass(frozen=True, slots=True)
class Example:
    """A snippet in a language (``yaml``, ``python``, ``json``, ``text``), indented as written."""

    lang: str
    source: str

    @property
    def text(self) -> str:
        return textwrap.dedent(self.source).strip("\n")


def yaml(source: str) -> Example:
    return Example("yaml", source)


def python(source: str) -> Example:
    return Example("python", source)


def session(source: str) -> Example:
    # "text", not "console": the docs' ```console blocks are commands that tests/test_docs.py runs
    return Example("text", source)


def json(source: str) -> Example:
    return Example("json", source)


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    name: str
    severities: tuple[Severity, ...]
    summary: str
    explanation: str
    wrong: Example
    right: Example

    @property
    def anchor(self) -> str:
        """The code's heading anchor in docs/diagnostics.md (`## NBF302 cycle`)."""
        return f"{self.id}-{self.name}".lower()

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.anchor}"

    @property
    def severity_text(self) -> str:
        return " or ".join(s.value for s in self.severities)
