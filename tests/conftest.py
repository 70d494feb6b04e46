from __future__ import annotations

import pytest

from tests.support.browser import browser, page  # noqa: F401  (fixtures)
from tests.support.cases import CASES


@pytest.fixture
def cases_dir():
    return CASES


@pytest.fixture(autouse=True, scope="session")
def _nbflow_cache_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The suite's nbflow cache (nbflow/load/cache.py) is its own, not the user's; subprocesses
    inherit it through the environment."""
    import os

    os.environ["NBFLOW_CACHE_DIR"] = str(tmp_path_factory.mktemp("nbflow-cache"))
