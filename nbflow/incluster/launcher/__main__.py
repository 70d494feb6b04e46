"""``python -m nbflow.incluster.launcher``, and ``python /app/launcher`` in the launcher image.

Python runs a directory that holds a ``__main__.py`` as a script: it puts the directory itself
first on ``sys.path`` and imports this file as a top-level module, not as part of a package, so
relative imports fail there, and ``http.py`` would shadow the standard library's ``http``. Then
the directory's parent takes its place on ``sys.path`` and the package is imported by its
directory's name: the same modules, the same behaviour, whatever the directory is called.
"""

from __future__ import annotations

import sys


def _entry() -> int:
    if __package__:  # python -m nbflow.incluster.launcher
        from .cli import entry

        return entry()
    import importlib
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[0] = os.path.dirname(here)
    cli = importlib.import_module(f"{os.path.basename(here)}.cli")
    code: int = cli.entry()
    return code


if __name__ == "__main__":
    sys.exit(_entry())
