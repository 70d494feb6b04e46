"""The screenshots of docs/jupyterlab.md, taken the way the browser tests drive JupyterLab:

    python -m tests.support.lab_screenshots docs/images

on a copy of examples/digits (the pipeline, a new step, a diagnostic, a run, the init draft).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.lab import REPO, chromium_path, jupyter_lab


def _open(page: Any, lab: Any, path: str) -> None:
    page.goto(lab.url(f"lab/tree/{path}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.locator('.lm-TabBar-tab[data-id="nbflow-panel"]').click()
    time.sleep(1)


def take(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="nbflow-shots-"))
    shutil.copytree(
        REPO / "examples" / "digits", root / "digits", ignore=shutil.ignore_patterns(".nbflow")
    )
    (root / "scratch").mkdir()
    shutil.copy(root / "digits" / "digits.ipynb", root / "scratch" / "analysis.ipynb")
    with jupyter_lab(root) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        _open(page, lab, "digits/digits.ipynb")
        page.wait_for_selector(".nbflow-panel .nbflow-step", timeout=60_000)
        page.screenshot(path=str(out / "jupyterlab-panel.png"))

        page.locator(".nbflow-panel .nbflow-run").click()
        page.wait_for_selector(".nbflow-run-succeeded", timeout=600_000)
        page.screenshot(path=str(out / "jupyterlab-run.png"))

        manifest = root / "digits" / "nbflow.yaml"
        # cell 8 out of the pipeline: `train` reads X_train, which only cell 8 assigns
        broken = manifest.read_text().replace("  preprocess:\n    cells: 8\n", "")
        manifest.write_text(broken.replace("skip: [14]", "skip: [8, 14]"))
        page.wait_for_selector(".nbflow-invalid", timeout=60_000)
        page.locator(".jp-Cell .nbflow-cell-diagnostics").last.scroll_into_view_if_needed()
        page.screenshot(path=str(out / "jupyterlab-diagnostic.png"))

        _open(page, lab, "scratch/analysis.ipynb")
        page.locator(".nbflow-panel .nbflow-create").click()
        page.wait_for_selector(".nbflow-draft-text", timeout=60_000)
        page.screenshot(path=str(out / "jupyterlab-create.png"))
        browser.close()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
