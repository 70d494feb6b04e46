from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Iterator

import pytest

from tests.support.browser import browser, page  # noqa: F401  (fixtures)
from tests.support.cases import CASES


def pytest_configure(config: pytest.Config) -> None:
    # The fast loop (`-m "not slow"`) draws a quarter of the property tests' examples
    # (tests/support/fuzz.py), unless a profile is named; the whole suite draws them all.
    if "not slow" in (config.getoption("markexpr") or ""):
        os.environ.setdefault("HYPOTHESIS_PROFILE", "fast")


@pytest.fixture(scope="session", autouse=True)
def _installed_distributions_read_once() -> Iterator[None]:
    """`nbflow init` (and the Kale import, and the lab's draft) names requirements from
    importlib.metadata's map of installed distributions, which reads every installed package's
    file list: about 0.15 s a call, some forty calls in the fast loop. Nothing is installed while
    the suite runs, so it is read once; each caller gets its own copy of the real map."""
    read = functools.cache(importlib.metadata.packages_distributions)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.metadata, "packages_distributions", lambda: dict(read()))
        yield


@pytest.fixture
def cases_dir():
    return CASES
