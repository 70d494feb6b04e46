"""`nbflow runs`: list, compare (text and --json) and prune a project's local runs, through the
CLI in-process, on run folders laid out as `nbflow run` writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nbflow.cli.main import EXIT_OK, EXIT_USAGE
from tests.support.cli import run_cli


def make_run(root: Path, run_id: str, **doc: Any) -> Path:
    folder = root / ".nbflow" / "runs" / run_id
    folder.mkdir(parents=True)
    base = {
        "run_dir": str(folder),
        "pipeline": "p",
        "ok": True,
        "parameters": {"lr": 0.1, "epochs": 3},
        "steps": [],
        "metrics": {"accuracy": 0.5, "count": 7.0},
        "seconds": 12.5,
        "started": f"2026-01-0{run_id[-1]}T10:00:00+00:00",
        "status": "succeeded",
    }
    (folder / "run.json").write_text(json.dumps({**base, **doc}))
    return folder


def point_latest(root: Path, run_id: str) -> None:
    latest = root / ".nbflow" / "runs" / "latest"
    if latest.is_symlink():
        latest.unlink()
    latest.symlink_to(run_id)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    make_run(root, "20260101-100000-000001")
    make_run(root, "20260102-100000-000002", parameters={"lr": 0.2, "epochs": 3},
             metrics={"accuracy": 0.75, "count": 7.0}, seconds=75.0)  # fmt: skip
    make_run(root, "20260103-100000-000003", ok=False, status="failed", metrics={})
    point_latest(root, "20260103-100000-000003")
    return root


def test_runs_lists_id_start_status_duration_parameters_metrics(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "runs", "-C", str(project))
    assert r.code == EXIT_OK, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["run", "started", "(UTC)", "status", "duration", "parameters",
                                "metrics"]  # fmt: skip
    assert lines[1].split() == ["20260101-100000-000001", "2026-01-01", "10:00:00", "succeeded",
                                "12.5s", "lr=0.1", "epochs=3", "accuracy=0.5", "count=7"]  # fmt: skip
    assert "1m15.0s" in lines[2] and "lr=0.2" in lines[2]
    assert lines[3].split()[:2] == ["20260103-100000-000003", "*"] and "failed" in lines[3]
    doc = json.loads(run_cli(capsys, "runs", "list", "-C", str(project), "--json").out)
    assert [d["status"] for d in doc] == ["succeeded", "succeeded", "failed"]
    assert doc[1]["metrics"] == {"accuracy": 0.75, "count": 7.0}


def test_options_before_the_action_count_too(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nbflow runs -C PATH list --json` listed `.`: the action's default `-C` replaced the one
    given before it."""
    r = run_cli(capsys, "runs", "-C", str(project), "--json", "list")
    assert r.code == EXIT_OK, r.err
    assert [d["status"] for d in json.loads(r.out)] == ["succeeded", "succeeded", "failed"]
    r = run_cli(capsys, "runs", "-C", str(project), "prune", "--keep", "2")
    assert r.code == EXIT_OK and r.out == "deleted 1 run(s)\n", r.out + r.err


def test_compare_shows_what_changed_as_text_and_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "runs", "compare", "20260101", "20260102", "-C", str(project))
    assert r.code == EXIT_OK, r.err
    assert r.out.splitlines() == [
        "parameter  20260101-100000-000001  20260102-100000-000002  change",
        "lr         0.1                     0.2                     +0.1",
        "",
        "metric    20260101-100000-000001  20260102-100000-000002  change",
        "accuracy  0.5                     0.75                    +0.25",
    ]
    r = run_cli(capsys, "runs", "diff", "latest~2", "latest~1", "-C", str(project), "--json")
    assert json.loads(r.out) == {
        "a": "20260101-100000-000001",
        "b": "20260102-100000-000002",
        "parameters": {"lr": {"old": 0.1, "new": 0.2, "diff": pytest.approx(0.1)}},
        "metrics": {"accuracy": {"old": 0.5, "new": 0.75, "diff": 0.25}},
    }
    # --all keeps the unchanged; a metric the failed run lacks is shown as missing
    r = run_cli(capsys, "runs", "compare", "latest~1", "-C", str(project), "--all", "--json")
    doc = json.loads(r.out)
    assert doc["b"] == "20260103-100000-000003"
    assert doc["parameters"]["epochs"] == {"old": 3, "new": 3, "diff": 0}
    assert doc["metrics"]["accuracy"] == {"old": 0.75, "new": None, "diff": None}


@pytest.mark.parametrize(
    ("ref", "message"),
    [("nope", "no run `nope`"), ("2026010", "names 3 runs"), ("latest~9", "only 3 runs"),
     ("latest~x", "counts runs back")],
)  # fmt: skip
def test_a_bad_run_reference_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str], ref: str, message: str
) -> None:
    r = run_cli(capsys, "runs", "compare", ref, "-C", str(project))
    assert r.code == EXIT_USAGE and message in r.err and "Traceback" not in r.err


def test_prune_keeps_the_newest_and_never_the_latest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    point_latest(project, "20260101-100000-000001")  # latest need not be the newest
    r = run_cli(capsys, "runs", "prune", "--keep", "1", "-C", str(project))
    assert r.code == EXIT_OK and r.out == "deleted 1 run(s)\n"
    left = sorted(p.name for p in (project / ".nbflow" / "runs").iterdir())
    assert left == ["20260101-100000-000001", "20260103-100000-000003", "latest"]
    r = run_cli(capsys, "runs", "prune", "--keep", "0", "-C", str(project), "--json")
    assert json.loads(r.out) == ["20260103-100000-000003"]
    assert run_cli(capsys, "runs", "prune", "--keep", "-1", "-C", str(project)).code == EXIT_USAGE


def test_no_runs_and_a_broken_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "runs", "-C", str(tmp_path))
    assert r.code == EXIT_OK and "no runs in" in r.out
    broken = tmp_path / ".nbflow" / "runs" / "20260101-000000-000000"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text("{not json")
    r = run_cli(capsys, "runs", "-C", str(tmp_path / "nbflow.yaml"))
    assert "unreadable" in r.out


def test_a_run_stopped_by_a_signal_is_listed_as_interrupted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path, "20260104-100000-000004", ok=False, status="failed", interrupted="SIGTERM")
    r = run_cli(capsys, "runs", "-C", str(tmp_path))
    assert "interrupted (SIGTERM)" in r.out.splitlines()[1]
