"""Every case under tests/cases validates to exactly its expected diagnostics."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbflow.check.validate import validate_manifest
from nbflow.codes import REGISTRY
from tests.support.cases import case_dirs, expected


def _run(case: Path):
    cwd = os.getcwd()
    os.chdir(case)  # paths in diagnostics are relative to where nbflow runs, as for a user
    try:
        return validate_manifest(Path("nbflow.yaml"))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("case", case_dirs("valid"), ids=lambda p: p.name)
def test_valid(case: Path) -> None:
    report, project = _run(case)
    assert [(d.code, d.message) for d in report.diagnostics] == []
    assert project is not None and project.plan is not None


@pytest.mark.parametrize("case", case_dirs("invalid"), ids=lambda p: p.name)
def test_invalid(case: Path) -> None:
    report, project = _run(case)
    got = sorted((d.location.file, d.location.line, d.code) for d in report.diagnostics)
    assert got == expected(case), "\n".join(d.message for d in report.diagnostics)
    # warning-only cases (a forgotten cell) still validate; any error means no project
    assert report.diagnostics
    assert (project is None) == (not report.ok)
    for d in report.diagnostics:
        assert d.message and d.location.file
        assert d.severity in REGISTRY[d.code].severities, (d.code, d.severity)


def test_enough_invalid_cases() -> None:
    assert len(case_dirs("invalid")) >= 40
    assert all(expected(c) for c in case_dirs("invalid"))
