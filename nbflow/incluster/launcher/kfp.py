"""The KFP v2beta1 REST API: find pipelines, versions and experiments; create, read, end runs."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .errors import ApiError, LaunchError
from .http import HttpClient, one_line

DEFAULT_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
# The kfp SDK's convention (kfp.client.KF_PIPELINES_SA_TOKEN_PATH and its env variable), which
# Kubeflow's `access-ml-pipeline` PodDefault follows; the second path is a shorter alternative.
TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
TOKEN_PATHS = ("/var/run/secrets/kubeflow/pipelines/token", "/var/run/secrets/kfp/token")

FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"})
UNSPECIFIED = "RUNTIME_STATE_UNSPECIFIED"  # omitted from the JSON: KFP does not emit zero values


def default_token_path() -> str | None:
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return from_env
    for path in TOKEN_PATHS:
        if os.path.exists(path):
            return path
    return TOKEN_PATHS[0]


def _filter(key: str, value: str) -> str:
    # A v2beta1 Filter as JSON (protojson accepts the proto field names).
    predicate = {"key": key, "operation": "EQUALS", "string_value": value}
    return json.dumps({"predicates": [predicate]}, separators=(",", ":"))


class KfpClient:
    """The KFP v2beta1 REST calls the launcher needs."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def _find(
        self, path: str, items_key: str, name: str, query: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        # `name` is the resource's name (for Kubernetes-stored pipelines, metadata.name or
        # spec.versionName); `display_name` what the UI shows. Try both, name first.
        for key in ("name", "display_name"):
            data = self.http.json("GET", path, query={**query, "filter": _filter(key, name)})
            found = [item for item in data.get(items_key) or [] if isinstance(item, dict)]
            if found:
                return found
        return []

    def resolve_pipeline(self, name: str, namespace: str | None) -> str:
        """The id of the pipeline called `name`, in `namespace` first, then among shared ones."""
        scopes: list[dict[str, str]] = [{"namespace": namespace}] if namespace else []
        scopes.append({})
        for query in scopes:
            try:
                found = self._find("/apis/v2beta1/pipelines", "pipelines", name, query)
            except ApiError as error:
                if query or error.status != 400:
                    raise
                found = []  # multi-user KFP refuses to list without a namespace
            if len(found) > 1:
                raise LaunchError(f"{len(found)} pipelines are called `{name}`: pass --pipeline-id")
            if found:
                return str(found[0]["pipeline_id"])
        where = f" in namespace `{namespace}` or shared" if namespace else ""
        raise LaunchError(f"no pipeline called `{name}`{where}")

    def resolve_version(self, pipeline_id: str, name: str) -> str:
        """The id of the version called `name` of pipeline `pipeline_id`."""
        path = f"/apis/v2beta1/pipelines/{urllib.parse.quote(pipeline_id, safe='')}/versions"
        found = self._find(path, "pipeline_versions", name, {})
        if len(found) > 1:
            raise LaunchError(f"{len(found)} versions are called `{name}`: pass --version-id")
        if not found:
            raise LaunchError(f"pipeline {pipeline_id} has no version called `{name}`")
        return str(found[0]["pipeline_version_id"])

    def resolve_experiment(self, name: str, namespace: str | None) -> str:
        """The id of the experiment called `name`, created when there is none."""
        query = {"namespace": namespace} if namespace else {}
        path = "/apis/v2beta1/experiments"
        for attempt in range(2):
            data = self.http.json(
                "GET", path, query={**query, "filter": _filter("display_name", name)}
            )
            found = data.get("experiments") or []
            if found:
                return str(found[0]["experiment_id"])
            if attempt:
                break
            body = {"display_name": name, **query}
            try:
                return str(self.http.json("POST", path, body=body)["experiment_id"])
            except ApiError as error:
                if error.status != 409:  # 409: a parallel trial created it first
                    raise
            except KeyError:
                break
        raise LaunchError(f"cannot find or create experiment `{name}`")

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        path = f"/apis/v2beta1/experiments/{urllib.parse.quote(experiment_id, safe='')}"
        return self.http.json("GET", path)

    def create_run(
        self,
        *,
        display_name: str,
        pipeline_id: str,
        version_id: str | None,
        parameters: Mapping[str, Any],
        experiment_id: str | None,
    ) -> dict[str, Any]:
        reference = {"pipeline_id": pipeline_id}
        if version_id:
            reference["pipeline_version_id"] = version_id
        body: dict[str, Any] = {
            "display_name": display_name,
            "pipeline_version_reference": reference,
            "runtime_config": {"parameters": dict(parameters)},
        }
        if experiment_id:
            body["experiment_id"] = experiment_id
        run = self.http.json("POST", "/apis/v2beta1/runs", body=body)
        if not run.get("run_id"):
            raise LaunchError("KFP API created a run but returned no run_id")
        return run

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.http.json("GET", f"/apis/v2beta1/runs/{urllib.parse.quote(run_id, safe='')}")

    def terminate_run(self, run_id: str, *, retry: bool = True) -> None:
        path = f"/apis/v2beta1/runs/{urllib.parse.quote(run_id, safe='')}:terminate"
        self.http.request("POST", path, retry=retry)


def run_state(run: Mapping[str, Any]) -> str:
    """The run's state; KFP omits RUNTIME_STATE_UNSPECIFIED (a zero value) from its JSON."""
    state = run.get("state")
    return state if isinstance(state, str) and state else UNSPECIFIED


def failure_summary(run: Mapping[str, Any]) -> str:
    """The run's error message and its failed tasks, for a one-line report."""
    parts: list[str] = []
    error = run.get("error")
    if isinstance(error, dict) and error.get("message"):
        parts.append(one_line(str(error["message"]), 200))
    for status in reversed(run.get("state_history") or []):
        if isinstance(status, dict) and isinstance(status.get("error"), dict):
            message = status["error"].get("message")
            if message and not parts:
                parts.append(one_line(str(message), 200))
    details = run.get("run_details") or {}
    failed: list[str] = []
    for task in details.get("task_details") or []:
        name = task.get("display_name") if isinstance(task, dict) else None
        if name and task.get("state") == "FAILED" and name not in failed:
            failed.append(str(name))
    if failed:
        parts.append("failed tasks: " + ", ".join(failed[:8]))
    return "; ".join(parts)
