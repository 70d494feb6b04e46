"""`nbflow explain`: a diagnostic code's explanation, or the list of every code."""

from __future__ import annotations

import textwrap

from nbflow.codes import REGISTRY, Code, closest, lookup
from nbflow.errors import UsageError

WIDTH = 88


def explain(text: str | None) -> str:
    """The explanation of the code `text` names (`NBF302`, `302`, `cycle`); with none, the list.

    Raises UsageError, with the closest code, for a code nbflow does not have."""
    if text is None:
        return catalogue()
    code = lookup(text)
    if code is None:
        near = closest(text)
        hint = f"did you mean {near.id} ({near.name})?" if near else "`nbflow explain` lists them"
        raise UsageError(f"no diagnostic code `{text}`: {hint}")
    return render(code)


def render(code: Code) -> str:
    out = [
        f"{code.id} {code.name} ({code.severity_text})",
        code.summary,
        "",
        textwrap.fill(code.explanation, WIDTH),
    ]
    for title, example in (("Wrong", code.wrong), ("Right", code.right)):
        out += ["", f"{title}:", "", textwrap.indent(example.text, "    ")]
    out += ["", f"More: {code.help_uri}"]
    return "\n".join(out) + "\n"


def catalogue() -> str:
    name_width = max(len(c.name) for c in REGISTRY.values())
    sev_width = max(len(c.severity_text) for c in REGISTRY.values())
    lines = [
        f"{c.id}  {c.name:<{name_width}}  {c.severity_text:<{sev_width}}  {c.summary}"
        for c in REGISTRY.values()
    ]
    lines += ["", "`nbflow explain CODE` explains one, with a wrong and a right example."]
    return "\n".join(lines) + "\n"
