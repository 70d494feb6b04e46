"""nbflow.lab's server extension: its REST API on a real Jupyter server (pytest-jupyter's
jp_fetch), authenticated, confined to the server's root."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.support.projects import (
    DEMO_CELLS,
    DEMO_MANIFEST,
    manifest_text,
    notebook_json,
    write_project,
)

pytest_plugins = ["pytest_jupyter.jupyter_server"]

CELLS = DEMO_CELLS
MANIFEST = DEMO_MANIFEST


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"nbflow.lab": True}}}


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    return write_project(jp_root_dir / "demo", CELLS, MANIFEST)


async def _json(fetch: Any, *parts: str, **kwargs: Any) -> Any:
    if "body" in kwargs and not isinstance(kwargs["body"], str):
        kwargs["body"] = json.dumps(kwargs["body"])
        kwargs.setdefault("method", "POST")
    response = await fetch("nbflow", *parts, **kwargs)
    return json.loads(response.body)


async def _status(fetch: Any, *parts: str, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as caught:
        await _json(fetch, *parts, **kwargs)
    response = caught.value.response
    assert response is not None
    return caught.value.code, json.loads(response.body)["message"]


async def test_project_gives_owners_steps_in_dag_order_edges_and_declarations(
    jp_fetch: Any, project: Path
) -> None:
    view = await _json(jp_fetch, "project", params={"path": "demo/nb.ipynb"})
    assert view["manifest"] == "demo/nbflow.yaml" and view["valid"] is True
    assert [c["owner"] for c in view["cells"]] == [
        "setup", "", "parameters", "step:load", "step:load", "step:fit", "skip",
    ]  # fmt: skip
    assert view["cells"][3] == {"index": 3, "number": 4, "id": "cell-4", "owner": "step:load"}
    assert [(s["name"], s["range"]) for s in view["steps"]] == [("load", "4-5"), ("fit", "6")]
    assert view["edges"] == [{"from": "load", "to": "fit", "variables": ["ys"], "afterOnly": False}]
    assert view["parameters"][0]["name"] == "n"
    assert view["metrics"] == [{"name": "total", "goal": "maximize", "description": None}]


async def test_validate_uses_the_unsaved_notebook_and_points_at_the_cell(
    jp_fetch: Any, project: Path
) -> None:
    on_screen = notebook_json([*CELLS[:5], "total = sum(zs)", CELLS[6]])
    view = await _json(jp_fetch, "project", body={"path": "demo/nb.ipynb", "notebook": on_screen})
    assert view["valid"] is False
    [d] = [d for d in view["diagnostics"] if d["severity"] == "error"]
    # reported at the step in the manifest, about cell 6 of the notebook
    assert (d["target"], d["file"], d["line"]) == ("manifest", "demo/nbflow.yaml", 8)  # `fit:`
    assert d["cells"] == [6] and "zs" in d["message"] and d["hint"]
    # the badges stay while the pipeline has errors
    assert view["cells"][5]["owner"] == "step:fit"
    # a broken manifest on screen points at its own line
    broken = manifest_text(MANIFEST.replace("cells: 6", "cells: 60"))
    view = await _json(jp_fetch, "project", body={"path": "demo/nb.ipynb", "manifest": broken})
    [d] = [d for d in view["diagnostics"] if d["severity"] == "error"]
    assert (d["target"], d["file"], d["line"]) == ("manifest", "demo/nbflow.yaml", 9)
    assert d["hint"]


async def test_edit_writes_the_manifest_through_the_library(jp_fetch: Any, project: Path) -> None:
    before = (project / "nbflow.yaml").read_text()
    view = await _json(
        jp_fetch,
        "edit",
        body={
            "path": "demo/nb.ipynb",
            "cells": [5],
            "target": "step:transform",
            "expected": before,
        },
    )
    text = (project / "nbflow.yaml").read_text()
    assert "    cells: 4    # the data\n  transform:\n    cells: 5\n  fit:\n" in text
    assert view["manifestText"] == text
    assert [s["name"] for s in view["steps"]] == ["load", "transform", "fit"]
    # an edit against a manifest that changed since the client read it loses nothing
    code, message = await _status(
        jp_fetch, "edit",
        body={"path": "demo/nb.ipynb", "cells": [4], "target": "skip", "expected": before},
    )  # fmt: skip
    assert code == 400 and "changed on disk" in message
    assert (project / "nbflow.yaml").read_text() == text
    code, message = await _status(
        jp_fetch, "edit", body={"path": "demo/nb.ipynb", "cells": [4], "target": "step:Bad"}
    )
    assert code == 400 and "DNS-1123" in message


async def test_paths_outside_the_root_are_refused(jp_fetch: Any, project: Path) -> None:
    outside = project.parent.parent / "elsewhere"
    write_project(outside, CELLS, MANIFEST)
    for path in (
        "../elsewhere/nb.ipynb",
        str(outside / "nb.ipynb"),
        "demo/../../elsewhere/nb.ipynb",
    ):
        code, _ = await _status(jp_fetch, "project", params={"path": path})
        assert code == 403, path
    code, _ = await _status(jp_fetch, "project", params={"path": "demo/missing.ipynb"})
    assert code == 404
    (project / "link.ipynb").symlink_to(outside / "nb.ipynb")
    code, _ = await _status(jp_fetch, "project", params={"path": "demo/link.ipynb"})
    assert code == 403


async def test_the_api_needs_the_servers_token(jp_fetch: Any, project: Path) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            "nbflow", "project", params={"path": "demo/nb.ipynb"}, headers={"Authorization": ""}
        )
    assert caught.value.code == 403
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            "nbflow", "edit", method="POST", headers={"Authorization": ""},
            body=json.dumps({"path": "demo/nb.ipynb", "cells": [4], "target": "skip"}),
        )  # fmt: skip
    assert caught.value.code == 403
    assert "skip: [7]" in (project / "nbflow.yaml").read_text()


async def test_init_previews_the_draft_then_writes_it(jp_fetch: Any, jp_root_dir: Path) -> None:
    from tests.support.projects import write_notebook

    (jp_root_dir / "fresh").mkdir()
    write_notebook(jp_root_dir / "fresh" / "analysis.ipynb", ["x = 1", "y = x * 2"])
    view = await _json(jp_fetch, "project", params={"path": "fresh/analysis.ipynb"})
    assert view["manifest"] is None
    draft = (await _json(jp_fetch, "init", params={"path": "fresh/analysis.ipynb"}))["draft"]
    assert "name: analysis" in draft and not (jp_root_dir / "fresh" / "nbflow.yaml").exists()
    view = await _json(jp_fetch, "init", body={"path": "fresh/analysis.ipynb"})
    assert (jp_root_dir / "fresh" / "nbflow.yaml").read_text() == draft
    assert view["manifest"] == "fresh/nbflow.yaml"
    code, message = await _status(jp_fetch, "init", body={"path": "fresh/analysis.ipynb"})
    assert code == 400 and "already exists" in message


async def test_errors_are_json_messages_not_tracebacks(jp_fetch: Any, project: Path) -> None:
    code, message = await _status(jp_fetch, "edit", body={"path": "demo/nb.ipynb"})
    assert code == 400 and "cells" in message
    response = None
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("nbflow", "project", method="POST", body="{not json")
    response = caught.value.response
    assert caught.value.code == 400 and response is not None
    assert "Traceback" not in response.body.decode()


@pytest.mark.slow
async def test_run_reports_each_step_until_it_succeeds(jp_fetch: Any, project: Path) -> None:
    state = await _json(jp_fetch, "run", body={"path": "demo/nb.ipynb"})
    assert state["state"] == "running"
    assert [s["name"] for s in state["steps"]] == ["load", "fit"]
    for _ in range(600):
        state = await _json(jp_fetch, "run", state["id"])
        if state["state"] != "running":
            break
        await asyncio.sleep(0.5)
    assert state["state"] == "succeeded", state["output"]
    assert [s["status"] for s in state["steps"]] == ["succeeded", "succeeded"]
    assert state["metrics"]["total"] == pytest.approx(1 + 2**0.5)
    assert state["runFolder"].startswith("demo/.nbflow/runs/")
    assert set(state["reports"]) == {"load", "fit"}


@pytest.mark.slow
async def test_build_shows_the_version_without_writing_dist(jp_fetch: Any, project: Path) -> None:
    built = await _json(jp_fetch, "build", body={"path": "demo/nb.ipynb"}, request_timeout=120)
    assert built["pipeline"] == "demo" and len(built["version"]) == 8
    assert built["versionName"] == f"demo-{built['version']}"
    assert not (project / "dist").exists()


async def test_a_typo_in_the_manifest_keeps_the_badges_and_steps(
    jp_fetch: Any, project: Path
) -> None:
    typo = manifest_text(MANIFEST) + "retries: 1\n"
    view = await _json(jp_fetch, "project", body={"path": "demo/nb.ipynb", "manifest": typo})
    assert view["valid"] is False and view["name"] == "demo"
    assert [d["message"] for d in view["diagnostics"]] == ["unknown key `retries`"]
    assert [s["name"] for s in view["steps"]] == ["load", "fit"]
    assert view["cells"][5]["owner"] == "step:fit"


def test_progress_lines_of_nbflow_run_give_step_status() -> None:
    from nbflow.lab.runs import parse_progress

    steps = {"load", "fit"}
    assert parse_progress("  ▶ load  running", steps) == ("load", "running")
    assert parse_progress("  ✓ fit   0.52 s", steps) == ("fit", "succeeded")
    assert parse_progress("  = load  cached", steps) == ("load", "cached")  # ASCII marks
    assert parse_progress("  ✗ fit   failed after 1.00 s", steps) == ("fit", "failed")
    assert parse_progress("      ValueError: boom", steps) is None
    assert parse_progress("  ✓ other  1 s", steps) is None
    assert parse_progress("nbflow run demo: 2 steps", steps) is None


async def test_a_project_with_errors_is_not_run_or_built(jp_fetch: Any, project: Path) -> None:
    manifest = project / "nbflow.yaml"
    manifest.write_text(manifest.read_text().replace("cells: 6", "cells: 60"))
    for endpoint in ("run", "build"):
        code, message = await _status(jp_fetch, endpoint, body={"path": "demo/nb.ipynb"})
        assert code == 400 and "errors" in message, endpoint
    code, _ = await _status(jp_fetch, "run", "0" * 32)
    assert code == 404


@pytest.mark.slow
async def test_a_failing_step_fails_the_run_with_its_error(
    jp_fetch: Any, jp_root_dir: Path
) -> None:
    cells = [*CELLS[:5], "total = sum(ys)\nraise ValueError('boom')", CELLS[6]]
    write_project(jp_root_dir / "demo", cells, MANIFEST)
    state = await _json(jp_fetch, "run", body={"path": "demo/nb.ipynb"})
    for _ in range(600):
        state = await _json(jp_fetch, "run", state["id"])
        if state["state"] != "running":
            break
        await asyncio.sleep(0.5)
    assert state["state"] == "failed"
    assert [s["status"] for s in state["steps"]] == ["succeeded", "failed"]
    assert "boom" in state["output"]


async def test_validate_gives_the_diagnostics_of_what_is_on_screen(
    jp_fetch: Any, project: Path
) -> None:
    result = await _json(jp_fetch, "validate", body={"path": "demo/nb.ipynb"})
    assert result == {"valid": True, "diagnostics": []}
    on_screen = manifest_text(MANIFEST).replace("skip: [7]", "skip: [70]")
    result = await _json(
        jp_fetch, "validate", body={"path": "demo/nb.ipynb", "manifest": on_screen}
    )
    assert result["valid"] is False
    assert "cell 70 does not exist" in result["diagnostics"][0]["message"]
