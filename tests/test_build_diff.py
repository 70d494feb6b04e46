"""Two builds compared (nbflow/deploy/build_diff.py): the facts read from compiled IR, and the
changes from one to the other."""

from __future__ import annotations

import copy
from pathlib import Path

from nbflow.deploy.build_diff import compare, facts, find_build

GOLDEN = Path(__file__).parent / "golden"


def test_facts_of_a_compiled_pipeline() -> None:
    got = facts((GOLDEN / "digits" / "pipeline.yaml").read_text(encoding="utf-8"))
    assert got["parameters"] == {"C": 1.0, "gamma": 0.001, "test_size": 0.25}
    assert sorted(got["steps"]) == ["evaluate", "load", "preprocess", "train"]
    train = got["steps"]["train"]
    assert train["image"] and train["after"] == ["preprocess"] and train["retries"] == 1
    assert train["cache"] is True


def test_changes_from_base_to_head() -> None:
    base = facts((GOLDEN / "digits" / "pipeline.yaml").read_text(encoding="utf-8"))
    head = copy.deepcopy(base)
    head["parameters"]["C"] = 2.0
    del head["parameters"]["gamma"]
    head["parameters"]["degree"] = 3
    head["steps"]["train"]["image"] = "python:3.12-slim"
    head["steps"]["extra"] = dict(head["steps"].pop("evaluate"))
    shown = [(c.kind, c.name, c.what, c.old, c.new) for c in compare(base, head)]
    assert shown == [
        ("parameter", "C", "default", 1.0, 2.0),
        ("parameter", "degree", "added", None, 3),
        ("parameter", "gamma", "removed", 0.001, None),
        ("step", "evaluate", "removed", None, None),
        ("step", "extra", "added", None, None),
        ("step", "train", "image", base["steps"]["train"]["image"], "python:3.12-slim"),
    ]
    assert compare(base, copy.deepcopy(base)) == []
    assert [c.what for c in compare(None, base)][:1] == ["added"]  # a new pipeline


def test_find_build(tmp_path: Path) -> None:
    assert find_build(tmp_path, "digits") is None
    ir = tmp_path / "digits" / "abcd1234" / "pipeline.yaml"
    ir.parent.mkdir(parents=True)
    ir.write_text("x")
    assert find_build(tmp_path, "digits") == ir
