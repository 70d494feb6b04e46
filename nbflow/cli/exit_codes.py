"""The exit codes of `nbflow` (documented in README.md, tested in tests/test_cli.py)."""

EXIT_OK = 0  # success
EXIT_INPUT = 1  # the input has errors, or a run / tuning / apply failed
EXIT_USAGE = 2  # bad usage, or the environment (missing file, dependency or extra; cluster down)
EXIT_INTERNAL = 3  # a bug in nbflow: one line on stderr, never a traceback
EXIT_INTERRUPTED = 130  # Ctrl-C
