"""Every command has a description and every option a help text that gives its default."""

from __future__ import annotations

import argparse

from nbflow.cli.main import parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    todo = [("", parser())]
    while todo:
        prefix, p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sp in action.choices.items():
                    if sp not in out.values():
                        out[f"{prefix}{name}"] = sp
                        todo.append((f"{prefix}{name} ", sp))
    return out


def test_every_command_has_a_description_and_every_option_a_help_with_its_default() -> None:
    missing = []
    for name, p in subcommands().items():
        if not p.description:
            missing.append(f"{name}: no description")
        for a in p._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            label = "/".join(a.option_strings) or a.dest
            if not a.help:
                missing.append(f"{name} {label}: no help")
            elif a.default not in (None, False, argparse.SUPPRESS) and "default" not in a.help:
                missing.append(f"{name} {label}: default {a.default!r} not said")
    assert missing == []
