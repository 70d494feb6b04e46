"""nbflow's JupyterLab extension in a real browser: JupyterLab started on loopback with a token,
Debian's chromium driven by playwright. Screenshots go to $NBFLOW_E2E_ARTIFACTS (else a
temporary folder), printed at the start.

These fail, not skip, when chromium or playwright is missing: CI installs both (.ci/run).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (  # noqa: F401  (fixtures: tests/support/browser.py says why)
    jp_asyncio_loop,
    jp_server_cleanup,
)
from tests.support.lab import Lab, chromium_path, jupyter_lab
from tests.support.projects import (
    DEMO_CELLS,
    DEMO_MANIFEST,
    manifest_text,
    write_project,
)

pytestmark = pytest.mark.slow

CELLS = DEMO_CELLS
MANIFEST = DEMO_MANIFEST


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("NBFLOW_E2E_ARTIFACTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("lab-e2e-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the JupyterLab tests: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "root" / "demo", CELLS, MANIFEST)


@pytest.fixture
def lab(project: Path) -> Iterator[Lab]:
    with jupyter_lab(project.parent) as lab:
        yield lab


def open_notebook(browser: Any, lab: Lab) -> Any:
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.goto(lab.url("lab/tree/demo/nb.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.locator('.lm-TabBar-tab[data-id="nbflow-panel"]').click()
    page.wait_for_selector(".nbflow-panel .nbflow-step", timeout=60_000)
    page.wait_for_selector(".jp-Cell .nbflow-badge", timeout=30_000)
    return page


def cell(page: Any, number: int) -> Any:
    return page.locator(".jp-Notebook .jp-Cell").nth(number - 1)


def wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_badges_show_each_cells_step(browser: Any, lab: Lab, artifacts: Path) -> None:
    page = open_notebook(browser, lab)
    badges = [cell(page, n).locator(".nbflow-badge").text_content() for n in (1, 3, 4, 6, 7)]
    assert badges == ["setup", "parameters", "load", "fit", "skip"]
    assert cell(page, 2).locator(".nbflow-badge").count() == 0  # markdown: in no part
    steps = page.locator(".nbflow-panel .nbflow-step .nbflow-step-name").all_text_contents()
    assert steps == ["load", "fit"]
    assert "← ys from load" in page.locator('.nbflow-step[data-step="fit"]').text_content()
    page.screenshot(path=str(artifacts / "panel.png"))
    page.close()


def test_assign_a_cell_to_a_new_step_through_the_ui(
    browser: Any, lab: Lab, project: Path, artifacts: Path
) -> None:
    page = open_notebook(browser, lab)
    cell(page, 5).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode: cell 5 selected
    cell(page, 5).click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="nbflow: Assign to New Step…").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("transform")
    page.screenshot(path=str(artifacts / "new-step-dialog.png"))
    dialog.locator(".jp-mod-accept").click()
    manifest = project / "nbflow.yaml"
    wait_for(lambda: "transform" in manifest.read_text(), "the manifest to name the new step")
    expected = manifest_text(MANIFEST).replace(
        "    cells: 4-5  # the data\n",
        "    cells: 4    # the data\n  transform:\n    cells: 5\n",
    )
    assert manifest.read_text() == expected
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-Cell')[4].querySelector('.nbflow-badge')"
        "?.textContent === 'transform'"
    )
    page.screenshot(path=str(artifacts / "new-step.png"))
    # the same cell menu skips a cell: out of its step, into `skip`
    cell(page, 6).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    cell(page, 6).click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="nbflow: Skip Cell").click()
    wait_for(lambda: "skip: [6-7]" in manifest.read_text(), "cell 6 to be skipped")
    assert "  fit:" not in manifest.read_text()  # its only cell left: the step goes
    page.close()


def test_a_broken_manifest_shows_its_diagnostic_on_the_cell(
    browser: Any, lab: Lab, project: Path, artifacts: Path
) -> None:
    page = open_notebook(browser, lab)
    manifest = project / "nbflow.yaml"
    # cell 5 (which defines `ys`) leaves the pipeline: step fit, cell 6, reads an undefined name
    manifest.write_text(
        manifest.read_text().replace("cells: 4-5", "cells: 4").replace("[7]", "[5, 7]")
    )
    diagnostics = cell(page, 6).locator(".nbflow-cell-diagnostics")
    diagnostics.wait_for(timeout=30_000)  # the panel reloads a manifest changed on disk
    text = diagnostics.text_content() or ""
    assert "`ys`" in text and "hint:" in text
    assert cell(page, 4).locator(".nbflow-cell-diagnostics").count() == 0
    assert page.locator(".nbflow-panel .nbflow-invalid").count() == 1
    page.screenshot(path=str(artifacts / "diagnostic.png"))
    page.close()


def test_run_from_the_panel_to_success(browser: Any, lab: Lab, artifacts: Path) -> None:
    page = open_notebook(browser, lab)
    page.locator(".nbflow-panel .nbflow-run").click()
    page.wait_for_selector(".nbflow-run-succeeded", timeout=240_000)
    statuses = page.locator(".nbflow-panel .nbflow-step-status").all_text_contents()
    assert [s.split()[-1] for s in statuses] == ["succeeded", "succeeded"]
    assert page.locator(".nbflow-panel .nbflow-report").count() == 2
    assert cell(page, 6).locator(".nbflow-badge").text_content() == "fit ✓"
    page.screenshot(path=str(artifacts / "run.png"))
    page.locator(".nbflow-panel .nbflow-build").click()
    version = page.locator(".nbflow-panel .nbflow-version")
    version.wait_for(timeout=120_000)
    assert re.fullmatch(r"version [0-9a-f]{8} \(demo-[0-9a-f]{8}\)", version.text_content() or "")
    page.close()


def test_create_pipeline_shows_the_draft_then_writes_it(
    browser: Any, lab: Lab, project: Path, artifacts: Path
) -> None:
    from tests.support.projects import write_notebook

    folder = project.parent / "fresh"
    folder.mkdir()
    write_notebook(folder / "analysis.ipynb", ["import math", "x = math.pi", "y = x * 2"])
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.goto(lab.url("lab/tree/fresh/analysis.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.locator('.lm-TabBar-tab[data-id="nbflow-panel"]').click()
    page.locator(".nbflow-panel .nbflow-create").click()
    draft = page.locator(".jp-Dialog .nbflow-draft-text")
    draft.wait_for(timeout=30_000)
    shown = draft.text_content() or ""
    assert "name: analysis" in shown and not (folder / "nbflow.yaml").exists()
    page.screenshot(path=str(artifacts / "create.png"))
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_selector(".nbflow-panel .nbflow-step", timeout=30_000)
    assert (folder / "nbflow.yaml").read_text() == shown + ("" if shown.endswith("\n") else "\n")
    assert cell(page, 1).locator(".nbflow-badge").count() == 1
    page.close()


def test_the_manifest_open_in_an_editor_is_validated_as_it_is_typed(
    browser: Any, lab: Lab, project: Path, artifacts: Path
) -> None:
    page = open_notebook(browser, lab)
    page.locator(".jp-DirListing-itemText", has_text="nbflow.yaml").dblclick()
    editor = page.locator(".jp-FileEditor .cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("retries: 1")
    unknown = page.locator(".nbflow-panel .nbflow-diagnostic", has_text="retries")
    unknown.wait_for(timeout=30_000)
    # and on the line it points at, in the editor
    marked = page.locator(".jp-FileEditor .cm-line.nbflow-line-error")
    marked.wait_for(timeout=30_000)
    assert marked.count() == 1 and marked.text_content() == "retries: 1"
    assert "unknown key `retries`" in (marked.get_attribute("title") or "")
    page.screenshot(path=str(artifacts / "manifest-typed.png"))
    assert "retries" not in (project / "nbflow.yaml").read_text()  # unsaved: nothing written
    page.close()


def test_it_passes_after_the_server_extensions_tests_in_one_process() -> None:
    """pytest-jupyter, loaded by tests/test_lab_server.py, makes its event-loop fixture autouse
    for every test collected after that module: it once closed playwright's running loop here
    ("Cannot close a running event loop"). The suite's order ran this module first."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_lab_server.py::test_project_gives_owners_steps_in_dag_order_edges_and_declarations",
            "tests/test_lab_e2e.py::test_badges_show_each_cells_step",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "2 passed" in done.stdout
