from __future__ import annotations

import pytest

from tests.support.browser import browser, page  # noqa: F401  (fixtures)
from tests.support.cases import CASES


@pytest.fixture
def cases_dir():
    return CASES
