"""nbflow/load/inputs.py: a path a manifest names is read only when it is a regular file of the
manifest's repository, under a size cap, and no diagnostic quotes a file other than the
manifest or the notebook (issue 12, item 3)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nbflow.load import inputs
from nbflow.load.inputs import InputRefused, read_input, repository_root
from tests.support.cli import run_cli, run_subprocess
from tests.support.projects import write_notebook

SECRET = "s3cr3t-0f-th3-runn3r"
FORMATS = ("text", "json", "github", "sarif")
MANIFEST = """apiVersion: nbflow/v1
name: demo
notebook: {notebook}
image: python:3.11-slim
requirements: {requirements}
steps:
  a: {{cells: 1}}
"""


def repo(tmp_path: Path) -> Path:
    """A git repository holding a project at proj/, with a secret file beside the repository."""
    root = tmp_path / "repo"
    (root / "proj").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write_notebook(root / "proj" / "nb.ipynb", ["x = 1"])
    (root / "proj" / "requirements.txt").write_text("numpy\n")
    (tmp_path / "x").write_text(f"{SECRET}==1\nnot a requirement {SECRET}\n")
    return root / "proj"


def write_manifest(proj: Path, notebook: str = "nb.ipynb", requirements: str = "requirements.txt"):
    (proj / "nbflow.yaml").write_text(MANIFEST.format(notebook=notebook, requirements=requirements))


def fifo(path: Path) -> None:
    os.mkfifo(path)


# Each case: what the field names, how to lay it out (None: nothing to lay out), what the
# message says. Every one is refused before a byte is read.
CASES: dict[str, tuple[str, Callable[[Path], None] | None, str]] = {
    "etc-passwd": ("/etc/passwd", None, "outside the repository"),
    "proc-environ": ("/proc/self/environ", None, "outside the repository"),
    "dot-dot": ("../../x", None, "outside the repository"),
    "symlink-out": (
        "link.txt",
        lambda p: (p / "link.txt").symlink_to(p.parents[1] / "x"),
        "outside",
    ),
    "directory": (
        "folder",
        lambda p: (p / "folder").mkdir(),
        "not a regular file (it is a directory)",
    ),
    "fifo": ("pipe", lambda p: fifo(p / "pipe"), "not a regular file (it is a FIFO)"),
    "dev-zero": ("/dev/zero", None, "outside the repository"),
    "dev-zero-link": ("zero", lambda p: (p / "zero").symlink_to("/dev/zero"), "outside"),
    # refused, not "not found": the answer says nothing of what exists outside the repository
    "missing-outside": ("/root/.ssh/nothing-here", None, "outside the repository"),
}


@pytest.mark.parametrize("field", ["requirements", "notebook"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_path_a_manifest_names_is_confined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, case: str
) -> None:
    named, lay_out, why = CASES[case]
    proj = repo(tmp_path)
    if lay_out is not None:
        lay_out(proj)
    write_manifest(proj, **{field: named})
    for fmt in FORMATS:
        r = run_cli(capsys, "validate", "--format", fmt, str(proj))
        assert r.code == 1, r.err
        assert "NBF013" in r.out and why in r.out, r.out
        assert SECRET not in r.out + r.err and "root:" not in r.out + r.err


def test_the_environment_is_never_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`requirements: /proc/self/environ` once printed the runner's environment, line by line,
    as GitHub annotations: checked in a process whose environment holds a secret, then
    in-process in every format against this process's own environment as the kernel keeps it."""
    proj = repo(tmp_path)
    write_manifest(proj, requirements="/proc/self/environ")
    r = run_subprocess("validate", "--format", "github", str(proj), env={"A_TOKEN": SECRET})
    assert r.code == 1 and "NBF013" in r.out, r.out + r.err
    assert SECRET not in r.out + r.err and "A_TOKEN" not in r.out + r.err
    environ = Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\0")
    entries = [e for e in environ if len(e.partition("=")[2]) >= 8]  # too short to tell apart
    assert entries
    for fmt in FORMATS:
        r = run_cli(capsys, "validate", "--format", fmt, str(proj))
        assert r.code == 1 and "NBF013" in r.out, r.out + r.err
        assert not [e for e in entries if e in r.out + r.err]


