"""Data-driven validation cases: tests/cases/{valid,invalid}/<case>/nbflow.yaml.

Expected diagnostics of an invalid case are written inline, as a comment on the offending line
of its manifest (`retires: 2  # expect: NBF101`, several codes separated by spaces), and, for
places a comment can't mark (another file, a line a comment would change), in expected.json
beside it: [{"file": "nbflow.yaml", "line": 4, "code": "NBF002"}] (`"line": null` for a
diagnostic that has no line, such as a manifest that can't be read).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

CASES = Path(__file__).resolve().parent.parent / "cases"
_EXPECT = re.compile(r"#\s*expect:\s*((?:NBF\d{3}\s*)+)")


def case_dirs(kind: str) -> list[Path]:
    return sorted(p for p in (CASES / kind).iterdir() if (p / "nbflow.yaml").exists())


def expected(case: Path) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    # errors="replace": a case may hold a manifest that is not UTF-8 (NBF001)
    text = (case / "nbflow.yaml").read_text(encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _EXPECT.search(line)
        if m:
            out.extend(("nbflow.yaml", lineno, code) for code in m.group(1).split())
    extra = case / "expected.json"
    if extra.exists():
        out.extend((e["file"], e["line"], e["code"]) for e in json.loads(extra.read_text()))
    return sorted(out)
