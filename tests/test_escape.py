"""nbflow.escape: each medium's escaping, judged by what the medium makes of the result."""

from __future__ import annotations

import subprocess

import pytest
from markdown_it import MarkdownIt

from nbflow.escape import (
    markdown,
    markdown_code,
    terminal,
    terminal_lines,
    uri,
    workflow_data,
    workflow_property,
)

HOSTILE = [
    "[link](https://evil.example)",
    "![image](https://evil.example/i.png)",
    "<details><summary>open",
    "<img src=x onerror=alert(1)>",
    "a | b",
    "*bold* _em_ ~~del~~ `code` $x$",
    "&lt; &#60;",
    "- item",
    "1. item",
    "# heading",
    "line\nbreak",
    "tab\there",
    "esc \x1b[31m red",
]


def test_terminal_shows_every_control_character_as_an_escape() -> None:
    assert terminal("plain ü €") == "plain ü €"
    assert terminal("a\nb\rc\td\x1b[2J\x7f\x9b\u202e") == "a\\nb\\rc\\td\\x1b[2J\\x7f\\x9b\\u202e"
    assert terminal_lines("one\x1b\ntwo\r") == "one\\x1b\ntwo\\r"
    # no line of it is a workflow command, even indented (the runner strips leading spaces)
    assert terminal_lines("a\n::error::x\n  ::add-mask::y\nb ::c") == (
        "a\n\\x3a:error::x\n  \\x3a:add-mask::y\nb ::c"
    )


def test_workflow_commands_escape_as_the_runner_unescapes() -> None:
    assert workflow_data("50%\r\nx") == "50%25%0D%0Ax"
    assert workflow_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_renders_as_the_text_it_was(text: str) -> None:
    md = MarkdownIt("commonmark").enable("table")
    html = md.render(markdown(text))
    assert "<a" not in html and "<img" not in html and "<details" not in html
    assert "<em>" not in html and "<code>" not in html and "<li>" not in html
    assert "<h1>" not in html and "<br" not in html
    # one paragraph, whose text is the input with its control characters shown
    inline = md.renderInline(markdown(text))
    from html import unescape

    assert unescape(inline) == terminal(text)


@pytest.mark.parametrize("text", [*HOSTILE, "``a`b``", "`start", "end`", " "])
def test_markdown_code_is_one_code_span_of_the_text(text: str) -> None:
    from html import unescape

    md = MarkdownIt("commonmark").enable("table")
    inline = md.renderInline(markdown_code(text))
    assert inline.startswith("<code>") and inline.endswith("</code>")
    shown = unescape(inline[len("<code>") : -len("</code>")])
    assert shown.strip() == terminal(text).strip()
    # and in a table cell, a `|` does not split the cell
    table = md.render(f"| a |\n|---|\n| {markdown_code(text, table=True)} |\n")
    assert table.count("<td>") == 1 and "<a" not in table and "<details" not in table


def test_uri_percent_encodes_as_rfc_3986() -> None:
    assert uri("dir/a b/%/#?:x/ü.yaml") == "dir/a%20b/%25/%23%3F%3Ax/%C3%BC.yaml"
    assert uri("plain/path-1_2.~.yaml") == "plain/path-1_2.~.yaml"


def test_terminal_text_printed_by_a_shell_carries_no_control_character() -> None:
    shown = terminal("\x1b]0;title\x07\x1b[2J")
    out = subprocess.run(["printf", "%s", shown], capture_output=True, text=True, check=True)
    assert out.stdout.isprintable()
