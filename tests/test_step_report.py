"""Step reports render what Jupyter renders: ANSI colours, logging, Markdown and LaTeX (finished
on the host by nbflow/local/step_report.py), integer metrics, a metric listed once."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import pytest

from nbflow.incluster.runtime import capture, report
from nbflow.local import step_report
from nbflow.local.run import run
from tests.support.projects import load, tagged, write_project


def test_ansi_colours_become_spans_and_other_escapes_vanish() -> None:
    out = report._ansi_html("\x1b[1;31mred <b>\x1b[0m plain \x1b[2K\x1b[92mgreen\x1b[39m end")
    assert "\x1b" not in out and "[0m" not in out
    assert out.startswith('<span style="font-weight:bold;color:#c91b00">red &lt;b&gt;</span>')
    assert ' plain <span style="color:#3fcf3f">green</span> end' in out
    # 256-colour and RGB arguments are skipped, not read as colours of their own
    assert report._ansi_html("\x1b[38;5;1mx\x1b[38;2;1;2;3my") == "xy"
    assert report._ansi_html("a < b") == "a &lt; b"


def test_markdown_and_latex_are_left_as_source_in_the_step() -> None:
    md = report._render_bundle({"text/markdown": "**b** <i>", "text/plain": "<Markdown>"})
    assert md == '<pre class="markdown-source">**b** &lt;i&gt;</pre>'
    tex = report._render_bundle({"text/latex": r"$\alpha$", "text/plain": "<Math>"})
    assert tex == r'<pre class="latex-source">$\alpha$</pre>'


def test_the_host_renders_markdown_and_math_keeping_html_as_text() -> None:
    page = (
        "<html><head></head><body>"
        '<pre class="markdown-source">Some **bold** &lt;script&gt;x&lt;/script&gt; and $a^2$'
        "\n\n| h |\n|---|\n| c |</pre>"
        r'<pre class="latex-source">$\displaystyle \frac{1}{2}$</pre>'
        r'<pre class="latex-source">\begin{tabular}x\end{tabular}</pre></body></html>'
    )
    out = step_report.finish(page)
    assert "<strong>bold</strong>" in out and "&lt;script&gt;" in out and "<script>" not in out
    assert "<th>h</th>" in out and "markdown-source" not in out and "latex-source" not in out
    assert out.count('class="math"') >= 2  # inline and display: an image or the source
    assert r'<pre class="latex">\begin{tabular}x\end{tabular}</pre>' in out
    assert step_report.finish("<p>plain</p>") == "<p>plain</p>"


def test_math_falls_back_to_its_source_when_mathtext_cannot_draw_it() -> None:
    out = step_report.math_html(r"\unknowncommand{x}")
    assert out == r'<span class="math">\unknowncommand{x}</span>'


def test_logging_in_a_cell_reaches_the_report_as_in_a_fresh_kernel() -> None:
    root = logging.getLogger()
    kfp_like = logging.StreamHandler(sys.stdout)  # what kfp's executor sets up
    root.addHandler(kfp_like)
    level = root.level
    recorder = capture.Recorder(io.StringIO())
    recorder.current = capture.CellLog(1, "", False)
    try:
        with capture.notebook_logging(), capture.teed(recorder):
            assert kfp_like not in root.handlers
            logging.basicConfig(level=logging.INFO)  # a no-op before: root had a handler
            logging.getLogger("nb").info("loading data")
        assert root.handlers[-1] is kfp_like and root.level == level
    finally:
        root.removeHandler(kfp_like)
    assert ("stream", "stderr", "INFO:nb:loading data\n") in recorder.current.outputs


def test_a_metric_is_listed_once_and_an_integral_one_as_an_integer() -> None:
    page = report.render_report(
        {"pipeline": "p", "step": "s"},
        [],
        error=None,
        parameters={},
        saved={"model": "joblib", "count": "cloudpickle"},
        metrics={"count": 7.0, "loss": 0.25},
        paths={},
    )
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    assert rows == [
        "<td>output</td><td>model</td><td>joblib</td>",
        "<td>metric</td><td>count</td><td>7</td>",
        "<td>metric</td><td>loss</td><td>0.25</td>",
    ]


# -- a real run: what the step's cells displayed, in the run folder's report ---------------------

RICH_CELLS = [
    "import logging",
    tagged("scale = 2", "parameters"),
    """\
from IPython.display import Markdown, Math, display
import pandas as pd
logging.basicConfig(level=logging.INFO)
logging.getLogger("nb").info("loading data")
display(Markdown("Some **bold** text"))
display(Math(r"\\frac{a}{b} + \\alpha^2"))
print("\\x1b[31mred\\x1b[0m plain")
frame = pd.DataFrame({"alpha": [1, 2], "beta": ["x", "y"]})
display(frame)
x = 3""",
    """\
import matplotlib.pyplot as plt
plt.plot([1, 2, 3])
plt.show()
count = x * scale""",
]
RICH_MANIFEST = """
name: rich
setup: 1
steps:
  load: {cells: 3}
  plot: {cells: 4}
parameters: {scale: 2}
metrics: {count: maximize}
"""


def rich_run(root: Path):  # type: ignore[no-untyped-def]
    project = load(write_project(root, RICH_CELLS, RICH_MANIFEST))
    result = run(project, state_dir=root / ".nbflow")
    assert result.ok, [s.error for s in result.steps]
    return result


@pytest.mark.slow
def test_a_run_renders_what_the_cells_displayed(tmp_path: Path) -> None:
    result = rich_run(tmp_path / "rich")
    load_page = (result.run_dir / "reports" / "load.html").read_text(encoding="utf-8")
    assert "<strong>bold</strong>" in load_page
    assert "INFO:nb:loading data" in load_page
    assert '<span style="color:#c91b00">red</span> plain' in load_page and "\x1b" not in load_page
    assert "<th>alpha</th>" in load_page and "<th>beta</th>" in load_page
    assert 'class="math"' in load_page and "latex-source" not in load_page
    plot_page = (result.run_dir / "reports" / "plot.html").read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in plot_page
    assert "<td>metric</td><td>count</td><td>6</td>" in plot_page
    assert "<td>output</td><td>count</td>" not in plot_page
