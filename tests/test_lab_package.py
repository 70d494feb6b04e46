"""The `lab` extra's packaging: the committed prebuilt extension is the build of lab/'s
sources, and a wheel installs it and the server extension's config where Jupyter looks."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.support.lab import REPO, SOURCE_HASH, source_hash

LABEXT = REPO / "nbflow" / "lab" / "labextension"


def test_the_prebuilt_extension_is_built_from_the_current_sources() -> None:
    assert SOURCE_HASH.read_text().strip() == source_hash(), (
        "lab/ changed since nbflow/lab/labextension was built: run lab/build.sh and commit it"
    )
    built = json.loads((LABEXT / "package.json").read_text())
    source = json.loads((REPO / "lab" / "package.json").read_text())
    assert built["name"] == source["name"] == "nbflow-lab"
    assert built["dependencies"] == source["dependencies"]
    assert (LABEXT / built["jupyterlab"]["_build"]["load"]).is_file()


def test_a_wheel_installs_the_extension_and_enables_the_server_extension() -> None:
    from nbflow.lab import _jupyter_labextension_paths, _jupyter_server_extension_points

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["data-files"]
    assert data["share/jupyter/labextensions/nbflow-lab"] == [
        "nbflow/lab/labextension/package.json"
    ]
    assert data["share/jupyter/labextensions/nbflow-lab/static"] == [
        "nbflow/lab/labextension/static/*"
    ]
    [enabling] = data["etc/jupyter/jupyter_server_config.d"]
    enabled = json.loads((REPO / enabling).read_text())["ServerApp"]["jpserver_extensions"]
    assert enabled == {"nbflow.lab": True}
    assert _jupyter_server_extension_points() == [{"module": "nbflow.lab"}]
    assert _jupyter_labextension_paths()[0]["dest"] == "nbflow-lab"
    extras = config["project"]["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in extras["lab"])
    assert not any("jupyter" in r for r in config["project"]["dependencies"])


@pytest.mark.slow
def test_an_editable_install_installs_the_extension_too(tmp_path: Path) -> None:
    """`pip install -e ".[lab]"`: setuptools' editable wheel carries the data files only with
    setup.py's workaround (pypa/setuptools#3399)."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from setuptools import build_meta; build_meta.build_editable({str(tmp_path)!r})",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    from nbflow import __version__

    data = f"nbflow-{__version__}.data/data/"
    assert f"{data}share/jupyter/labextensions/nbflow-lab/package.json" in names
    assert f"{data}etc/jupyter/jupyter_server_config.d/nbflow-lab.json" in names
    assert any(
        n.startswith(f"{data}share/jupyter/labextensions/nbflow-lab/static/remoteEntry")
        for n in names
    )
