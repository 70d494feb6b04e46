"""Shell completion (argcomplete): the scripts for bash, zsh and fish, and the answers `nbflow`
gives a shell that asks, run as a subprocess exactly as the shell runs it; then each script
sourced into its real shell, which asks `nbflow` (a wrapper on PATH) as it would at a prompt.

bash, zsh and fish are apt packages (`.ci/run` installs them). Without one, its tests are
skipped, unless NBFLOW_REQUIRE_SHELLS is set (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli

REPO = Path(__file__).resolve().parents[1]
FORMATS = ["github", "json", "sarif", "text"]


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
    assert ask("nbflow validate --format ", tmp_path) == FORMATS
    assert "--no-cache" in ask("nbflow run --", tmp_path)
    assert ask("nbflow runs comp", tmp_path) == ["compare"]
    assert {"bash", "fish", "zsh"} <= set(ask("nbflow completion ", tmp_path))


# --- in the shells themselves -------------------------------------------------------------------


def shell(name: str) -> str:
    program = shutil.which(name)
    if program is None:
        message = f"no {name} here: `.ci/run` installs it (apt-get install {name})"
        if os.environ.get("NBFLOW_REQUIRE_SHELLS"):
            pytest.fail(message)
        pytest.skip(message)
    return program


def script_file(name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    r = run_cli(capsys, "completion", name)
    assert r.code == 0 and "nbflow" in r.out and "_ARGCOMPLETE" in r.out
    path = tmp_path / f"nbflow.{name}"
    path.write_text(r.out, encoding="utf-8")
    return path


def shell_env(tmp_path: Path) -> dict[str, str]:
    """`nbflow` first on PATH (this checkout, this interpreter), and a home of its own so that
    no rc file of the machine's takes part."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "nbflow"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m nbflow "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": pythonpath,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "ZDOTDIR": str(home),
        "TERM": "dumb",
    }


def run_shell(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_it_can_read(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    program = shell(name)
    script = script_file(name, capsys, tmp_path)
    check = (
        [program, "--no-execute", str(script)] if name == "fish" else [program, "-n", str(script)]
    )
    run_shell(check, shell_env(tmp_path))


# bash completes through the function `complete -F` registers: called as readline calls it,
# with the line in COMP_LINE/COMP_POINT/COMP_WORDS/COMP_CWORD, its answer in COMPREPLY.
BASH_ASK = r"""
source "$1"
line=$2
spec=$(complete -p nbflow) || exit 1
function=${spec##*-F }
function=${function%% *}
COMP_LINE=$line
COMP_POINT=${#line}
read -r -a COMP_WORDS <<< "$line"
[[ $line == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
"$function" nbflow "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def test_bash_completes_through_the_function_it_registers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bash = shell("bash")
    script = str(script_file("bash", capsys, tmp_path))
    env = shell_env(tmp_path)

    def complete(line: str) -> list[str]:
        out = run_shell([bash, "--norc", "--noprofile", "-c", BASH_ASK, "-", script, line], env)
        return sorted(c.strip() for c in out.splitlines() if c.strip())

    assert complete("nbflow val") == ["validate"]
    assert complete("nbflow validate --format ") == FORMATS


def test_fish_completes_at_its_prompt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fish = shell("fish")
    script = str(script_file("fish", capsys, tmp_path))
    env = shell_env(tmp_path)

    def complete(line: str) -> list[str]:
        # `complete -C LINE` answers what the prompt would offer for LINE: "candidate\tdescription"
        program = f"source {shlex.quote(script)}; complete -C {shlex.quote(line)}"
        out = run_shell([fish, "--no-config", "-c", program], env)
        return sorted(c.split("\t")[0].strip() for c in out.splitlines() if c.strip())

    assert complete("nbflow val") == ["validate"]
    assert complete("nbflow validate --format ") == FORMATS


# zsh completes only inside its line editor: an interactive zsh on a pseudo-terminal (the zpty
# module) with compinit loaded and the script sourced, as ~/.zshrc would; then the line and a
# Tab are typed. A widget bound to Ctrl-X writes the edited line to a file, and a compadd
# wrapper the matches that the completion function offered.
ZSH_DRIVER = r"""
zmodload zsh/zpty || exit 3
out=$1 script=$2 line=$3
zpty -b z zsh -f -i
zpty -w z "PS1='%% '; autoload -U compinit && compinit -u -D"
zpty -w z "source ${(q)script}"
zpty -w z "compadd() { local -a m; builtin compadd -O m \"\$@\"; print -rl -- \$m >> ${(q)out}.matches; builtin compadd \"\$@\" }"
zpty -w z "dump() { print -r -- \"\$BUFFER\" > ${(q)out}.tmp && mv ${(q)out}.tmp ${(q)out} }; zle -N dump; bindkey '^X' dump"
zpty -w -n z "$line"$'\t\x18'
for i in {1..300}; do [[ -e $out ]] && break; sleep 0.1; done
zpty -d z
[[ -e $out ]]
"""


def test_zsh_completes_in_its_line_editor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    zsh = shell("zsh")
    script = str(script_file("zsh", capsys, tmp_path))
    env = shell_env(tmp_path)
    driver = tmp_path / "drive.zsh"
    driver.write_text(ZSH_DRIVER, encoding="utf-8")

    def complete(line: str, name: str) -> tuple[str, list[str]]:
        out = tmp_path / name
        run_shell([zsh, "-f", str(driver), str(out), script, line], env)
        matches = out.with_name(f"{name}.matches")
        offered = matches.read_text(encoding="utf-8").split() if matches.exists() else []
        return out.read_text(encoding="utf-8").rstrip("\n"), sorted(set(offered))

    assert complete("nbflow val", "one") == ("nbflow validate ", ["validate"])
    line, offered = complete("nbflow validate --format ", "formats")
    assert line == "nbflow validate --format " and offered == FORMATS
