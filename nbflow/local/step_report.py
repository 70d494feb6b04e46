"""A step's report as Jupyter shows it, finished on the machine that collects the run.

The step runtime is stdlib-only, so it leaves Markdown and LaTeX outputs as their escaped source
(`<pre class="markdown-source">`, `<pre class="latex-source">`). Here they become HTML:
Markdown through markdown-it-py (CommonMark; raw HTML in it stays text), and math (`$...$`,
`$$...$$`, `IPython.display.Math`) drawn by matplotlib's mathtext as inline SVG where
matplotlib is installed and can draw it, else shown as its source in a math box.
"""

from __future__ import annotations

import base64
import html
import io
import re
from functools import cache
from typing import Any

__all__ = ["finish", "markdown_html", "math_html"]

_MARKDOWN = re.compile(r'<pre class="markdown-source">(.*?)</pre>', re.DOTALL)
_LATEX = re.compile(r'<pre class="latex-source">(.*?)</pre>', re.DOTALL)
# $$display$$ first, then $inline$ (not `\$`, not a `$ ` that is a price)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?=\S)(.+?)(?<=\S)\$(?!\d)", re.DOTALL)
_STYLE = (
    "<style>.markdown{margin:.3em 0}.markdown table{border-collapse:collapse}"
    ".math{font-family:'Latin Modern Math','STIX Two Math',serif;background:#f7f7fb;"
    "padding:0 .25em}div.math{padding:.4em;margin:.3em 0}img.math{vertical-align:middle;"
    "background:none}</style>"
)


def finish(page: str) -> str:
    """The report with its Markdown and LaTeX outputs rendered."""
    if 'class="markdown-source"' not in page and 'class="latex-source"' not in page:
        return page
    page = _MARKDOWN.sub(lambda m: markdown_html(html.unescape(m.group(1))), page)
    page = _LATEX.sub(lambda m: _latex_block(html.unescape(m.group(1))), page)
    return page.replace("</head>", _STYLE + "</head>", 1)


@cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_html(source: str) -> str:
    """Markdown (with `$` math) as HTML; raw HTML in the source is shown as text."""
    maths: list[str] = []

    def hold(m: re.Match[str]) -> str:
        display = m.group(1) is not None
        maths.append(math_html(m.group(1) if display else m.group(2), display=display))
        return f"NBFLOWMATH{len(maths) - 1}X"

    text = _MATH.sub(hold, source)
    rendered = str(_parser().render(text))
    rendered = re.sub(r"NBFLOWMATH(\d+)X", lambda m: maths[int(m.group(1))], rendered)
    return f'<div class="markdown">{rendered}</div>'


def _latex_block(source: str) -> str:
    text = source.strip()
    m = re.fullmatch(r"\$\$(.+)\$\$|\$(.+)\$|\\\[(.+)\\\]", text, re.DOTALL)
    if m is None:  # LaTeX that is not one formula (a table, a document): its source
        return f'<pre class="latex">{html.escape(source)}</pre>'
    body = next(g for g in m.groups() if g is not None)
    return f'<div class="latex">{math_html(body, display=True)}</div>'


def math_html(tex: str, *, display: bool = False) -> str:
    """One formula: an SVG image drawn by mathtext, or its source in a math box."""
    cleaned = re.sub(r"\\(displaystyle|textstyle)\b", "", tex).strip()
    svg = _mathtext_svg(cleaned)
    tag = "div" if display else "span"
    if svg is None:
        return f'<{tag} class="math">{html.escape(tex)}</{tag}>'
    data = base64.b64encode(svg).decode("ascii")
    image = f'<img class="math" alt="{html.escape(tex, quote=True)}" src="data:image/svg+xml;base64,{data}">'
    return f'<div class="math">{image}</div>' if display else image


@cache
def _mathtext_svg(tex: str) -> bytes | None:
    try:
        from matplotlib import mathtext
        from matplotlib.font_manager import FontProperties
    except ImportError:
        return None
    buf = io.BytesIO()
    try:
        mathtext.math_to_image(f"${tex}$", buf, prop=FontProperties(size=15), format="svg")
    except Exception:  # mathtext knows a subset of LaTeX: the rest is shown as source
        return None
    return buf.getvalue()
