"""Property tests: mutated manifests and notebooks never crash nbflow (exit 0, 1 or 2, no traceback)."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nbflow.cli.main import main
from tests.support.cases import CASES
from tests.support.fuzz import fuzz_settings

BASE_YAML = (
    (CASES / "valid" / "with-tuning" / "nbflow.yaml")
    .read_text()
    .replace("../../notebooks/base.ipynb", "nb.ipynb")
)
BASE_NB = (CASES / "notebooks" / "base.ipynb").read_text()
SETTINGS = fuzz_settings(60)  # 50 times as many with HYPOTHESIS_PROFILE=long

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
yaml_chars = st.text(alphabet=list("abcdeC:-[]{},#'\"&*!|>%@` \n\t0123456789."), max_size=20)


def _validate(manifest_text: str, notebook_text: str) -> int:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "nbflow.yaml").write_text(manifest_text, encoding="utf-8")
        Path(d, "nb.ipynb").write_text(notebook_text, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", d])
            code_cells = main(["cells", str(Path(d, "nb.ipynb"))])
    assert code in (0, 1, 2), out.getvalue()
    assert code_cells in (0, 2)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code


@SETTINGS
@given(st.integers(0, len(BASE_YAML)), st.integers(0, 30), yaml_chars)
def test_text_mutations_of_manifest(pos: int, cut: int, insert: str) -> None:
    _validate(BASE_YAML[:pos] + insert + BASE_YAML[pos + cut :], BASE_NB)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@SETTINGS
@given(st.data())
def test_structured_mutations_of_manifest(data: st.DataObject) -> None:
    from nbflow.load.yaml_positions import load_text

    doc = load_text(BASE_YAML, "nbflow.yaml").data
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    node = doc
    for p in path[:-1]:
        node = node[p]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        node[path[-1]] = data.draw(json_values)
    elif action == "delete":
        del node[path[-1]]
    elif isinstance(node, dict):
        node[data.draw(st.text(min_size=1, max_size=10))] = data.draw(json_values)
    _validate(json.dumps(doc), BASE_NB)  # JSON is YAML


@SETTINGS
@given(st.data())
def test_mutations_of_notebook(data: st.DataObject) -> None:
    nb = json.loads(BASE_NB)
    action = data.draw(
        st.sampled_from(["source", "drop-cell", "field", "truncate", "tags", "version"])
    )
    if action == "source":
        i = data.draw(st.integers(0, len(nb["cells"]) - 1))
        nb["cells"][i]["source"] = data.draw(
            st.text(max_size=80)
            | st.sampled_from(
                ["%%time\nx = 1", "!ls\ny = !pwd", "def f(:", "from os import *", "del X"]
            )
        )
        text = json.dumps(nb)
    elif action == "drop-cell":
        del nb["cells"][data.draw(st.integers(0, len(nb["cells"]) - 1))]
        text = json.dumps(nb)
    elif action == "field":
        i = data.draw(st.integers(0, len(nb["cells"]) - 1))
        key = data.draw(st.sampled_from(["cell_type", "source", "metadata", "id", "outputs"]))
        nb["cells"][i][key] = data.draw(json_values)
        text = json.dumps(nb)
    elif action == "truncate":
        text = BASE_NB[: data.draw(st.integers(0, len(BASE_NB)))]
    elif action == "tags":
        i = data.draw(st.integers(0, len(nb["cells"]) - 1))
        nb["cells"][i].setdefault("metadata", {})["tags"] = data.draw(
            st.lists(st.sampled_from(["parameters", "x", ""]), max_size=2)
        )
        text = json.dumps(nb)
    else:
        nb["nbformat"] = data.draw(st.integers(-1, 9))
        text = json.dumps(nb)
    _validate(BASE_YAML, text)
