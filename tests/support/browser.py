"""A real headless browser for the report tests: Debian's chromium driven by playwright.

playwright cannot download its own browsers here, so it launches the system's chromium
(`.ci/run` installs it). Without chromium a test is skipped, unless NBFLOW_REQUIRE_BROWSER is set
(CI sets it): then it fails. Screenshots go to NBFLOW_ARTIFACTS (default `.artifacts/` at the
repository root), kept after the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def artifacts() -> Path:
    folder = Path(os.environ.get("NBFLOW_ARTIFACTS") or REPO / ".artifacts") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# pytest-jupyter's two autouse fixtures reach every test collected after tests/test_lab_server.py
# loads the plugin (`pytest_plugins`), not only that module's: jp_asyncio_loop takes the thread's
# current event loop and closes it after the test, jp_server_cleanup runs a ServerApp's cleanup
# in it. Under playwright's sync API the current loop is playwright's own, still running: the
# close failed ("Cannot close a running event loop"). A module that drives a browser imports
# these two, which take their place there: no Jupyter server runs in its process.
@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        message = "no chromium or playwright: `.ci/run` installs them"
        if os.environ.get("NBFLOW_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        # --no-sandbox: CI containers run as root, where chromium's sandbox cannot start
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    pg = context.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.nbflow_requests = requests  # what the page asked for: only file: and data: URLs
    try:
        yield pg
    finally:
        context.close()


def shoot(page: Any, name: str) -> Path:
    path = artifacts() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def only_local(page: Any) -> bool:
    return all(u.startswith(("file:", "data:")) for u in page.nbflow_requests)
