"""nbflow.dataflow.cell_flow: the corpus under tests/analysis_cases/cells, IPython syntax, robustness."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbflow.dataflow.cell_flow import CellFlow, analyse_cell
from nbflow.dataflow.ipython_syntax import fast_transform as _fast_transform
from tests.support.fuzz import fuzz_settings

CASES = Path(__file__).resolve().parent / "analysis_cases"


def load_yaml(path: Path) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def _cell_cases() -> list[Any]:
    out = []
    for path in sorted((CASES / "cells").glob("*.yaml")):
        for case in load_yaml(path):
            out.append(pytest.param(case, id=f"{path.stem}/{case['name']}"))
    return out


def _source(case: dict[str, Any]) -> str:
    if "deep" in case:
        n = int(case["deep"])
        return case["source"] + "(" * n + "1" + ")" * n
    return str(case["source"])


def check_flow(flow: CellFlow, case: dict[str, Any]) -> None:
    assert list(flow.defines) == case.get("defines", []), "defines"
    assert list(flow.reads) == case.get("reads", []), "reads"
    expected_error = case.get("syntax_error")
    if expected_error is None:
        assert flow.syntax_error is None, flow.syntax_error
    else:
        line, part = expected_error
        assert flow.syntax_error is not None
        assert flow.syntax_error[1] == line, flow.syntax_error
        assert part in flow.syntax_error[0], flow.syntax_error
    for key in ("deletes", "imports", "star_imports", "mutations", "optional_reads"):
        if key in case:
            assert list(getattr(flow, key)) == case[key], key
    for key in ("functions", "function_writes", "aliases"):
        if key in case:
            got = {k: sorted(v) for k, v in getattr(flow, key).items()}
            assert got == {k: sorted(v) for k, v in case[key].items()}, key
    if "generators" in case:
        assert sorted(flow.generators) == sorted(case["generators"])
    if "calls" in case:
        assert [list(c) for c in flow.calls] == case["calls"]
    for key in ("import_statements", "read_lines", "define_lines"):
        if key in case:
            got = {k: v for k, v in getattr(flow, key).items() if k in case[key]}
            assert got == case[key], key
    if "unmovable" in case:
        assert [f"{u.name}: {u.what} @{u.line}" for u in flow.unmovable] == case["unmovable"]
    if "ipython" in case:
        assert flow.ipython is case["ipython"]


@pytest.mark.parametrize("case", _cell_cases())
def test_cell_case(case: dict[str, Any]) -> None:
    flow = analyse_cell(7, _source(case))
    assert flow.number == 7
    check_flow(flow, case)


def test_corpus_covers_every_construct() -> None:
    names = {p.stem for p in (CASES / "cells").glob("*.yaml")}
    assert {
        "assignments",
        "functions",
        "comprehensions",
        "imports",
        "match",
        "mutations",
        "unmovable",
        "ipython",
        "syntax",
    } <= names
    assert len(_cell_cases()) >= 80


# -- IPython syntax ---------------------------------------------------------------------------

IPYTHON_SOURCES = [
    "%pip install x\nimport a\n",
    "%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n",
    "x = !ls {y} $z\n",
    "x=!ls\n",
    "a, b = !echo 1\n",
    "names = %who_ls\n",
    "r = %timeit -o f(x)\n",
    "!!ls -la\n",
    "!pip install -q pandas\n",
    "df?\n",
    "df.merge??\n",
    "?np.array\n",
    "??np\n",
    "for i in r:\n    !echo {i}\n    %time f(i)\n",
    "%env A=\\\n1\nx = 2\n",
    "%time x = f()\n",
    "%timeit -n 3 f(x)\n",
    "if x:\n    !ls\nelse:\n    %pwd\n",
    "%config InlineBackend.figure_format = 'retina'\n",
]


@pytest.mark.parametrize("source", IPYTHON_SOURCES)
def test_fast_transform_matches_ipython(source: str) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    expected = ast.dump(ast.parse(TransformerManager().transform_cell(source)))
    assert ast.dump(ast.parse(_fast_transform(source))) == expected


def test_magics_do_not_import_ipython() -> None:
    """The usual magics are handled without importing IPython (`nbflow validate` imports none)."""
    cells = [*IPYTHON_SOURCES, "%%time\nx = 1\n", "%%bash\necho hi\n", "x = (\n"]
    code = (
        "import sys\n"
        "from nbflow.dataflow.cell_flow import analyse_cell\n"
        f"for i, s in enumerate({cells!r}):\n"
        "    analyse_cell(i, s)\n"
        "assert 'IPython' not in sys.modules, 'IPython was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ipython_fallback_for_unusual_syntax() -> None:
    # prompts: the small transformer leaves them to IPython
    flow = analyse_cell(1, ">>> a = b\n... \n")
    assert flow.defines == ("a",) and flow.reads == ("b",) and flow.syntax_error is None


# -- robustness -------------------------------------------------------------------------------

FRAGMENTS = [
    "x = 1",
    "y = x + z",
    "def f(a):\n    return a + G",
    "f(2)",
    "class C:\n    def m(self):\n        return H",
    "[i for i in range(3)]",
    "lambda q: q",
    "del x",
    "x += 1",
    "df['a'] = 1",
    "for k in d:\n    pass",
    "with open(p) as fh:\n    pass",
    "try:\n    pass\nexcept E as e:\n    pass",
    "match v:\n    case [a, *b]:\n        pass",
    "from m import *",
    "import numpy as np",
    "%pip install x",
    "%%time",
    "!ls {x}",
    "y = !ls",
    "a = %who_ls",
    "obj?",
    "global g",
    "(n := 3)",
    "    indented = 1",
    "x = (",
    "'''unterminated",
    "\\",
    "async def g():\n    await h()",
    "yield 1",
    "return 2",
    "%%capture out",
    "%time",
    "!",
    "%",
    "?",
    "$",
    "{",
    "\x00",
]


@st.composite
def snippets(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=8))
    return "\n".join(parts)


@fuzz_settings(300)
@given(st.text(max_size=200) | snippets())
def test_analyse_cell_never_raises(source: str) -> None:
    flow = analyse_cell(3, source)
    assert isinstance(flow, CellFlow)
    assert flow.syntax_error is None or flow.syntax_error[1] >= 1
    assert not set(flow.defines) & set(flow.imports)
