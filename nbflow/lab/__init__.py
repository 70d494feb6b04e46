"""nbflow in JupyterLab: a Jupyter server extension over nbflow's library, and the prebuilt
JupyterLab extension (its static files under share/jupyter/labextensions/nbflow-lab) that
shows a notebook's pipeline on its cells and in a side panel.

Installed with the `lab` extra (`pip install "nbflow[lab]"`). This package is the top layer
beside `nbflow.cli`: it imports the library, nothing in the library imports it.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbflow.lab"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "nbflow-lab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from nbflow.lab.handlers import setup_handlers

    setup_handlers(server_app.web_app, server_app.root_dir)
    server_app.log.info("nbflow: JupyterLab extension loaded, API under /nbflow/")