def test_a_file_over_the_cap_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = repo(tmp_path)
    (proj / "big.txt").write_text("numpy\n" * (inputs.MIB // 6 + 1))  # just over 1 MiB
    write_manifest(proj, requirements="big.txt")
    r = run_cli(capsys, "validate", str(proj))
    assert r.code == 1 and "NBF013" in r.out and "larger than nbflow reads (1 MiB)" in r.out
    write_manifest(proj)
    monkeypatch.setitem(inputs.LIMITS, "notebook", 10)  # the notebook's cap is 64 MiB
    r = run_cli(capsys, "validate", str(proj))
    assert r.code == 1 and "notebook" in r.out and "larger than nbflow reads" in r.out


def test_a_requirements_file_is_never_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even inside the repository: its lines are named by number, with no code frame."""
    proj = repo(tmp_path)
    (proj / "requirements.txt").write_text(f"numpy\nnot a requirement {SECRET}\n-e {SECRET}\n")
    write_manifest(proj)
    for fmt in FORMATS:
        r = run_cli(capsys, "validate", "--format", fmt, str(proj))
        assert r.code == 1 and "NBF009" in r.out and "line 3" in r.out
        assert SECRET not in r.out
    (proj / "requirements.txt").write_text(f"numpy\nnot a requirement {SECRET}\n")
    for fmt in FORMATS:
        r = run_cli(capsys, "validate", "--format", fmt, str(proj))
        assert r.code == 1 and "NBF608" in r.out and "line 2 of" in r.out
        assert SECRET not in r.out


def test_inside_the_repository_a_manifest_may_reach_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`notebook: ../shared/demo.ipynb` in a repository is fine; outside git, the manifest's
    folder is the limit."""
    proj = repo(tmp_path)
    (proj.parent / "shared").mkdir()
    (proj / "nb.ipynb").rename(proj.parent / "shared" / "demo.ipynb")
    (proj / "link.txt").symlink_to("requirements.txt")  # a symlink inside is followed
    write_manifest(proj, notebook="../shared/demo.ipynb", requirements="link.txt")
    r = run_cli(capsys, "validate", str(proj))
    assert r.code == 0, r.out
    (proj.parent / ".git").rename(proj.parent / "not-git")
    r = run_cli(capsys, "validate", str(proj))
    assert r.code == 1 and "NBF013" in r.out and "demo.ipynb is outside" in r.out


@pytest.mark.parametrize("case", ["symlink-out", "etc-passwd-link", "fifo", "directory"])
def test_the_manifest_itself_is_confined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """An `nbflow.yaml` that is a symlink to a file outside the repository (its YAML error
    would quote it), or a FIFO (a read would wait forever), is refused: first in a subprocess
    with a timeout, so that a hang fails the test rather than the suite, then (nothing hangs)
    in-process in the other formats."""
    proj = repo(tmp_path)
    manifest = proj / "nbflow.yaml"
    if case == "symlink-out":
        manifest.symlink_to(tmp_path / "x")
    elif case == "etc-passwd-link":
        manifest.symlink_to("/etc/passwd")
    elif case == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.mkdir()
    first = run_subprocess("validate", "--format", FORMATS[0], str(manifest), timeout=60)
    others = [run_cli(capsys, "validate", "--format", fmt, str(manifest)) for fmt in FORMATS[1:]]
    for r in [first, *others]:
        assert r.code in (1, 2), r.out + r.err
        assert SECRET not in r.out + r.err and "root:" not in r.out + r.err
        assert "Traceback" not in r.err
        if case != "directory":  # a folder is taken as a project folder, without a manifest
            assert "NBF013" in r.out


def test_a_lock_file_pointing_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = repo(tmp_path)
    write_manifest(proj)
    (tmp_path / "x").write_text(f'{{"notebook": "{SECRET}", "cells": {{}}}}')
    (proj / "nbflow.lock.json").symlink_to(tmp_path / "x")
    r = run_cli(capsys, "validate", str(proj))
    assert r.code == 1 and "NBF013" in r.out and SECRET not in r.out


def test_read_input_checks_what_it_opened(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("ok")
    assert read_input(tmp_path / "a.txt", root=tmp_path, kind="requirements") == b"ok"
    assert read_input(Path("/etc/hostname"), root=None, kind="manifest")  # the operator's file
    with pytest.raises(FileNotFoundError):
        read_input(tmp_path / "missing", root=tmp_path, kind="requirements")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        read_input(tmp_path / "dangling", root=tmp_path, kind="requirements")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(InputRefused, match="cannot be resolved"):
        read_input(tmp_path / "loop", root=tmp_path, kind="requirements")
    with pytest.raises(InputRefused, match="a device"):
        read_input(Path("/dev/zero"), root=None, kind="requirements")


def test_the_repository_root_is_found_along_the_written_path(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo" / "linked").symlink_to(tmp_path / "elsewhere")
    assert repository_root(tmp_path / "repo" / "a" / "b") == (tmp_path / "repo").resolve()
    # a folder of the repository that points elsewhere does not move the root there
    assert repository_root(tmp_path / "repo" / "linked") == (tmp_path / "repo").resolve()
    assert repository_root(tmp_path / "elsewhere") == (tmp_path / "elsewhere").resolve()


def test_a_lock_is_never_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = repo(tmp_path)
    write_manifest(proj)
    (proj / "nbflow.lock.json").write_text(f'{{"notebook": "{SECRET}", "cells": {{}}}}')
    for fmt in FORMATS:
        r = run_cli(capsys, "validate", "--format", fmt, str(proj))
        assert r.code == 1 and "NBF208" in r.out and "locks another notebook" in r.out
        assert SECRET not in r.out
