"""The step runtime: the code that runs inside every pipeline step.

``step.py`` is standard-library-only at import time and is embedded as source text into each
generated KFP component (a step image needs no nbflow); :func:`runtime_source` gives that text.
"""

from importlib.resources import files

__all__ = ["runtime_source"]


def runtime_source() -> str:
    """The source text of ``nbflow/runtime/step.py``, as embedded into generated components."""
    return files(__name__).joinpath("step.py").read_text(encoding="utf-8")
