"""Only for editable installs' data files; everything else is in pyproject.toml.

setuptools' editable wheel installs the data files (the JupyterLab extension and the server
extension's config of the `lab` extra, the workflow templates) only when the distribution
answers `has_data()`, a method its Distribution lacks (pypa/setuptools#3399), so that
`pip install -e ".[lab]"` would leave JupyterLab without the extension. A wheel is unaffected.
"""

from setuptools import setup
from setuptools.dist import Distribution


class _Distribution(Distribution):
    def has_data(self) -> bool:
        return self.has_data_files()


setup(distclass=_Distribution)
