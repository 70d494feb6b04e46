"""The REST API of nbflow's Jupyter server extension, under `<base_url>/nbflow/`.

Every handler is authenticated by the Jupyter server (its token or cookie, its XSRF check),
and takes paths relative to the server's root, refusing any that resolve outside it. Errors
are JSON `{"message": ...}` with a 4xx status; no traceback reaches the client.

    GET  project?path=NB            the panel's data (nbflow.lab.view)
    POST project {path, notebook?, manifest?}   the same, for the editor's unsaved content
    POST validate {path, notebook?, manifest?}  its diagnostics alone
    POST edit    {path, cells, target, notebook?, expected?}   move cells (authoring.edit)
    GET  init?path=NB               the `nbflow init` draft, not written
    POST init    {path}             write it
    POST run     {path}             start `nbflow run`; GET run/ID its state
    POST build   {path}             the version `nbflow build` would make
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from nbflow.errors import CommandFailed, EnvironmentProblem, UsageError
from nbflow.lab.runs import LocalRun
from nbflow.lab.view import Paths, find_manifest, project_view


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Base(APIHandler):
    @property
    def root(self) -> Path:
        return Path(self.settings["nbflow_root"]).resolve()

    def resolve(self, rel: Any) -> Path:
        """A path from the client, inside the server's root (else 403)."""
        if not isinstance(rel, str) or not rel or "\x00" in rel:
            raise _Refused(400, "`path` is required: the notebook's path")
        if rel.startswith("/") or Path(rel).is_absolute():
            raise _Refused(403, f"{rel}: paths are relative to the server's root")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            raise _Refused(403, f"{rel} is outside the server's root")
        return path

    def notebook(self, rel: Any) -> Path:
        path = self.resolve(rel)
        if path.suffix != ".ipynb" or not path.is_file():
            raise _Refused(404, f"no notebook at {rel}")
        return path

    def paths(self, rel: Any) -> Paths:
        nb = self.notebook(rel)
        return Paths(self.root, nb, find_manifest(nb))

    def manifest_of(self, rel: Any) -> Paths:
        paths = self.paths(rel)
        if paths.manifest is None:
            raise _Refused(404, f"{rel} has no nbflow.yaml beside it")
        return paths

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise _Refused(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise _Refused(400, "the request body must be a JSON object")
        return data

    async def respond(self, work: Callable[[], Any], status: int = 200) -> None:
        """Run `work` off the event loop (validation and builds take a while) and answer with
        its JSON, or with the error's message."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, work)
        except _Refused as exc:
            return self._error(exc.status, str(exc))
        except (UsageError, EnvironmentProblem, CommandFailed) as exc:
            return self._error(400, str(exc))
        except Exception as exc:  # never a traceback to the client; the server log has it
            self.log.exception("nbflow: %s failed", self.request.path)
            return self._error(500, f"nbflow failed: {type(exc).__name__}: {exc}")
        self.set_status(status)
        self.finish(json.dumps(result, default=str))

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"message": message}))


def _text(value: Any, what: str) -> str | None:
    """An editor's unsaved content: a string, or a notebook as its JSON object."""
    if value is None or isinstance(value, str):
        return value
    if what == "notebook" and isinstance(value, dict):
        return json.dumps(value)
    raise _Refused(400, f"`{what}` must be text")


class ProjectHandler(_Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        rel = self.get_query_argument("path", "")
        await self.respond(lambda: project_view(self.paths(rel)))

    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            body = self.body()
            return project_view(
                self.paths(body.get("path")),
                notebook_text=_text(body.get("notebook"), "notebook"),
                manifest_text=_text(body.get("manifest"), "manifest"),
            )

        await self.respond(work)


class ValidateHandler(_Base):
    """`nbflow validate` of what the editor shows: the diagnostics alone."""

    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            body = self.body()
            view = project_view(
                self.manifest_of(body.get("path")),
                notebook_text=_text(body.get("notebook"), "notebook"),
                manifest_text=_text(body.get("manifest"), "manifest"),
            )
            return {"valid": view["valid"], "diagnostics": view["diagnostics"]}

        await self.respond(work)


class EditHandler(_Base):
    @tornado.web.authenticated
    async def post(self) -> None:
        from nbflow.authoring.edit import assign_file, parse_target

        def work() -> Any:
            body = self.body()
            paths = self.manifest_of(body.get("path"))
            cells = body.get("cells")
            if not isinstance(cells, list) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in cells
            ):
                raise _Refused(400, "`cells` must be a list of cell numbers (1-based)")
            target = body.get("target")
            if not isinstance(target, str):
                raise _Refused(400, "`target` must be setup, skip, parameters or step:<name>")
            notebook_text = _text(body.get("notebook"), "notebook")
            assert paths.manifest is not None
            assign_file(
                paths.manifest,
                cells,
                parse_target(target),
                notebook_text=notebook_text,
                expected_text=_text(body.get("expected"), "expected"),
            )
            return project_view(paths, notebook_text=notebook_text)

        await self.respond(work)


class InitHandler(_Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        from nbflow.authoring.init import draft_text

        rel = self.get_query_argument("path", "")
        await self.respond(lambda: {"draft": draft_text(self.notebook(rel))})

    @tornado.web.authenticated
    async def post(self) -> None:
        from nbflow.authoring.init import init

        def work() -> Any:
            body = self.body()
            nb = self.notebook(body.get("path"))
            init(nb)  # refuses (UsageError) when a manifest is already there
            return project_view(Paths(self.root, nb, find_manifest(nb)))

        await self.respond(work, status=201)


class RunHandler(_Base):
    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            from nbflow.check.validate import validate_manifest

            paths = self.manifest_of(self.body().get("path"))
            assert paths.manifest is not None
            _, project = validate_manifest(paths.manifest)
            if project is None or project.plan is None:
                raise _Refused(400, "the pipeline has errors: fix them before running it")
            run = LocalRun(paths.manifest.parent, list(project.plan.names), self.root)
            self.settings["nbflow_runs"][run.id] = run
            return run.state()

        await self.respond(work, status=201)

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        run = self.settings["nbflow_runs"].get(run_id)
        if run is None:
            return self._error(404, f"no run {run_id}")
        self.finish(json.dumps(run.state(), default=str))


class BuildHandler(_Base):
    @tornado.web.authenticated
    async def post(self) -> None:
        def work() -> Any:
            from nbflow import api

            paths = self.manifest_of(self.body().get("path"))
            assert paths.manifest is not None
            try:
                with tempfile.TemporaryDirectory(prefix="nbflow-lab-build-") as out:
                    built = api.build(paths.manifest, out=out)
            except api.InvalidProject:
                raise _Refused(
                    400, "the pipeline has errors: fix them before building it"
                ) from None
            return {
                "pipeline": built.pipeline,
                "version": built.version,
                "versionName": built.version_name,
                "snapshot": built.snapshot.label,
                "warnings": list(built.warnings),
            }

        await self.respond(work)


def setup_handlers(web_app: Any, root: str) -> None:
    web_app.settings["nbflow_root"] = root
    web_app.settings.setdefault("nbflow_runs", {})
    base = url_path_join(web_app.settings["base_url"], "nbflow")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "project"), ProjectHandler),
            (url_path_join(base, "validate"), ValidateHandler),
            (url_path_join(base, "edit"), EditHandler),
            (url_path_join(base, "init"), InitHandler),
            (url_path_join(base, "run"), RunHandler),
            (url_path_join(base, r"run/([0-9a-f]{32})"), RunHandler),
            (url_path_join(base, "build"), BuildHandler),
        ],
    )
