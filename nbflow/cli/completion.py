"""Shell completion for bash, zsh and fish, through argcomplete.

`nbflow completion SHELL` prints the script to source (or to install where the shell looks);
when the shell asks for completions it runs `nbflow` with `_ARGCOMPLETE` set, and `main`
answers from the parser before doing anything else.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["SHELLS", "answer", "cmd_completion", "script"]

SHELLS = ("bash", "zsh", "fish")


def script(shell: str) -> str:
    from argcomplete.shell_integration import shellcode  # the package does not re-export it

    return str(shellcode(["nbflow"], shell=shell))


def answer(parser: argparse.ArgumentParser) -> None:
    """When the shell is asking, print the completions for its command line and exit."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
