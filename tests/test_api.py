"""The library API returns results and raises, never prints or exits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nbflow import api
from tests.support.cases import CASES

ROOT = Path(__file__).resolve().parent.parent


def test_validate_returns_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = api.validate([CASES / "invalid" / "unknown-tuning-key"])
    assert not report.ok and [d.code for d in report.errors] == ["NBF101"]
    assert capsys.readouterr() == ("", "")


def test_load_raises_with_the_report() -> None:
    with pytest.raises(api.InvalidProject) as info:
        api.load(CASES / "invalid" / "after-unknown")
    assert [d.code for d in info.value.report.errors] == ["NBF301"]
    assert "NBF" not in str(info.value) and "not a step" in str(info.value)


@pytest.mark.slow
def test_build_and_run_the_example(tmp_path: Path) -> None:
    project = tmp_path / "digits"
    shutil.copytree(ROOT / "examples" / "digits", project, ignore=shutil.ignore_patterns(".nbflow"))
    built = api.build(project, out=tmp_path / "dist")
    assert (built.folder / "pipeline.yaml").is_file() and built.version_name.startswith("digits-")
    result = api.run(project, parameters={"C": 10.0})
    assert result.ok and result.parameters["C"] == 10.0
    assert 0.9 < result.metrics["accuracy"] <= 1.0
