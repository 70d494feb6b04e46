"""Shell completion (argcomplete): the scripts for bash, zsh and fish, and the answers `nbflow`
gives a shell that asks, run as a subprocess exactly as the shell runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli


def ask(line: str, tmp_path: Path) -> list[str]:
    out = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "nbflow"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return sorted(c.strip() for c in out.read_text().split("\n"))  # one match ends in a space


def test_commands_options_and_choices_complete(tmp_path: Path) -> None:
    assert ask("nbflow ru", tmp_path) == ["run", "runs"]
    assert ask("nbflow validate --format ", tmp_path) == ["github", "json", "sarif", "text"]
    assert "--no-cache" in ask("nbflow run --", tmp_path)
    assert ask("nbflow runs comp", tmp_path) == ["compare"]
    assert {"bash", "fish", "zsh"} <= set(ask("nbflow completion ", tmp_path))


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_it_can_read(
    shell: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    r = run_cli(capsys, "completion", shell)
    assert r.code == 0 and "nbflow" in r.out and "_ARGCOMPLETE" in r.out
    program = shutil.which(shell)
    if program is None:  # fish and zsh are not on every machine: bash always is
        assert shell != "bash"
        return
    script = tmp_path / f"nbflow.{shell}"
    script.write_text(r.out)
    check = (
        [program, "--no-execute", str(script)] if shell == "fish" else [program, "-n", str(script)]
    )
    proc = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
