"""A loopback emulator of the KFP v2beta1 REST API, and of the two Kubernetes calls that read pod logs.

`KfpServer` is a real HTTP server (ThreadingHTTPServer on 127.0.0.1, a free port, one thread),
used as a context manager. It keeps pipelines, versions, experiments, runs and the runs' pods in
memory, and answers what the nbflow trial launcher calls:

    GET  /apis/v2beta1/healthz
    GET  /apis/v2beta1/pipelines?namespace=&filter=            ListPipelines
    GET  /apis/v2beta1/pipelines/{id}/versions?filter=         ListPipelineVersions
    GET  /apis/v2beta1/experiments?namespace=&filter=          ListExperiments
    POST /apis/v2beta1/experiments                             CreateExperiment
    GET  /apis/v2beta1/experiments/{id}                        GetExperiment
    POST /apis/v2beta1/runs                                    CreateRun (body: the Run)
    GET  /apis/v2beta1/runs/{id}                               GetRun
    POST /apis/v2beta1/runs/{id}:terminate                     TerminateRun
    GET  /api/v1/namespaces/{ns}/pods?labelSelector=           core/v1 list pods
    GET  /api/v1/namespaces/{ns}/pods/{name}/log?container=    core/v1 read pod log

Shapes follow KFP 2.17.0's API server, read from its source (backend/src/apiserver/main.go and
common/utils.go: grpc-gateway with protojson `UseProtoNames: true, EmitUnpopulated: false`):
snake_case field names, zero values left out (an empty list answers `{}`, a run in
RUNTIME_STATE_UNSPECIFIED has no `state`), int64 as strings, enums by name, RFC 3339 timestamps;
errors as grpc-gateway writes them, `{"code": <gRPC code>, "message": "..."}` with the matching
HTTP status; unknown fields in a request body are refused (`DiscardUnknown: false`). Task details
are built from Argo nodes (api_converter.go `toModelTasks`): display name, state, times and child
pod names, no `pod_name`, no inputs or outputs. Every pod of a run carries `pipeline/runid`
(template/v2_template.go `SetPodMetadataLabels`) and executor pods the labels the pipeline adds
(kfp-kubernetes `add_pod_label`); logs are those of the `main` container. Kubernetes errors are
`Status` objects.

Scripting, per test: `add_pipeline`/`add_version`/`add_experiment`; `script(RunScript(...))`
queues how the next created run behaves (its states, one per GET; its metrics, printed in the
metrics pod's log; what cancel does); `fail(...)` injects HTTP errors or connection resets, N times
or for ever; `require_token` makes the API answer 401 without that bearer token; `requests`
records what was sent (method, path, query, headers, JSON body).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Fault", "KfpServer", "Recorded", "RunScript", "unused_port"]

FINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"})
# google.rpc.Code -> HTTP status, as grpc-gateway maps them
GRPC_HTTP = {3: 400, 5: 404, 6: 409, 7: 403, 13: 500, 14: 503, 16: 401}
RUN_FIELDS = frozenset(
    [
        "experiment_id",
        "run_id",
        "display_name",
        "storage_state",
        "description",
        "pipeline_version_id",
        "pipeline_spec",
        "pipeline_version_reference",
        "runtime_config",
        "service_account",
        "created_at",
        "scheduled_at",
        "finished_at",
        "state",
        "error",
        "run_details",
        "recurring_run_id",
        "state_history",
        "plugins_input",
        "plugins_output",
    ]
)
EXPERIMENT_FIELDS = frozenset(
    [
        "experiment_id",
        "display_name",
        "description",
        "created_at",
        "namespace",
        "storage_state",
        "last_run_created_at",
    ]
)
EPOCH = "1970-01-01T00:00:00Z"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _timestamp(seconds: float | None = None) -> str:
    return time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if seconds is None else seconds)
    )


def unused_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class RunScript:
    """How one created run behaves.

    states: returned one per GET of the run, the last one repeating.
    metrics: printed as `name=value` in the metrics pod's log; None: no metrics pod (as when the
        metrics step hit the cache); values are written with str(), so strings pass through.
    metrics_labelled: whether the metrics pod carries `nbflow.dev/metrics=true`.
    log_prefix: other lines in the metrics pod's log, before the metrics.
    failed_task: the task shown FAILED when the run fails; error_message: its error.
    cancel_states: what the run goes through after a terminate.
    tasks: the pipeline's task names (Argo node display names).
    """

    states: Sequence[str] = ("PENDING", "RUNNING", "SUCCEEDED")
    metrics: Mapping[str, object] | None = field(default_factory=dict)
    metrics_labelled: bool = True
    log_prefix: str = "I1128 launcher_v2.go:152] executor input\nfitting the model\n"
    failed_task: str | None = None
    error_message: str | None = None
    cancel_states: Sequence[str] = ("CANCELING", "CANCELED")
    tasks: Sequence[str] = ("load", "train", "evaluate")


@dataclass
class Fault:
    """An injected answer: an HTTP status (with a body), or a connection reset when status is None."""

    method: str
    path: re.Pattern[str]
    status: int | None
    times: int | None  # None: for ever
    body: bytes = b""
    content_type: str = "text/plain"
    retry_after: str | None = None


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, the raw text when not JSON, None when empty


@dataclass
class _Run:
    data: dict[str, Any]
    script: RunScript
    states: list[str]
    index: int = 0
    namespace: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


class KfpServer:
    """The emulator; `with KfpServer() as kfp:` starts it and always stops it."""

    def __init__(
        self,
        *,
        namespace: str = "kubeflow-user-example-com",
        require_token: str | None = None,
        multi_user: bool = True,
        namespace_required: bool = False,
        handler_timeout: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.require_token = require_token
        self.multi_user = multi_user
        self.namespace_required = namespace_required
        self.handler_timeout = handler_timeout
        self.requests: list[Recorded] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, _Run] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self._scripts: list[RunScript] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KfpServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> KfpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting ----------------------------------------------------------------------------

    def add_pipeline(
        self, name: str, *, display_name: str | None = None, namespace: str | None = None
    ) -> dict[str, Any]:
        pipeline = {
            "pipeline_id": str(uuid.uuid4()),
            "display_name": display_name or name,
            "name": name,
            "created_at": _timestamp(),
        }
        if namespace:
            pipeline["namespace"] = namespace
        with self._lock:
            self.pipelines[pipeline["pipeline_id"]] = pipeline
        return dict(pipeline)

    def add_version(
        self, pipeline_id: str, name: str, *, display_name: str | None = None
    ) -> dict[str, Any]:
        version: dict[str, Any] = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": str(uuid.uuid4()),
            "display_name": display_name or name,
            "name": name,
            "created_at": _timestamp(),
            "pipeline_spec": {"pipelineInfo": {"name": name}, "schemaVersion": "2.1.0"},
        }
        with self._lock:
            self.versions[version["pipeline_version_id"]] = version
        return dict(version)

    def add_experiment(self, display_name: str, namespace: str | None = None) -> dict[str, Any]:
        with self._lock:
            return dict(self._new_experiment(display_name, namespace or self.namespace))

    def script(self, *scripts: RunScript) -> None:
        """Queues how the next created runs behave (then the default RunScript)."""
        with self._lock:
            self._scripts.extend(scripts)

    def fail(
        self,
        method: str,
        path: str,
        status: int | None = 503,
        *,
        times: int | None = 1,
        body: str | dict[str, Any] | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Answers `status` (None: resets the connection) to requests matching `path` (a regex)."""
        if isinstance(body, dict):
            raw, content_type = json.dumps(body).encode(), "application/json"
        else:
            default = "upstream connect error or disconnect/reset before headers"
            raw, content_type = (body or default).encode(), "text/plain"
        fault = Fault(method, re.compile(path), status, times, raw, content_type, retry_after)
        with self._lock:
            self._faults.append(fault)

    def set_state(self, run_id: str, state: str) -> None:
        """Moves a run to `state` from outside (someone cancels it in the UI, say)."""
        with self._lock:
            run = self.runs[run_id]
            run.states, run.index = [state], 0

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        pattern = re.compile(path)
        with self._lock:
            return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self.runs)

    # -- state (called with the lock held) ----------------------------------------------------

    def _new_experiment(self, display_name: str, namespace: str | None) -> dict[str, Any]:
        experiment = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": display_name,
            "created_at": _timestamp(),
            "storage_state": "AVAILABLE",
            "last_run_created_at": EPOCH,
        }
        if namespace:
            experiment["namespace"] = namespace
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _fault_for(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path.fullmatch(path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _run_view(self, run: _Run, *, advance: bool) -> dict[str, Any]:
        state = run.states[min(run.index, len(run.states) - 1)]
        if advance and run.index < len(run.states) - 1:
            run.index += 1
        if not run.history or run.history[-1]["state"] != state:
            status: dict[str, Any] = {"update_time": _timestamp(), "state": state}
            if state == "FAILED" and run.script.error_message:
                status["error"] = {"code": 2, "message": run.script.error_message}
            run.history.append(status)
            if state in FINAL:
                run.data["finished_at"] = _timestamp()
        view = dict(run.data)
        if state != "RUNTIME_STATE_UNSPECIFIED":
            view["state"] = state
        view["state_history"] = list(run.history)
        if state not in ("PENDING", "RUNTIME_STATE_UNSPECIFIED"):
            view["run_details"] = {"task_details": self._tasks(run, state)}
        return view

    def _tasks(self, run: _Run, state: str) -> list[dict[str, Any]]:
        run_id = run.data["run_id"]
        tasks = []
        for position, name in enumerate(run.script.tasks):
            if state == "FAILED" and run.script.failed_task:
                task_state = "FAILED" if name == run.script.failed_task else "SUCCEEDED"
            elif state in FINAL:
                task_state = state
            else:
                task_state = "SUCCEEDED" if position == 0 else "RUNNING"
            task: dict[str, Any] = {
                "run_id": run_id,
                "task_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{name}")),
                "display_name": name,
                "create_time": run.data["created_at"],
                "start_time": run.data["created_at"],
                "end_time": run.data.get("finished_at", EPOCH),
                "state": task_state,
                "child_tasks": [{"pod_name": f"{run.data['display_name']}-{position}{name[:3]}"}],
            }
            tasks.append(task)
        return tasks

    def _create_pods(self, run: _Run) -> None:
        run_id = run.data["run_id"]
        workflow = f"{run.data['display_name'][:40]}-{run_id[:5]}"
        labels = {
            "pipeline/runid": run_id,
            "pipelines.kubeflow.org/v2_component": "true",
            "workflows.argoproj.io/workflow": workflow,
        }
        self._add_pod(
            run.namespace,
            f"{workflow}-system-container-driver-{run_id[5:15].replace('-', '')}",
            dict(labels),
            "I1128 driver.go:264] accuracy is not computed here\n"
            "accuracy=-1 is a decoy in an unlabelled driver pod\n",
        )
        script = run.script
        if script.metrics is None:
            return  # a cached metrics step runs no pod
        pod_labels = dict(labels)
        if script.metrics_labelled:
            pod_labels["nbflow.dev/metrics"] = "true"
        lines = [f"{name}={value}" for name, value in script.metrics.items()]
        self._add_pod(
            run.namespace,
            f"{workflow}-system-container-impl-{run_id[15:25].replace('-', '')}",
            pod_labels,
            script.log_prefix + "".join(line + "\n" for line in lines),
        )

    def _add_pod(self, namespace: str, name: str, labels: dict[str, str], log: str) -> None:
        now = _timestamp()
        self.pods[(namespace, name)] = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(len(self.pods) + 1000),
                "creationTimestamp": now,
                "labels": labels,
                "annotations": {"workflows.argoproj.io/node-name": name},
            },
            "spec": {
                "containers": [
                    {"name": "wait", "image": "quay.io/argoproj/argoexec:v4.0.5"},
                    {"name": "main", "image": "python:3.11-slim"},
                ],
                "restartPolicy": "Never",
            },
            "status": {
                "phase": "Succeeded",
                "startTime": now,
                "containerStatuses": [
                    {
                        "name": "main",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": 0,
                                "reason": "Completed",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                ],
            },
        }
        self.logs[(namespace, name)] = log

    # -- request handling -----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[int | None, bytes, str, dict[str, str]]:
        """Returns (status or None for a reset, body, content type, extra headers)."""
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        with self._lock:
            self.requests.append(Recorded(method, path, query, headers, body))
            fault = self._fault_for(method, path)
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return fault.status, fault.body, fault.content_type, extra
        if path.startswith("/api/v1/"):
            return self._kube(method, path, query)
        if self.require_token is not None and (
            headers.get("authorization") != f"Bearer {self.require_token}"
        ):
            return _grpc_error(16, "Failed to authenticate token review: invalid bearer token")
        with self._lock:
            return self._kfp(method, path, query, body)

    def _kfp(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, bytes, str, dict[str, str]]:
        one = {key: values[-1] for key, values in query.items()}
        if (method, path) == ("GET", "/apis/v2beta1/healthz"):
            return _json(
                {"commit_sha": "0000000", "tag_name": "2.17.0", "multi_user": self.multi_user}
            )
        if (method, path) == ("GET", "/apis/v2beta1/pipelines"):
            # resource_manager.go ReplaceNamespace: single-user KFP ignores the namespace
            namespace = one.get("namespace", "") if self.multi_user else ""
            if self.namespace_required and not namespace:
                return _grpc_error(
                    3, "Invalid input error: Namespace is required for pipeline operations"
                )
            items = [p for p in self.pipelines.values() if p.get("namespace", "") == namespace]
            return self._list(items, one.get("filter"), "pipelines")
        match = re.fullmatch(r"/apis/v2beta1/pipelines/([^/]+)/versions", path)
        if method == "GET" and match:
            if match.group(1) not in self.pipelines:
                return _grpc_error(5, f"Pipeline {match.group(1)} not found")
            items = [v for v in self.versions.values() if v["pipeline_id"] == match.group(1)]
            return self._list(items, one.get("filter"), "pipeline_versions")
        if (method, path) == ("GET", "/apis/v2beta1/experiments"):
            namespace = one.get("namespace", "")
            items = [e for e in self.experiments.values() if e.get("namespace", "") == namespace]
            return self._list(items, one.get("filter"), "experiments")
        if (method, path) == ("POST", "/apis/v2beta1/experiments"):
            return self._create_experiment(body)
        match = re.fullmatch(r"/apis/v2beta1/experiments/([^/:]+)", path)
        if method == "GET" and match:
            experiment = self.experiments.get(match.group(1))
            if experiment is None:
                return _grpc_error(5, f"Experiment {match.group(1)} not found")
            return _json(experiment)
        if (method, path) == ("POST", "/apis/v2beta1/runs"):
            return self._create_run(body)
        match = re.fullmatch(r"/apis/v2beta1/runs/([^/:]+)(:terminate)?", path)
        if match:
            run = self.runs.get(match.group(1))
            if method == "GET" and not match.group(2):
                if run is None:
                    return _grpc_error(5, f"Failed to get run: Run {match.group(1)} not found")
                return _json(self._run_view(run, advance=True))
            if method == "POST" and match.group(2):
                return self._terminate(match.group(1), run)
        return _grpc_error(5, "Not Found")

    def _list(
        self, items: list[dict[str, Any]], filter_text: str | None, key: str
    ) -> tuple[int, bytes, str, dict[str, str]]:
        if filter_text:
            try:
                predicates = json.loads(filter_text).get("predicates") or []
            except (ValueError, AttributeError):
                return _grpc_error(3, f"failed to parse valid filter from {filter_text!r}")
            for predicate in predicates:
                operation = predicate.get("operation")
                value = predicate.get("string_value", predicate.get("stringValue"))
                if operation not in ("EQUALS", 1) or predicate.get("key") not in (
                    "name",
                    "display_name",
                ):
                    return _grpc_error(3, f"unsupported predicate in the emulator: {predicate}")
                items = [item for item in items if item.get(predicate["key"]) == value]
        if not items:
            return _json({})  # protojson leaves out the empty list and total_size 0
        return _json({key: items, "total_size": len(items)})

    def _create_experiment(self, body: Any) -> tuple[int, bytes, str, dict[str, str]]:
        if not isinstance(body, dict) or set(body) - EXPERIMENT_FIELDS:
            return _grpc_error(3, f"proto: unknown field in {body!r}")
        name, namespace = body.get("display_name", ""), body.get("namespace", "")
        if not name:
            return _grpc_error(3, "Invalid input error: Experiment name is empty")
        if any(
            e["display_name"] == name and e.get("namespace", "") == namespace
            for e in self.experiments.values()
        ):
            return _grpc_error(6, f"Already exist error: Experiment {name} already exists")
        return _json(self._new_experiment(name, namespace))

    def _create_run(self, body: Any) -> tuple[int, bytes, str, dict[str, str]]:
        if not isinstance(body, dict):
            return _grpc_error(3, "invalid run")
        unknown = {
            key for key in body if key not in RUN_FIELDS and key not in map(_camel, RUN_FIELDS)
        }
        if unknown:
            return _grpc_error(3, f'proto: (line 1:2): unknown field "{sorted(unknown)[0]}"')
        if not body.get("display_name"):
            return _grpc_error(
                3, "Failed to create a run due to invalid name: The run name is empty."
            )
        reference = body.get("pipeline_version_reference") or {}
        pipeline_id = reference.get("pipeline_id")
        version_id = reference.get("pipeline_version_id")
        if pipeline_id not in self.pipelines:
            return _grpc_error(
                13,
                f"Failed to create a run due to error fetching manifest: Pipeline {pipeline_id} not found",
            )
        if version_id is None:
            candidates = [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]
            version_id = candidates[-1]["pipeline_version_id"] if candidates else None
        if version_id not in self.versions:
            return _grpc_error(
                13,
                f"Failed to create a run due to error fetching manifest: PipelineVersion {version_id} not found",
            )
        parameters = (body.get("runtime_config") or {}).get("parameters", {})
        if not isinstance(parameters, dict):
            return _grpc_error(3, "runtime_config.parameters must be an object")
        experiment_id = body.get("experiment_id")
        if experiment_id:
            experiment = self.experiments.get(experiment_id)
            if experiment is None:
                return _grpc_error(5, f"Experiment {experiment_id} not found")
        else:
            experiment = next(
                (e for e in self.experiments.values() if e["display_name"] == "Default"), None
            ) or self._new_experiment("Default", self.namespace)
        script = self._scripts.pop(0) if self._scripts else RunScript()
        now = _timestamp()
        data: dict[str, Any] = {
            "experiment_id": experiment["experiment_id"],
            "run_id": str(uuid.uuid4()),
            "display_name": body["display_name"],
            "storage_state": "AVAILABLE",
            "pipeline_version_reference": {
                "pipeline_id": pipeline_id,
                "pipeline_version_id": version_id,
            },
            "runtime_config": {"parameters": parameters},
            "service_account": "default-editor",
            "created_at": now,
            "scheduled_at": now,
            "finished_at": EPOCH,
        }
        run = _Run(data, script, list(script.states), namespace=experiment.get("namespace", ""))
        self.runs[data["run_id"]] = run
        self._create_pods(run)
        created = dict(data, state="PENDING")
        created["state_history"] = [{"update_time": now, "state": "PENDING"}]
        return _json(created)

    def _terminate(self, run_id: str, run: _Run | None) -> tuple[int, bytes, str, dict[str, str]]:
        if run is None:
            return _grpc_error(5, f"Failed to terminate run {run_id}: Run {run_id} not found")
        current = run.states[min(run.index, len(run.states) - 1)]
        if current in FINAL:  # run_store.go TerminateRun: only PAUSED/PENDING/RUNNING/UNSPECIFIED
            return _grpc_error(
                3,
                f"Failed to terminate run {run_id}: Failed to terminate a run {run_id}. Row not found",
            )
        run.states, run.index = list(run.script.cancel_states), 0
        return _json({})

    def _kube(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, bytes, str, dict[str, str]]:
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)/log)?", path)
        if method != "GET" or not match:
            return _status(404, "NotFound", "the server could not find the requested resource")
        namespace, pod = match.groups()
        with self._lock:
            if pod is None:
                selector = (query.get("labelSelector") or [""])[-1]
                try:
                    wanted = _parse_selector(selector)
                except ValueError as error:
                    return _status(400, "BadRequest", f"unable to parse requirement: {error}")
                items = [
                    p
                    for (ns, _), p in sorted(self.pods.items())
                    if ns == namespace and _selects(wanted, p["metadata"]["labels"])
                ]
                return _json(
                    {
                        "kind": "PodList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "4242"},
                        "items": items,
                    }
                )
            if (namespace, pod) not in self.pods:
                return _status(404, "NotFound", f'pods "{pod}" not found', name=pod)
            container = (query.get("container") or ["main"])[-1]
            if container not in ("main", "wait"):
                return _status(
                    400,
                    "BadRequest",
                    f"container {container} is not valid for pod {pod}",
                )
            log = self.logs[(namespace, pod)] if container == "main" else "wait\n"
        return 200, log.encode(), "text/plain", {}


