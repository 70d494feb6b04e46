"""What runs in a task's own process, forked warm by the local engine (`nbflow.local.warm`).

The process does what a KFP container does with the task's command: a Python component's
source goes to a file and kfp's executor entry point (`kfp.dsl.executor_main`, as the
container's `python3 -m kfp.dsl.executor_main` runs it) calls its function with the
ExecutorInput; any other container command runs with its placeholders filled in. Before that,
the process becomes its own session (a signal to the run's steps reaches all their children,
and a Ctrl-C in the terminal reaches nbflow only), gets the run's TMPDIR and the task's
environment, and writes its output to the step's log.

Only the standard library is imported here at module level: the forkserver has kfp and IPython
imported already, the worker imports them where it uses them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

_PLACEHOLDER = re.compile(
    r"\{\{\$(?:\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](?:\.(path|uri|output_file))?)?\}\}"
)


def run_task(job: dict[str, Any]) -> None:
    """Entry point of a task's process (the target the engine starts)."""
    os.setsid()
    fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # each line reaches the log as it is printed: `-v` shows it live, and a step killed
    # (out of memory) leaves its output up to the kill, not up to the last full buffer
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    os.environ.update(job["env"])
    container = job["container"]
    executor_input = job["executor_input"]
    command = [_fill(a, executor_input) for a in container.get("command", [])]
    args = [_fill(a, executor_input) for a in container.get("args", [])]
    source = python_component_source(container.get("command", []))
    if source is None:
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable  # this interpreter, as a Python component gets
        sys.stdout.flush()
        os.execvp(command[0], [*command, *args])
    module = os.path.join(job["tmp"], "ephemeral_component.py")
    with open(module, "w", encoding="utf-8") as f:
        f.write(source)
    sys.argv = ["executor_main", "--component_module_path", module, *args]
    from kfp.dsl import executor_main

    executor_main.executor_main()


def python_component_source(command: list[str]) -> str | None:
    """A lightweight Python component's source: the argument after the `sh -ec` script that
    writes it to `ephemeral_component.py` and runs `kfp.dsl.executor_main` on it."""
    for i, part in enumerate(command[:-1]):
        if "kfp.dsl.executor_main" in part and "ephemeral_component.py" in part:
            return command[i + 1]
    return None


def _fill(text: str, executor_input: dict[str, Any]) -> str:
    """KFP's placeholders in a command or argument, as a launcher fills them in."""

    def value(m: re.Match[str]) -> str:
        side, kind, key, _attr = m.groups()
        if side is None:
            return json.dumps(executor_input)
        if side == "inputs" and kind == "parameters":
            v = executor_input["inputs"]["parameterValues"][key]
            return v if isinstance(v, str) else json.dumps(v)
        if side == "outputs" and kind == "parameters":
            return str(executor_input["outputs"]["parameters"][key]["outputFile"])
        art = executor_input[side]["artifacts"][key]["artifacts"][0]
        return str(art["uri"])

    return _PLACEHOLDER.sub(value, text)
