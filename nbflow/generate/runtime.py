"""The step runtime's source text (``nbflow/incluster/step.py``), as generated components carry it.

``step.py`` is standard-library-only at import time and is embedded as source text into each
generated KFP component (a step image needs no nbflow); :func:`runtime_source` gives that text.
"""

from importlib.resources import files

__all__ = ["runtime_source"]


def runtime_source() -> str:
    """The source text of ``nbflow/incluster/step.py``, as embedded into generated components."""
    return files("nbflow.incluster").joinpath("step.py").read_text(encoding="utf-8")
