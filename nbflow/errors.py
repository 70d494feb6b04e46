"""The few exceptions that become exit codes (see nbflow.cli.main.main)."""


class UsageError(Exception):
    """Bad command-line input or a missing file (exit 2)."""


class EnvironmentProblem(Exception):
    """The environment can't do what was asked (exit 2): a missing dependency, a cluster down."""


class CommandFailed(Exception):
    """A run, tuning or apply failed after it started (exit 1); the message says why."""
