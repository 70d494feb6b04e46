"""Colour decided in one place (nbflow/console.py): --color, NO_COLOR, FORCE_COLOR, a terminal."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from nbflow.console import rich_console, wants_color
from tests.support.cli import run_cli

INVALID = Path(__file__).parent / "cases" / "invalid" / "after-unknown"
VALID = Path(__file__).parent / "cases" / "valid" / "minimal"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "tty", "choice", "expected"),
    [
        ({}, True, "auto", True),
        ({}, False, "auto", False),
        ({"NO_COLOR": "1"}, True, "auto", False),  # the reported bug: a terminal with NO_COLOR
        ({"NO_COLOR": ""}, True, "auto", True),  # set but empty: no-color.org says ignore it
        ({"FORCE_COLOR": "1"}, False, "auto", True),
        ({"FORCE_COLOR": "0"}, False, "auto", False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, "auto", False),
        ({"TERM": "dumb"}, True, "auto", False),
        ({"NO_COLOR": "1"}, False, "always", True),
        ({"FORCE_COLOR": "1"}, True, "never", False),
    ],
)
def test_wants_color(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, choice: str, expected: bool
) -> None:
    for k in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    stream = Tty() if tty else io.StringIO()
    assert wants_color(stream, choice) is expected
    console = rich_console(stream, choice)
    console.print("[red]x[/red]")
    assert ("\x1b[" in stream.getvalue()) is expected


@pytest.mark.parametrize(
    ("argv", "env", "coloured"),
    [
        (["--color", "always"], {"NO_COLOR": "1"}, True),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {}, False),  # captured output is no terminal
    ],
)
def test_validate_colours_by_the_one_decision_and_restores_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    coloured: bool,
) -> None:
    for k in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = run_cli(capsys, "validate", str(INVALID), *argv)
    assert r.code == 1
    assert ("\x1b[" in r.out) is coloured
    assert {k: os.environ.get(k) for k in ("NO_COLOR", "FORCE_COLOR")} == {
        k: env.get(k) for k in ("NO_COLOR", "FORCE_COLOR")
    }


def test_every_command_takes_color(capsys: pytest.CaptureFixture[str]) -> None:
    from nbflow.cli.main import COMMANDS

    for command in COMMANDS:
        r = run_cli(capsys, command, "--help")
        assert "--color {auto,always,never}" in r.out, command


def test_the_actions_of_a_command_take_color_after_them_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nbflow ci validate --color never` was refused (the option was the command's only); given
    before the action it still counts, and an action's absent option does not reset it."""
    from nbflow.cli.main import parser

    for k in ("GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE", "NBFLOW_PATHS"):
        monkeypatch.delenv(k, raising=False)
    r = run_cli(capsys, "ci", "validate", "--color", "never", str(VALID))
    assert r.code == 0, r.err
    p = parser()
    assert p.parse_args(["ci", "validate", "--color", "always"]).color == "always"
    assert p.parse_args(["ci", "--color", "never", "validate"]).color == "never"
    assert p.parse_args(["ci", "deploy", "--color", "never"]).color == "never"
    assert p.parse_args(["runs", "--color", "always", "list"]).color == "always"
    assert p.parse_args(["runs", "compare", "a", "--color", "never"]).color == "never"
    assert p.parse_args(["ci", "validate"]).color == "auto"
    for command, action in [("ci", "validate"), ("ci", "deploy"), ("runs", "list")]:
        assert "--color {auto,always,never}" in run_cli(capsys, command, action, "--help").out
