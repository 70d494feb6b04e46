"""Notebook loading: the fast path (nbformat's schema checked without importing nbformat) reads
exactly what nbformat.reads would, and hands everything else to nbformat."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import strategies as st

from nbflow.load import notebook
from nbflow.load.notebook import Notebook, NotebookError, load_notebook
from tests.support.fuzz import fuzz_settings

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    p for p in REPO.glob("**/*.ipynb") if not {".venv", ".git", ".nbflow", "dist"} & set(p.parts)
)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None  # a corrupt case: only nbformat's path reads it (and reports it)


def through_nbformat(path: Path, monkeypatch: pytest.MonkeyPatch) -> Notebook | str:
    with monkeypatch.context() as m:
        m.setattr(notebook, "_plainly_valid_v4", lambda raw: False)
        return load(path)


def load(path: Path) -> Notebook | str:
    try:
        return load_notebook(path, path.name)
    except NotebookError as exc:
        return exc.diagnostic.code


def test_there_are_notebooks_to_compare() -> None:
    fast = [
        p for p in NOTEBOOKS if isinstance(_json(p), dict) and notebook._plainly_valid_v4(_json(p))
    ]
    assert len(fast) >= 10


@pytest.mark.parametrize(
    "path",
    [p for p in NOTEBOOKS if isinstance(_json(p), dict) and notebook._plainly_valid_v4(_json(p))],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_fast_path_reads_what_nbformat_reads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(path) == through_nbformat(path, monkeypatch)


def test_the_examples_take_the_fast_path() -> None:
    for name in ("digits", "sales", "digits-torch"):
        folder = REPO / "examples" / name
        (path,) = folder.glob("*.ipynb")
        assert notebook._plainly_valid_v4(json.loads(path.read_text(encoding="utf-8"))), path


def _nb(minor: int, cells: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": minor, "metadata": metadata, "cells": cells}


def _code(source: Any, **extra: Any) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "source": source,
        "metadata": {},
        "outputs": [],
        "execution_count": None,
        **extra,
    }


@pytest.mark.parametrize(
    "raw, fast",
    [
        (_nb(4, [_code("x = 1")]), True),  # 4.4 has no ids
        # the shipped validators of the older minor versions (nbflow/load/nbformat_schemas)
        *[
            (_nb(m, [{"cell_type": "markdown", "source": "# t", "metadata": {}}, _code("x")]), True)
            for m in range(4)
        ],
        (_nb(5, [_code(["x = 1\n", "y = 2"], id="a"), _code("z", id="b")]), True),
        (_nb(5, [_code("x", id="a"), _code("y", id="a")]), False),  # nbformat repairs duplicates
        (_nb(5, [_code("x")]), False),  # nbformat adds a missing id (a random one)
        (_nb(4, [_code("x", id="a")]), False),  # not in the 4.4 schema
        (_nb(99, [_code("x", id="a")]), False),  # a minor from the future: nbformat relaxes
        (_nb(4, [{"cell_type": "code", "source": "x"}]), False),  # invalid: nbformat reports
        ({**_nb(4, []), "nbformat": 3}, False),
        (
            _nb(
                4,
                [_code("x")],
                signature="sha",
                orig_nbformat=3,
                kernelspec={"name": "python3", "display_name": "Python 3"},
            ),
            True,
        ),
    ],
)
def test_which_notebooks_take_the_fast_path(
    raw: dict[str, Any], fast: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert notebook._plainly_valid_v4(copy.deepcopy(raw)) is fast
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(raw), encoding="utf-8")
    if fast:
        assert load(path) == through_nbformat(path, monkeypatch)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 9) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@fuzz_settings(150, HealthCheck.function_scoped_fixture)
@given(data=st.data())
def test_mutated_notebooks_read_the_same_either_way(
    data: st.DataObject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (digits,) = (REPO / "examples" / "digits").glob("*.ipynb")
    raw = json.loads(digits.read_text(encoding="utf-8"))
    target = data.draw(st.sampled_from(["top", "metadata", "cell", "cell-metadata", "output"]))
    key = data.draw(
        st.sampled_from(
            ["nbformat_minor", "cell_type", "source", "id", "metadata", "outputs", "tags", "x"]
        )
    )
    if target == "top":
        node = raw
    elif target == "metadata":
        node = raw["metadata"]
    else:
        cell = data.draw(st.sampled_from(raw["cells"]))
        node = {"cell": cell, "cell-metadata": cell.setdefault("metadata", {})}.get(target, cell)
        if target == "output" and cell.get("outputs"):
            node = data.draw(st.sampled_from(cell["outputs"]))
    node[key] = data.draw(json_values)
    fast = notebook._plainly_valid_v4(copy.deepcopy(raw))
    event(f"fast path: {fast}")
    if not fast:
        return  # nbformat reads it, as before
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert load(path) == through_nbformat(path, monkeypatch)


# --- the shipped schema validators: no code from a cache folder (issue 12, item 1) ---------------


def test_the_shipped_schema_validators_are_current() -> None:
    from tests.support.nbformat_validators import UPDATE_COMMAND, expected

    stale = [
        str(path.relative_to(REPO))
        for path, text in expected().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"regenerate with `{UPDATE_COMMAND}` and review the diff: {stale}"


def test_a_schema_other_than_the_shipped_one_is_left_to_nbformat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nbflow.load.nbformat_schemas import v4_5

    notebook._v4_validator.cache_clear()
    try:
        assert notebook._v4_validator(5) is v4_5.validate
        notebook._v4_validator.cache_clear()
        monkeypatch.setattr(v4_5, "SCHEMA_SHA256", "0" * 64)  # as if nbformat's file changed
        assert notebook._v4_validator(5) is None
        assert notebook._v4_validator(99) is None  # a minor version nbflow has no module for
    finally:
        notebook._v4_validator.cache_clear()


@pytest.mark.slow
def test_code_planted_in_a_cache_folder_never_runs(tmp_path: Path) -> None:
    """nbflow once ran marshalled code from `$NBFLOW_CACHE_DIR` (else `$XDG_CACHE_HOME/nbflow`,
    else `~/.cache/nbflow`) on every command: one CI job could plant code for the next. Plant
    code under every name that mechanism read, and check that `validate` neither runs it nor
    writes anything there."""
    import hashlib
    import marshal
    import sys

    import fastjsonschema

    from tests.support.cli import run_subprocess
    from tests.support.projects import write_project

    project = write_project(
        tmp_path / "project", ["x = 1"], "name: demo\nsteps:\n  a: {cells: 1}\n"
    )
    marker = tmp_path / "planted-code-ran"
    planted = compile(
        f"open({str(marker)!r}, 'w').close()\ndef validate(data, **kw): return data\n",
        "<planted>",
        "exec",
    )
    import importlib.util

    spec = importlib.util.find_spec("nbformat")
    assert spec is not None and spec.submodule_search_locations
    v4 = Path(spec.submodule_search_locations[0]) / "v4"
    folders = [tmp_path / "cache", tmp_path / "xdg" / "nbflow", tmp_path / "home/.cache/nbflow"]
    for folder in folders:
        folder.mkdir(parents=True)
        for minor in range(6):
            text = (v4 / f"nbformat.v4.{minor}.schema.json").read_text(encoding="utf-8")
            key = hashlib.sha256(f"{fastjsonschema.VERSION}\n{text}".encode()).hexdigest()[:16]
            name = f"nbformat-v4.{minor}-{key}.{sys.implementation.cache_tag}.code"
            (folder / name).write_bytes(marshal.dumps(planted))
    before = {f: sorted(p.name for p in f.iterdir()) for f in folders}
    for env in (
        {"NBFLOW_CACHE_DIR": str(folders[0])},
        {"XDG_CACHE_HOME": str(tmp_path / "xdg")},
        {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": ""},
    ):
        result = run_subprocess("validate", str(project), env=env)
        assert result.code == 0, result.err
        assert not marker.exists(), f"code planted in a cache folder ran ({env})"
    assert {f: sorted(p.name for p in f.iterdir()) for f in folders} == before


def test_no_module_of_nbflow_loads_code_objects() -> None:
    """The mechanism is gone, not just unused: nothing in the package unmarshals code."""
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "nbflow").rglob("*.py")
        if "import marshal" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_a_deeply_nested_notebook_is_a_diagnostic(tmp_path: Path) -> None:
    from nbflow.load.notebook import NotebookError, load_notebook

    for depth in (150, 100_000):  # parseable but too deep; a RecursionError in json.loads
        path = tmp_path / "nb.ipynb"
        path.write_text('{"nbformat": 4, "x": ' + "[" * depth + "]" * depth + "}")
        with pytest.raises(NotebookError) as info:
            load_notebook(path, "nb.ipynb")
        assert info.value.diagnostic.code == "NBF011"
        assert "nested more than 100 levels deep" in info.value.diagnostic.message


def test_a_nul_in_the_notebook_path_is_a_diagnostic(tmp_path: Path) -> None:
    from nbflow.load.notebook import NotebookError, load_notebook

    with pytest.raises(NotebookError) as info:
        load_notebook(tmp_path / "nb\0.ipynb", "nb\0.ipynb")
    assert info.value.diagnostic.code == "NBF005" and "null" in info.value.diagnostic.message


def test_a_number_of_thousands_of_digits_is_a_diagnostic(tmp_path: Path) -> None:
    from nbflow.load.notebook import NotebookError, load_notebook

    path = tmp_path / "nb.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": ' + "9" * 5000 + ', "cells": []}')
    with pytest.raises(NotebookError) as info:  # was a ValueError from json.loads
        load_notebook(path, "nb.ipynb")
    assert info.value.diagnostic.code == "NBF005"
