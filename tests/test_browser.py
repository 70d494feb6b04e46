"""The reports as a user sees them: opened in a real headless chromium, asserting on what is
rendered (not on the HTML text), with screenshots kept in `.artifacts/screenshots/`. The `browser` and `page` fixtures are
tests/support/browser.py's, through conftest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbflow.local.run import RunResult
from tests.support.browser import (  # noqa: F401  (fixtures: tests/support/browser.py says why)
    jp_asyncio_loop,
    jp_server_cleanup,
    only_local,
    shoot,
)
from tests.support.cli import run_cli
from tests.test_step_report import rich_run
from tests.test_tune import project_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return rich_run(tmp_path_factory.mktemp("browser") / "rich")


def test_the_run_report_draws_the_dag_and_links_every_step(rich: RunResult, page: Any) -> None:
    page.goto((rich.run_dir / "index.html").as_uri())
    assert shoot(page, "run-report").stat().st_size > 10_000
    assert page.locator("#run-status").inner_text() == "succeeded"
    # the DAG is drawn: one visible node per step, with its status, and the edge between them
    nodes = page.locator("svg.dag g.node")
    assert nodes.count() == 2
    for i in range(2):
        box = nodes.nth(i).bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 20
    assert page.locator("svg.dag g.node text").all_text_contents() == [
        "load", "succeeded", "plot", "succeeded"
    ]  # fmt: skip
    assert page.locator("svg.dag path.edge").count() == 1
    # every step is linked from the table (its report and log) and from the DAG
    rows = page.locator("table#steps tr[data-step]")
    assert rows.count() == 2
    for name in ("load", "plot"):
        row = page.locator(f'table#steps tr[data-step="{name}"]')
        assert row.locator("a.report").get_attribute("href") == f"reports/{name}.html"
        assert row.locator("a.log").get_attribute("href") == f"logs/{name}.log"
        assert (rich.run_dir / "reports" / f"{name}.html").is_file()
    metrics = page.locator("table").nth(1).inner_text()
    assert "count\t6" in metrics
    # following a DAG node opens that step's report
    page.locator('svg.dag a:has(g[data-step="plot"])').click()
    page.wait_for_load_state()
    assert page.url.endswith("/reports/plot.html")
    assert only_local(page)


def test_a_step_report_renders_markdown_latex_ansi_logging_and_frames(
    rich: RunResult, page: Any
) -> None:
    page.goto((rich.run_dir / "reports" / "load.html").as_uri())
    assert shoot(page, "step-report").stat().st_size > 10_000
    # what the cells put out, without their source (which holds the escapes and `**` as typed)
    text = "\n".join(page.locator("section.cell > :not(pre.src)").all_inner_texts())
    # Markdown: the bold is a bold element; no Markdown syntax left showing
    bold = page.locator(".markdown strong")
    assert bold.inner_text() == "bold" and "**bold**" not in text
    assert int(bold.evaluate("e => getComputedStyle(e).fontWeight")) >= 600
    # ANSI: no escape sequence in the text, the red word drawn in red
    assert "\x1b" not in text and "[31m" not in text and "[0m" not in text
    red = page.locator("pre.stdout span", has_text="red")
    assert red.evaluate("e => getComputedStyle(e).color") == "rgb(201, 27, 0)"
    # logging from the cell is in the report
    assert "INFO:nb:loading data" in text
    # the DataFrame is a table with its headers
    headers = page.locator("table.dataframe thead th").all_inner_texts()
    assert "alpha" in headers and "beta" in headers
    # LaTeX: drawn (an image that loaded) or its source in a math box, never `$\displaystyle`
    math = page.locator(".latex .math").first
    assert math.count() == 1 and "\\displaystyle" not in text
    if math.locator("img").count():
        assert math.locator("img").evaluate("e => e.complete && e.naturalWidth > 0")
    assert only_local(page)


def test_a_step_report_shows_the_matplotlib_figure_and_its_metric_once(
    rich: RunResult, page: Any
) -> None:
    page.goto((rich.run_dir / "reports" / "plot.html").as_uri())
    assert shoot(page, "step-report-figure").stat().st_size > 10_000
    figure = page.locator("div.out img").first
    assert figure.evaluate("e => e.complete && e.naturalWidth > 100")
    results = page.locator("table").last.inner_text()
    assert results.count("count") == 1 and "cloudpickle" not in results
    assert only_local(page)


def test_the_tuning_report_shows_its_plots_best_trial_and_links_every_trial(
    tmp_path: Path, page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_with(
        tmp_path / "quad",
        """
        objective: score
        algorithm: grid
        maxTrials: 3
        parallelTrials: 1
        search:
          x: {min: 2, max: 4, step: 1}
        """,
    )
    assert run_cli(capsys, "tune", str(root)).code == 0
    report = root / ".nbflow" / "tune" / "latest" / "report.html"
    page.goto(report.as_uri())
    assert shoot(page, "tune-report").stat().st_size > 10_000
    for plot in ("history", "importances", "slices"):
        assert page.locator(f"img#{plot}").evaluate("e => e.complete && e.naturalWidth > 100")
    assert page.locator("#best").inner_text().startswith("trial #2: score = 0 with x=3")
    assert page.locator("#rerun").inner_text() == f"nbflow run {root} -p x=3"
    links = page.locator("table#trials a.run")
    assert links.count() == 3
    for i in range(3):
        href = links.nth(i).get_attribute("href")
        assert (report.parent / href).resolve().is_file()
    links.nth(1).click()
    page.wait_for_load_state()
    assert page.locator("#run-status").inner_text() == "succeeded"
    assert only_local(page)