def _json(data: Any, status: int = 200) -> tuple[int, bytes, str, dict[str, str]]:
    return status, json.dumps(data).encode(), "application/json", {}


def _grpc_error(code: int, message: str) -> tuple[int, bytes, str, dict[str, str]]:
    # grpc-gateway's error body: google.rpc.Status, protojson, `details` empty hence left out
    return _json({"code": code, "message": message}, GRPC_HTTP.get(code, 500))


def _status(
    code: int, reason: str, message: str, *, name: str | None = None
) -> tuple[int, bytes, str, dict[str, str]]:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name:
        status["details"] = {"name": name, "kind": "pods"}
    return _json(status, code)


def _parse_selector(selector: str) -> list[tuple[str, str, str | None]]:
    requirements: list[tuple[str, str, str | None]] = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        for operator in ("!=", "==", "="):
            if operator in part:
                key, value = (s.strip() for s in part.split(operator, 1))
                if not key:
                    raise ValueError(part)
                requirements.append((key, "!=" if operator == "!=" else "=", value))
                break
        else:
            requirements.append((part, "exists", None))
    return requirements


def _selects(requirements: list[tuple[str, str, str | None]], labels: Mapping[str, str]) -> bool:
    for key, operator, value in requirements:
        if operator == "exists" and key not in labels:
            return False
        if operator == "=" and labels.get(key) != value:
            return False
        if operator == "!=" and labels.get(key) == value:
            return False
    return True


def _handler_class(emulator: KfpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kfp-emulator"
        timeout = emulator.handler_timeout

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, body, content_type, extra = emulator.handle(
                self.command, urllib.parse.unquote(parts.path), query, headers, raw
            )
            if status is None:
                # RST instead of FIN: the client sees "connection reset by peer"
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

        def finish(self) -> None:
            with contextlib.suppress(OSError):  # the socket was reset on purpose
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
