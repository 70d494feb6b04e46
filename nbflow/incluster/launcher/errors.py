"""What every part of the launcher shares: its exit codes, its errors and where progress goes."""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Log = Callable[[str], None]


def log_stderr(message: str) -> None:
    print(f"nbflow-launcher: {message}", file=sys.stderr, flush=True)


class LaunchError(Exception):
    """A problem that ends the launcher with a one-line message and an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(LaunchError):
    """An HTTP error answer (after retries), with its status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, EXIT_USAGE)
        self.status = status


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the run is terminated on the way out."""
