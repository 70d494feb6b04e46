"""nbflow: Jupyter notebooks to Kubeflow Pipelines and Katib, declaratively and through git."""

# The one place the version is written; pyproject.toml reads it (setuptools dynamic version).
# A literal, not importlib.metadata: that lookup costs ~0.1 s on every command.
__version__ = "0.1.0"

__all__ = ["__version__"]
