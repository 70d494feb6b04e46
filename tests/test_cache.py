"""nbflow/load/cache.py: code compiled once per machine, and never a reason to fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.load.cache import cache_dir, compiled


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NBFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run(code: object) -> object:
    namespace: dict[str, object] = {}
    exec(code, namespace)  # type: ignore[arg-type]
    return namespace["answer"]


def test_compiled_once_then_read_back(folder: Path) -> None:
    assert run(compiled("thing-1", lambda: "answer = 6 * 7")) == 42
    (written,) = folder.iterdir()
    assert written.name.startswith("thing-1.") and written.suffix == ".code"

    def never() -> str:
        raise AssertionError("the cached code was compiled again")

    assert run(compiled("thing-1", never)) == 42
    assert run(compiled("thing-2", lambda: "answer = 1")) == 1  # another name, another entry
    assert len(list(folder.iterdir())) == 2


def test_a_damaged_entry_is_compiled_again(folder: Path) -> None:
    compiled("thing", lambda: "answer = 1")
    (written,) = folder.iterdir()
    for damage in (b"", b"\x00garbage", written.read_bytes()[:10]):
        written.write_bytes(damage)
        assert run(compiled("thing", lambda: "answer = 2")) == 2
        assert written.read_bytes() not in (b"", damage)


def test_an_unwritable_cache_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NBFLOW_CACHE_DIR", str(blocker / "cache"))
    assert run(compiled("thing", lambda: "answer = 3")) == 3
    assert blocker.read_text() == "not a folder"


def test_where_the_cache_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("NBFLOW_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nbflow"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "nbflow"


def test_the_notebook_schema_validator_is_cached(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastjsonschema

    from nbflow.load import notebook

    notebook._v4_validator.cache_clear()
    try:
        validate = notebook._v4_validator(5)
        assert validate is not None
        (written,) = folder.iterdir()
        assert written.name.startswith("nbformat-v4.5-")
        notebook._v4_validator.cache_clear()
        monkeypatch.setattr(fastjsonschema, "compile_to_code", lambda *a, **k: 1 / 0)
        again = notebook._v4_validator(5)  # read back from the cache
        assert again is not None
        with pytest.raises(fastjsonschema.JsonSchemaException):
            again({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{}]})
        assert len(list(folder.iterdir())) == 1
    finally:
        notebook._v4_validator.cache_clear()
