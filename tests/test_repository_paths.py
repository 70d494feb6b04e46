"""Paths in `--format github` and SARIF are relative to the repository root, wherever nbflow
runs (`cd project && nbflow validate --format github` pointed GitHub at the wrong file)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli

INVALID = Path(__file__).parent / "cases" / "invalid" / "after-unknown"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(INVALID, root / "projects" / "one")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def github_file(out: str) -> str:
    first = out.splitlines()[0]
    return first.split("file=", 1)[1].split(",", 1)[0]


def sarif_uri(out: str) -> str:
    result = json.loads(out)["runs"][0]["results"][0]
    return str(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])


@pytest.mark.parametrize("where", ["projects/one", "projects", "."])
def test_paths_are_relative_to_the_repository_root(
    repo: Path, where: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.chdir(repo / where)
    target = str((repo / "projects" / "one").relative_to(repo / where))
    r = run_cli(capsys, "validate", "--format", "github", target)
    assert github_file(r.out) == "projects/one/nbflow.yaml"
    r = run_cli(capsys, "validate", "--format", "sarif", target)
    assert sarif_uri(r.out) == "projects/one/nbflow.yaml"


def test_github_workspace_is_the_root_in_actions(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(repo / "projects"))
    monkeypatch.chdir(repo / "projects" / "one")
    r = run_cli(capsys, "validate", "--format", "github", ".")
    assert github_file(r.out) == "one/nbflow.yaml"


def test_outside_a_repository_paths_are_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    shutil.copytree(INVALID, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    r = run_cli(capsys, "validate", "--format", "github", ".")
    assert github_file(r.out) == "nbflow.yaml"
