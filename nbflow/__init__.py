"""nbflow: Jupyter notebooks to Kubeflow Pipelines and Katib, declaratively and through git."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nbflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
