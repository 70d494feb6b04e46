"""Text a user wrote (names, keys, paths, cell lines, messages quoting them), escaped for the
medium it lands in: one function per medium, and every writer of that medium calls it.

- a terminal or CI log (`terminal`, `terminal_lines`): no control character reaches it; escape
  sequences (ESC), carriage returns and line breaks are shown as `\\x1b`, `\\r`, `\\n`, so
  that a name cannot recolour the screen, overwrite a line, or start a new line that a CI
  runner reads as a workflow command (`::error ...`);
- GitHub workflow commands (`workflow_data`, `workflow_property`): escaped as the runner
  unescapes them (`%25`, `%0D`, `%0A`; `%3A`, `%2C` in properties);
- Markdown with HTML, as in a job summary (`markdown`, `markdown_code`): every ASCII
  punctuation character backslash-escaped, so no link, image, HTML tag, emphasis or table cell
  break can form;
- URIs, as in SARIF (`uri`): percent-encoded as RFC 3986 says, `/` kept.
"""

from __future__ import annotations

import string
from urllib.parse import quote

__all__ = ["markdown", "markdown_code", "terminal", "uri", "workflow_data", "workflow_property"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def terminal(text: str) -> str:
    """`text` on one line of a terminal: non-printable characters (C0 and C1 controls, ESC,
    CR, LF, TAB, DEL, bidi overrides and other format characters) written as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _visible(c) for c in text)


def terminal_lines(text: str) -> str:
    """Multi-line text for a terminal: each line as `terminal` shows it, the line breaks kept,
    and no line that a CI runner would read as a workflow command (GitHub's runner takes a line
    starting with `::`, leading spaces stripped): its first `:` is shown as `\\x3a`."""
    return "\n".join(_not_a_command(terminal(line)) for line in text.split("\n"))


def _not_a_command(line: str) -> str:
    body = line.lstrip()
    if not body.startswith("::"):
        return line
    return line[: len(line) - len(body)] + "\\x3a" + body[1:]


def workflow_data(text: str) -> str:
    """The message of a GitHub workflow command (`::error ...::MESSAGE`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of a GitHub workflow command (`::error file=VALUE,...::`)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


# inert inside a line of Markdown prose, and too common in names to clutter them with `\`
_MARKDOWN_INERT = frozenset("-,/'\";=?%")
_MARKDOWN_SPECIAL = frozenset(string.punctuation) - _MARKDOWN_INERT


def markdown(text: str) -> str:
    """`text` as literal Markdown (GitHub's, HTML allowed) prose on one line: control characters
    shown as escapes (a line break would end a table row or start a block) and every ASCII
    punctuation character that can start markup backslash-escaped (CommonMark lets any be), so
    that `[a](b)`, `![a](b)`, `<details>`, `&amp;`, `*`, `|`, `$` and `https://` or `www.` render
    as the characters they are, never as a link, image, tag, entity, emphasis or table break."""
    shown = terminal(text)
    out = "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in shown)
    return "\\" + out if out.startswith("-") else out  # not a list item or a rule


def markdown_code(text: str, *, table: bool = False) -> str:
    """`text` as one Markdown code span, whatever backticks it holds (the fence is longer
    than any run of them inside), on one line. In a table cell (`table=True`) `|` is escaped:
    the table needs it, and a code span in a table renders `\\|` as `|`."""
    shown = terminal(text)
    if table:
        shown = shown.replace("|", "\\|")
    longest = run = 0
    for c in shown:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def uri(path: str) -> str:
    """A relative path as a URI reference (RFC 3986): everything but unreserved characters and
    `/` percent-encoded as UTF-8, so that `%`, `#`, `?`, spaces and `:` stay in the path."""
    return quote(path, safe="/")
