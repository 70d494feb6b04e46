"""Two builds compared (nbflow/deploy/build_diff.py): the facts read from compiled IR, and the
changes from one to the other."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nbflow.deploy.build_diff import compare, facts, find_build
from tests.support.cli import run_cli, run_subprocess

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


# --- nbflow diff --base REF: two revisions of a repository, compiled and compared ------------


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


def _two_commits(root: Path) -> Path:
    """A repository whose second commit gives step `fit` another image and `n` a new default;
    the project `same/` is the same in both."""
    from tests.support.projects import tagged, write_project

    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Test")
    _git(repo, "config", "user.email", "test@example.com")
    cells = ["import math", tagged("n = 2", "parameters"), "x = n * 2", "y = x + 1"]
    manifest = (
        "name: small\nsetup: 1\nsteps:\n  prep: {cells: 3}\n"
        "  fit: {cells: 4, image: 'python:3.11-slim'}\nparameters: {n: 2}\n"
    )
    write_project(repo / "p", cells, manifest)
    write_project(repo / "same", cells, manifest.replace("small", "same"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    text = (repo / "p" / "nbflow.yaml").read_text(encoding="utf-8")
    text = text.replace("python:3.11-slim", "python:3.12-slim").replace("{n: 2}", "{n: 5}")
    (repo / "p" / "nbflow.yaml").write_text(text, encoding="utf-8")
    _git(repo, "commit", "-qam", "a newer image, n = 5")
    return repo


def test_diff_base_reports_the_changed_image_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_commits(tmp_path)
    monkeypatch.chdir(repo)
    text = run_cli(capsys, "diff", "--base", "HEAD~1", "p", "same")
    assert text.code == 0, text.err
    assert text.out.splitlines() == [
        "p/nbflow.yaml (small) against HEAD~1: 2 changes",
        "  parameter n: default 2.0 -> 5.0",  # KFP keeps a number parameter as a float
        '  step fit: image "python:3.11-slim" -> "python:3.12-slim"',
        "same/nbflow.yaml (same) against HEAD~1: no change",
    ]
    doc = json.loads(run_cli(capsys, "diff", "--base", "HEAD~1", "--json", "p").out)
    assert doc["base"] == "HEAD~1"
    (project,) = doc["projects"]
    assert (project["manifest"], project["pipeline"], project["status"]) == (
        "p/nbflow.yaml",
        "small",
        "changed",
    )
    assert project["changes"] == [
        {"kind": "parameter", "name": "n", "what": "default", "old": 2.0, "new": 5.0},
        {
            "kind": "step",
            "name": "fit",
            "what": "image",
            "old": "python:3.11-slim",
            "new": "python:3.12-slim",
        },
    ]
    md = run_cli(capsys, "diff", "--base", "main~1", "--format", "markdown", "p").out
    assert "#### `p/nbflow.yaml` (small) against `main~1`" in md
    assert '| step | `fit` | image | `"python:3.11-slim"` | `"python:3.12-slim"` |' in md
    # the base's worktree is gone, the repository as it was
    assert len(_git(repo, "worktree", "list").splitlines()) == 1
    assert _git(repo, "status", "--porcelain") == ""


def test_diff_base_against_the_same_revision_and_a_new_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_commits(tmp_path)
    shutil.copytree(repo / "same", repo / "fresh")  # not committed: new against any revision
    monkeypatch.chdir(repo / "p")  # paths relative to a folder below the repository's top
    got = run_cli(capsys, "diff", "--base", "HEAD", ".", "../fresh")
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    assert "nbflow.yaml (small) against HEAD: no change" in lines
    assert lines[0] == "../fresh/nbflow.yaml (same) against HEAD: a new pipeline"
    assert "  step fit: added" in lines and "  parameter n: added (2.0)" in lines


def test_diff_base_refuses_what_is_not_a_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_commits(tmp_path)
    monkeypatch.chdir(repo)
    for ref in ("no-such-branch", "--output=/tmp/x", "HEAD~9", "a b"):
        got = run_cli(capsys, "diff", f"--base={ref}", "p")
        assert got.code == 2, (ref, got.err)
        assert "is not a revision" in got.err and "Traceback" not in got.err
        assert got.out == ""
    got = run_cli(capsys, "diff", "--base", "origin/main", "p")  # no remote: fetching fails
    assert got.code == 2 and "`origin/main` is not a revision" in got.err
    assert "(git fetch origin main: " in got.err
    got = run_cli(capsys, "diff", "--base", "HEAD~1", "--namespace", "x", "p")
    assert got.code == 2 and "--base compares two builds, no cluster: drop --namespace" in got.err
    outside = tmp_path / "outside"
    shutil.copytree(repo / "p", outside)
    monkeypatch.chdir(outside)
    got = run_cli(capsys, "diff", "--base", "HEAD", ".")
    assert got.code == 2 and "is not in a git repository" in got.err
    assert len(_git(repo, "worktree", "list").splitlines()) == 1


def test_diff_base_fails_a_project_with_errors_on_either_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_commits(tmp_path)
    monkeypatch.chdir(repo)
    broken = repo / "same" / "nbflow.yaml"
    broken.write_text(broken.read_text(encoding="utf-8") + "paralelTrials: 2\n", encoding="utf-8")
    got = run_cli(capsys, "diff", "--base", "HEAD~1", "p", "same")
    assert got.code == 1, got.err
    assert "p/nbflow.yaml (small) against HEAD~1: 2 changes" in got.out
    assert "same/nbflow.yaml against HEAD~1: not compared: 1 error in the manifest" in got.out
    assert "NBF101" in got.err  # its diagnostics, as `nbflow validate` shows them


@pytest.mark.slow
def test_diff_base_as_a_subprocess(tmp_path: Path) -> None:
    repo = _two_commits(tmp_path)
    got = run_subprocess("diff", "--base", "main~1", "--", "p", cwd=repo)
    assert got.code == 0, got.err
    assert "  parameter n: default 2.0 -> 5.0" in got.out
    bad = run_subprocess("diff", "--base", "nope", "p", cwd=repo)
    assert bad.code == 2 and bad.err.startswith("nbflow: `nope` is not a revision"), bad.err


def test_diff_base_fails_a_project_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_commits(tmp_path)
    shutil.copytree(repo / "same", tmp_path / "elsewhere")
    monkeypatch.chdir(repo)
    got = run_cli(capsys, "diff", "--base", "HEAD~1", "p", str(tmp_path / "elsewhere"))
    assert got.code == 1, got.err
    assert "is outside the repository at" in got.out and "Traceback" not in got.err
    assert "p/nbflow.yaml (small) against HEAD~1: 2 changes" in got.out


def test_diff_base_without_the_compiler_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    repo = _two_commits(tmp_path)
    monkeypatch.chdir(repo)
    monkeypatch.setitem(sys.modules, "kfp", None)  # as in an install without kfp
    got = run_cli(capsys, "diff", "--base", "HEAD~1", "p")
    assert got.code == 2, got.err  # the CLI asks for the extra before doing anything
    assert got.err == (
        "nbflow: `nbflow diff --base` needs the 'build' extra (kfp is not installed): "
        "pip install 'nbflow[build]'\n"
    )
    # the library, which `nbflow ci validate` calls without that check, says it per project
    from nbflow.deploy.base_tree import base_tree
    from nbflow.deploy.build_diff import diff_project

    with base_tree("HEAD~1", repo) as base:
        result = diff_project(repo / "p" / "nbflow.yaml", base)
    assert result.status == "failed"
    assert result.error == "compiling the pipeline needs `kfp`, which is not installed"
