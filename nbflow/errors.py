"""The few exceptions that become exit codes (see nbflow.cli.main.main)."""


class UsageError(Exception):
    """Bad command-line input or a missing file (exit 2)."""


class EnvironmentProblem(Exception):
    """The environment can't do what was asked (exit 2): a missing dependency, a cluster down."""


class CommandFailed(Exception):
    """A run, tuning or apply failed after it started (exit 1); the message says why."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP stopped a command (exit 130); the message says what it stopped.

    A KeyboardInterrupt, so that what cleans up after Ctrl-C cleans up after the others too.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        import signal

        self.signum = signum
        self.signal = signal.Signals(signum).name
        super().__init__(message or f"interrupted by {self.signal}")
