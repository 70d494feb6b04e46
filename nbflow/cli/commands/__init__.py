"""The commands of `nbflow` that do more than call one library function: each takes the parsed
arguments, calls the library (which returns results or raises `nbflow.errors`), prints, and
returns the exit code. `nbflow.cli.main` maps the exceptions left to exit codes.
"""
