"""The step's report: one self-contained HTML page of its cells, their outputs and its results."""

from __future__ import annotations

import base64
import html
import re
from typing import Any

from .capture import CellLog
from .util import short_repr

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.4em}.meta{color:#555}
.cell{border-top:1px solid #ddd;padding:.6em 0}
.head{color:#555;font-size:.85em;margin-bottom:.3em}
pre{margin:.2em 0;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
pre.src{background:#f5f5f5}pre.stderr{background:#fff3f0}
.error pre,pre.error{background:#fdd;border-left:4px solid #c00}
.out{margin:.2em 0}.prompt{color:#a33;font-size:.85em}
img{max-width:100%}table{border-collapse:collapse}td,th{padding:.2em .5em;border:1px solid #ccc}
"""


def _text(text: str) -> str:
    """Stream text as a terminal shows it: a carriage return rewinds its line."""
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        lines.append(line)
    return "\n".join(lines)


# SGR sequences (colours, bold) become spans; any other escape sequence is dropped.
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# the 8 colours of SGR 30-37 and the 8 bright ones of 90-97, as xterm draws them
_ANSI_COLOURS = (
    *("#000000", "#c91b00", "#00a600", "#a68a0d", "#0225c7", "#c930c7", "#00a5b3", "#9a9a9a"),
    *("#686868", "#ff6e67", "#3fcf3f", "#c9b400", "#6871ff", "#ff77ff", "#3fd5e3", "#d0d0d0"),
)


def _sgr(codes: list[int], state: dict[str, Any]) -> None:
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            state.clear()
        elif code == 1:
            state["bold"] = True
        elif code == 22:
            state.pop("bold", None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            state["color"] = _ANSI_COLOURS[code - 30 if code < 90 else code - 82]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            state["background"] = _ANSI_COLOURS[code - 40 if code < 100 else code - 92]
        elif code == 39:
            state.pop("color", None)
        elif code == 49:
            state.pop("background", None)
        elif code in (38, 48):  # 256 colours and RGB: their arguments are skipped
            i += 2 if codes[i + 1 : i + 2] == [5] else 4
        i += 1


def _ansi_html(text: str, escape: Any = html.escape) -> str:
    """Terminal text as HTML: colours and bold as styled spans, the rest escaped."""
    if "\x1b" not in text:
        return str(escape(text))
    out: list[str] = []
    state: dict[str, Any] = {}
    pos = 0
    for m in [*_SGR.finditer(text), None]:
        chunk = _OTHER_ESCAPE.sub("", text[pos : m.start() if m else len(text)])
        if chunk:
            style = ";".join(
                "font-weight:bold" if k == "bold" else f"{k}:{v}" for k, v in sorted(state.items())
            )
            piece = str(escape(chunk))
            out.append(f'<span style="{style}">{piece}</span>' if style else piece)
        if m is not None:
            _sgr([int(c) if c else 0 for c in m.group(1).split(";")], state)
            pos = m.end()
    return "".join(out)


def _number(value: float) -> str:
    """A metric as a user reads it: an integral value as an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return "".join(str(value).split())


def _render_bundle(data: dict[str, Any]) -> str:
    for mime in ("image/png", "image/jpeg"):
        if data.get(mime):
            return f'<img src="data:{mime};base64,{_base64(data[mime])}">'
    if data.get("image/svg+xml"):
        svg = data["image/svg+xml"]
        svg = svg.encode("utf-8") if isinstance(svg, str) else svg
        return f'<img src="data:image/svg+xml;base64,{_base64(svg)}">'
    if data.get("text/html"):
        markup = data["text/html"]
        return "".join(markup) if isinstance(markup, list) else str(markup)
    # Markdown and LaTeX as their source here; nbflow turns them into HTML on the machine that
    # collects the run's reports (the step image may have no renderer)
    if data.get("text/markdown"):
        return f'<pre class="markdown-source">{html.escape(str(data["text/markdown"]))}</pre>'
    if data.get("text/latex"):
        return f'<pre class="latex-source">{html.escape(str(data["text/latex"]))}</pre>'
    if data.get("text/plain"):
        return f"<pre>{_ansi_html(str(data['text/plain']))}</pre>"
    return f"<pre>{html.escape('(no displayable form: ' + ', '.join(sorted(data)) + ')')}</pre>"


def render_report(
    program: dict[str, Any],
    cells: list[CellLog],
    *,
    error: str | None,
    parameters: dict[str, object],
    saved: dict[str, str],
    metrics: dict[str, float],
    paths: dict[str, str],
) -> str:
    """The step's report as one HTML page (escaped user text, images inline).

    ``paths`` maps the machine's artifact paths to names to show instead.
    """

    def scrub(text: str) -> str:
        for path, label in paths.items():
            text = text.replace(path, label)
        return html.escape(text)

    title = f"{program.get('pipeline', '')} / {program.get('step', '')}"
    status = "failed" if error else "succeeded"
    seconds = sum(c.seconds for c in cells)
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">notebook {html.escape(str(program.get("notebook", "")))}, '
        f"{len(cells)} cell(s) run, {status} in {seconds:.2f} s</p>",
    ]
    if parameters:
        shown = ", ".join(f"{k}={short_repr(v)}" for k, v in parameters.items())
        parts.append(f'<p class="meta">parameters: {html.escape(shown)}</p>')
    failed_cell = next((c for c in cells if c.error), None)
    if failed_cell is not None and error:
        first = error.splitlines()[0]
        parts.append(
            f'<div class="error"><pre><a href="#cell-{failed_cell.number}">'
            f"{scrub(first)}</a></pre></div>"
        )
    elif error:
        parts.append(f'<div class="error"><pre>{scrub(error)}</pre></div>')
    for cell in cells:
        label = f"cell {cell.number}" + (" (setup)" if cell.setup else "")
        parts.append(f'<section class="cell" id="cell-{cell.number}">')
        parts.append(f'<div class="head">{html.escape(label)}, {cell.seconds:.2f} s</div>')
        parts.append(f'<pre class="src">{html.escape(cell.source)}</pre>')
        for output in cell.outputs:
            if output[0] == "stream":
                text = _ansi_html(_text(output[2]), scrub)
                parts.append(f'<pre class="{output[1]}">{text}</pre>')
            else:
                prompt = f'<div class="prompt">Out[{output[2]}]:</div>' if output[2] else ""
                parts.append(f'<div class="out">{prompt}{_render_bundle(output[1])}</div>')
        if cell.omitted:
            note = f"[{cell.omitted} more characters of output are in the step log]"
            parts.append(f"<pre>{html.escape(note)}</pre>")
        if cell.error:
            parts.append(f'<pre class="error">{_ansi_html(cell.error, scrub)}</pre>')
        parts.append("</section>")
    if saved or metrics:
        parts.append('<section class="cell"><div class="head">results</div><table>')
        for name, serializer in saved.items():
            if name in metrics:  # listed below, as the metric it is
                continue
            parts.append(
                f"<tr><td>output</td><td>{html.escape(name)}</td>"
                f"<td>{html.escape(serializer)}</td></tr>"
            )
        for name, value in metrics.items():
            parts.append(
                f"<tr><td>metric</td><td>{html.escape(name)}</td><td>{_number(value)}</td></tr>"
            )
        parts.append("</table></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
