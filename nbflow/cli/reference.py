"""The generated references: docs/manifest.md from the model's JSON schema, docs/commands.md
from the command line's help, docs/diagnostics.md from the registry of diagnostic codes.

    python -m nbflow.cli.reference > docs/manifest.md
    python -m nbflow.cli.reference commands > docs/commands.md
    python -m nbflow.cli.reference diagnostics > docs/diagnostics.md

A test keeps the committed file equal to this output, so the reference can't drift from the
schema that validation and editors use.
"""

from __future__ import annotations

import json
from typing import Any

INTRO = """# nbflow.yaml reference

Generated from the pydantic model by `python -m nbflow.cli.reference > docs/manifest.md`; the same
model validates manifests and produces `schemas/nbflow.v1.schema.json`. Add this first line to a
manifest for completion and hover help in editors that use yaml-language-server:

```yaml
# yaml-language-server: $schema={schema_url}
```

Cell numbers are 1-based and count every cell, markdown too, in notebook order (`nbflow cells
NOTEBOOK` lists them). Numbers are the easiest to read and shift when a cell is inserted above
them: `nbflow lock` records which cells each part holds and `nbflow lock --fix` rewrites the
numbers after such an edit. Where you prefer stability over readability, `id:<cell id>` names a
cell by its nbformat id and `tag:<cell tag>` takes every cell with that tag, in notebook order:
both survive any edit, but the manifest no longer shows where a step is, and a tag must be set
on each cell in Jupyter. Every key not listed here is an error that names the closest valid key.
"""

_SECTIONS = [
    ("Manifest", "Top level"),
    ("Step", "steps.<name>"),
    ("Resources", "resources (top level and per step)"),
    ("Toleration", "steps.<name>.tolerations[]"),
    ("Parameter", "parameters.<name>"),
    ("Metric", "metrics.<name>"),
    ("Tuning", "tuning"),
    ("SearchSpace", "tuning.search.<parameter>"),
    ("Volume", "volumes[]"),
    ("Deploy", "deploy"),
]


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[1]
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    for key in ("anyOf", "oneOf"):
        if key in prop:
            parts = [_type(p) for p in prop[key] if p.get("type") != "null"]
            return " \\| ".join(dict.fromkeys(parts))
    t = prop.get("type")
    if t == "array":
        items = prop.get("items", {})
        return f"list of {_type(items)}" if items else "list"
    if t == "object":
        extra = prop.get("additionalProperties")
        return f"map of {_type(extra)}" if isinstance(extra, dict) and extra else "map"
    return {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}.get(
        str(t), str(t or "any")
    )


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" not in prop or prop["default"] in (None, [], {}):
        return ""
    return f"`{json.dumps(prop['default'])}`"


def render() -> str:
    from nbflow.check.manifest import json_schema
    from nbflow.check.schema import SCHEMA_URL

    schema = json_schema()
    defs = schema.get("$defs", {})
    out = [INTRO.replace("{schema_url}", SCHEMA_URL)]
    for name, title in _SECTIONS:
        model = schema if name == "Manifest" else defs[name]
        out.append(f"## {title}\n")
        out.append("| key | type | default | description |")
        out.append("|---|---|---|---|")
        required = set(model.get("required", []))
        for key, prop in model.get("properties", {}).items():
            desc = (prop.get("description") or "").replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{key}` | {_type(prop)} | {_default(prop, key in required)} | {desc} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


COMMANDS_INTRO = """# Command reference

Generated from the command line's own help by `python -m nbflow.cli.reference commands >
docs/commands.md`. Every command exits `0` on success, `1` when the input has errors or a run,
tuning or apply failed, `2` on bad usage or an environment problem (a missing file or
requirement, an unreachable cluster, missing credentials), `3` on an internal error (a bug in
nbflow, reported on one line as `nbflow: internal error (please report): ...`; set
`NBFLOW_TRACEBACK=1` for the traceback), and `130` when interrupted (Ctrl-C, SIGTERM or
SIGHUP). No command prints a traceback, whatever its input.
"""


def commands() -> str:
    import argparse
    import os

    from nbflow.cli.main import parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: make it reproducible
    try:
        p = parser()
        out = [COMMANDS_INTRO]
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        for name, sp in sub.choices.items():
            out.append(f"## nbflow {name}\n")
            out.append("```text")
            out.append(sp.format_help().rstrip())
            out.append("```\n")
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(out).rstrip() + "\n"


DIAGNOSTICS_INTRO = """# Diagnostic codes

Generated from the registry of codes (`nbflow/codes/`) by `python -m nbflow.cli.reference
diagnostics > docs/diagnostics.md`. `nbflow explain CODE` prints the same explanation in a
terminal, and `nbflow validate --format sarif` links each result here. Codes are stable: a code
is never reused or renumbered (NBF510, never reported, is retired).
"""


def diagnostics() -> str:
    from nbflow.codes import REGISTRY

    out = [DIAGNOSTICS_INTRO, "| code | name | severity | summary |", "|---|---|---|---|"]
    for c in REGISTRY.values():
        summary = c.summary.replace("|", "\\|")
        out.append(f"| [{c.id}](#{c.anchor}) | `{c.name}` | {c.severity_text} | {summary} |")
    out.append("")
    for c in REGISTRY.values():
        out.append(f"## {c.id} {c.name}\n")
        out.append(f"*{c.severity_text}*: {c.summary}\n")
        out.append(f"{c.explanation}\n")
        for title, example in (("Wrong", c.wrong), ("Right", c.right)):
            out.append(f"{title}:\n")
            out.append(f"```{example.lang}\n{example.text}\n```\n")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    which = {"commands": commands, "diagnostics": diagnostics}
    print(which.get(sys.argv[1] if sys.argv[1:] else "", render)(), end="")
