"""The `lab` extra's packaging: the committed prebuilt extension is the build of lab/'s
sources, and a wheel installs it and the server extension's config where Jupyter looks."""

from __future__ import annotations

import json
import tomllib

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
