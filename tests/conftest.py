from __future__ import annotations

import os

import pytest

from tests.support.browser import browser, page  # noqa: F401  (fixtures)
from tests.support.cases import CASES


def pytest_configure(config: pytest.Config) -> None:
    # The fast loop (`-m "not slow"`) draws a quarter of the property tests' examples
    # (tests/support/fuzz.py), unless a profile is named; the whole suite draws them all.
    if "not slow" in (config.getoption("markexpr") or ""):
        os.environ.setdefault("HYPOTHESIS_PROFILE", "fast")


@pytest.fixture
def cases_dir():
    return CASES
