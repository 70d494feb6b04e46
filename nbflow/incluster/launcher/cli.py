"""Katib trial launcher: run a KFP PipelineVersion with a trial's parameters, print its metrics.

A Katib trial of an nbflow pipeline is a ``batch/v1`` Job whose container runs this file. It

1. starts one run of a Kubeflow Pipelines (v2) PipelineVersion through the KFP ``v2beta1`` REST
   API (``POST /apis/v2beta1/runs``) with the trial's parameters (``--param name=value``; a value
   that parses as JSON is sent typed, anything else as a string);
2. polls ``GET /apis/v2beta1/runs/{run_id}`` until a final state: SUCCEEDED, FAILED, CANCELED or
   SKIPPED (CANCELING and PAUSED are not final); past ``--timeout`` it terminates the run
   (``POST /apis/v2beta1/runs/{run_id}:terminate``, KFP has no ``:cancel``); on SIGTERM or SIGINT
   (Katib early-stopping the trial), or when orphaned by the shell Katib wraps it in (the
   trial's Job was deleted), it terminates the run as well;
3. on success reads the requested metrics and prints one line ``name=value`` each on stdout, in
   the order of ``--metric``: the lines Katib's StdOut metrics collector reads.

Metric values. KFP v2 keeps them in ML Metadata, and its REST API does not serve them: a run's
``run_details.task_details[]`` carry states and artifact ids only (no output parameters, no pod
name), and 2.17 has no artifact service. The nbflow step that computes a metric prints
``name=value`` on stdout (DESIGN section 3); the launcher reads those lines back from that step's
pod log through the Kubernetes API. Every pod of a KFP run carries the label
``pipeline/runid=<run id>`` (set by the KFP API server); nbflow's generator adds
``nbflow.dev/metrics=true`` to the pods of the steps that print metrics. When no pod has that
label, the launcher reads the ``main`` container log of every pod of the run. The last value
printed wins. A cached step runs no pod: the metrics step must not be cached in tuning runs.

Exit codes: 0 the run succeeded and every requested metric was printed; 1 the run ended FAILED,
CANCELED or SKIPPED, timed out (and was terminated), or a metric is missing or not a finite
number; 2 bad usage or configuration, a name that does not resolve, an API that answers 4xx, or an
API that stays unreachable or failing after bounded retries; 130 interrupted or orphaned (the run
was terminated).

Progress lines go to stderr, with no ``=`` in them (Katib's StdOut collector reads both
streams), and never contain a token. Standard library only: the launcher image copies this one
file, and ``python -m nbflow.incluster.launcher`` and ``python launcher.py`` behave the same.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import signal
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FINAL_STATES",
    "ApiError",
    "HttpClient",
    "KfpClient",
    "KubeClient",
    "LaunchError",
    "Options",
    "Outcome",
    "launch",
    "main",
    "parse_metric_lines",
    "parse_param",
    "read_metrics",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
# The kfp SDK's convention (kfp.client.KF_PIPELINES_SA_TOKEN_PATH and its env variable), which
# Kubeflow's `access-ml-pipeline` PodDefault follows; the second path is a shorter alternative.
TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
TOKEN_PATHS = ("/var/run/secrets/kubeflow/pipelines/token", "/var/run/secrets/kfp/token")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
METRICS_LABEL = "nbflow.dev/metrics=true"
RUN_ID_LABEL = "pipeline/runid"

FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"})
UNSPECIFIED = "RUNTIME_STATE_UNSPECIFIED"  # omitted from the JSON: KFP does not emit zero values
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TIMED_OUT = "TIMED_OUT"  # an Outcome state of the launcher's own, never a KFP state

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"nbflow-launcher: {message}", file=sys.stderr, flush=True)


class LaunchError(Exception):
    """A problem that ends the launcher with a one-line message and an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(LaunchError):
    """An HTTP error answer (after retries), with its status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, EXIT_USAGE)
        self.status = status


class _Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the run is terminated on the way out."""


# -- HTTP --------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(body: bytes) -> str:
    """The message of an error body: grpc-gateway's, KFP's HTTP handlers' or a Kubernetes Status."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text) or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "error_message", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return _one_line(value)
    return _one_line(text)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class HttpClient:
    """JSON over HTTP(S) with a bearer token re-read on each request and bounded retries.

    Retries connection errors, timeouts and HTTP 429/500/502/503/504 (honouring Retry-After),
    with exponential backoff; never retries another 4xx.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "KFP API",
        token_path: str | None = None,
        ca_cert: str | None = None,
        timeout: float = 30.0,
        retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        log: Log = _stderr,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            valid = False
        if not valid:
            raise LaunchError(f"{name} URL `{base_url}` is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.token_path = token_path
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._log = log
        self._sleep = sleep
        context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=ca_cert)
            except OSError as error:
                raise LaunchError(
                    f"cannot read CA certificate {ca_cert}: {_reason(error)}"
                ) from None
            except ssl.SSLError as error:
                raise LaunchError(f"CA certificate {ca_cert} is not valid: {error}") from None
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def _token(self) -> str | None:
        # Projected service-account tokens rotate: read the file on every request.
        if not self.token_path:
            return None
        try:
            with open(self.token_path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LaunchError(
                f"cannot read token file {self.token_path}: {_reason(error)}"
            ) from None
        return token or None

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.max_backoff)
        return min(self.backoff * (2**attempt), self.max_backoff)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        retry: bool = True,
    ) -> bytes:
        """Sends one request (retried if allowed) and returns the body of its 2xx answer."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        if data is None and method == "POST":
            data = b""
        attempts = self.retries + 1 if retry else 1
        what = f"{method} {path}"
        for attempt in range(attempts):
            headers = {"Accept": "application/json, text/plain", "User-Agent": "nbflow-launcher"}
            if data:
                headers["Content-Type"] = "application/json"
            token = self._token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            last = attempt + 1 >= attempts
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    payload: bytes = response.read()
                    return payload
            except urllib.error.HTTPError as error:
                try:
                    text = _error_text(error.read())
                except (OSError, http.client.HTTPException):
                    text = "(unreadable body)"
                if error.code in RETRY_STATUSES and not last:
                    delay = self._delay(attempt, error.headers.get("Retry-After"))
                    self._log(
                        f"{self.name} answered HTTP {error.code} to {what}; "
                        f"retry {attempt + 1} of {self.retries} in {delay:.1f} s"
                    )
                    self._sleep(delay)
                    continue
                retried = error.code in RETRY_STATUSES and attempts > 1
                tried = f" after {attempts} attempts" if retried else ""
                raise ApiError(
                    f"{self.name} answered HTTP {error.code} to {what}{tried}: {text}", error.code
                ) from None
            except (OSError, http.client.HTTPException) as error:
                if isinstance(error, ssl.SSLError) or (
                    isinstance(error, urllib.error.URLError)
                    and isinstance(error.reason, ssl.SSLError)
                ):
                    raise LaunchError(
                        f"TLS error talking to {self.name} at {self.base_url}: {_reason(error)}"
                    ) from None
                if not last:
                    delay = self._delay(attempt)
                    self._log(
                        f"{self.name} at {self.base_url} failed ({_reason(error)}) on {what}; "
                        f"retry {attempt + 1} of {self.retries} in {delay:.1f} s"
                    )
                    self._sleep(delay)
                    continue
                raise LaunchError(
                    f"cannot reach {self.name} at {self.base_url} ({_reason(error)}) "
                    f"on {what} after {attempts} attempts"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Like `request`, for an answer that is a JSON object."""
        payload = self.request(method, path, **kwargs)
        try:
            data = json.loads(payload or b"{}")
        except ValueError:
            raise LaunchError(
                f"{self.name} answered {method} {path} with something that is not JSON: "
                f"{_one_line(payload.decode('utf-8', 'replace'), 120)}"
            ) from None
        if not isinstance(data, dict):
            raise LaunchError(
                f"{self.name} answered {method} {path} with JSON that is not an object"
            )
        return data


# -- KFP ---------------------------------------------------------------------------------------


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
        parts.append(_one_line(str(error["message"]), 200))
    for status in reversed(run.get("state_history") or []):
        if isinstance(status, dict) and isinstance(status.get("error"), dict):
            message = status["error"].get("message")
            if message and not parts:
                parts.append(_one_line(str(message), 200))
    details = run.get("run_details") or {}
    failed: list[str] = []
    for task in details.get("task_details") or []:
        name = task.get("display_name") if isinstance(task, dict) else None
        if name and task.get("state") == "FAILED" and name not in failed:
            failed.append(str(name))
    if failed:
        parts.append("failed tasks: " + ", ".join(failed[:8]))
    return "; ".join(parts)


# -- metrics -----------------------------------------------------------------------------------

_METRIC_LINE = re.compile(r"^\s*([^\s=]+)\s*=\s*(\S+)\s*$")


def parse_metric_lines(lines: Iterable[str], names: Iterable[str]) -> dict[str, str]:
    """The last value printed as `name=value` for each of `names` (values as written)."""
    wanted = set(names)
    found: dict[str, str] = {}
    for line in lines:
        match = _METRIC_LINE.match(line)
        if match and match.group(1) in wanted:
            found[match.group(1)] = match.group(2)
    return found


@dataclass
class KubeClient:
    """The Kubernetes core API, where the pods of a KFP run live and their logs are read."""

    http: HttpClient
    namespace: str
    selector: str = METRICS_LABEL
    log: Log = _stderr

    def pods(self, label_selector: str) -> list[dict[str, Any]]:
        path = f"/api/v1/namespaces/{urllib.parse.quote(self.namespace, safe='')}/pods"
        data = self.http.json("GET", path, query={"labelSelector": label_selector})
        return [pod for pod in data.get("items") or [] if isinstance(pod, dict)]

    def log_lines(self, pod: str, container: str = "main") -> list[str]:
        path = (
            f"/api/v1/namespaces/{urllib.parse.quote(self.namespace, safe='')}"
            f"/pods/{urllib.parse.quote(pod, safe='')}/log"
        )
        payload = self.http.request("GET", path, query={"container": container})
        return payload.decode("utf-8", "replace").splitlines()


def _pod_order(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    return (
        str(status.get("startTime") or meta.get("creationTimestamp") or ""),
        meta.get("name", ""),
    )


def read_metrics(
    client: KubeClient, run: Mapping[str, Any], names: Sequence[str]
) -> dict[str, float]:
    """Reads `names` from the `name=value` lines in the logs of the run's metric-step pods.

    Pods are those labelled ``pipeline/runid=<run id>`` and ``client.selector`` (by default
    ``nbflow.dev/metrics=true``), or every pod of the run when none has that label; succeeded pods
    are preferred (a retried step leaves failed ones), read in start order, the last value wins.
    Raises LaunchError (exit 1) for a metric that is missing or not a finite number.
    """
    if not names:
        return {}
    run_id = str(run.get("run_id") or "")
    if not run_id:
        raise LaunchError("the run has no run_id", EXIT_FAILED)
    base = f"{RUN_ID_LABEL}={run_id}"
    try:
        pods = client.pods(f"{base},{client.selector}") if client.selector else []
        if not pods:
            pods = client.pods(base)
            if client.selector:
                client.log(
                    f"no pod of run {run_id} is labelled {client.selector}; "
                    f"reading the logs of all {len(pods)} pods of the run"
                )
    except ApiError as error:
        raise LaunchError(
            f"{error.message} (the launcher's service account needs get and list on pods and "
            f"get on pods/log in namespace {client.namespace})",
            EXIT_USAGE,
        ) from None
    succeeded = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Succeeded"]
    found: dict[str, str] = {}
    for pod in sorted(succeeded or pods, key=_pod_order):
        name = (pod.get("metadata") or {}).get("name")
        if not name:
            continue
        try:
            lines = client.log_lines(str(name))
        except ApiError as error:
            client.log(f"cannot read the log of pod {name}: {error.message}")
            continue
        found.update(parse_metric_lines(lines, names))
    missing = [name for name in names if name not in found]
    if missing:
        raise LaunchError(
            f"run {run_id} succeeded but printed no metric line for "
            f"{', '.join(missing)} in the logs of its {len(pods)} pods in namespace "
            f"{client.namespace} (a cached metrics step runs no pod)",
            EXIT_FAILED,
        )
    values: dict[str, float] = {}
    for name in names:
        try:
            value = float(found[name])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise LaunchError(
                f"metric {name} of run {run_id} is `{found[name]}`, not a finite number",
                EXIT_FAILED,
            )
        values[name] = value
    return values


def format_metric(value: float) -> str:
    """Katib parses the value as a float: print the shortest exact form."""
    return repr(float(value))


# -- the launch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What to launch and how; see `build_parser` for each field's meaning."""

    host: str = DEFAULT_HOST
    namespace: str | None = None
    pipeline_id: str | None = None
    pipeline_name: str | None = None
    version_id: str | None = None
    version_name: str | None = None
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_name: str = "nbflow-trial"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    timeout: float | None = None
    poll_interval: float = 10.0
    token_path: str | None = None
    ca_cert: str | None = None
    request_timeout: float = 30.0
    retries: int = 6
    retry_backoff: float = 1.0
    kube_host: str | None = None
    kube_token_path: str | None = None
    kube_ca_cert: str | None = None
    metrics_selector: str = METRICS_LABEL


@dataclass
class Outcome:
    """How a launch ended: the run, its final state (or TIMED_OUT), the metrics read."""

    run_id: str
    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.state == "SUCCEEDED" and not self.message else EXIT_FAILED


def _default_token_path() -> str | None:
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return from_env
    for path in TOKEN_PATHS:
        if os.path.exists(path):
            return path
    return TOKEN_PATHS[0]


def _read_small(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _kube_host() -> str | None:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _require_kube_host(options: Options) -> str:
    host = options.kube_host or _kube_host()
    if not host:
        raise LaunchError(
            "reading metrics needs the Kubernetes API: not in a cluster (no "
            "KUBERNETES_SERVICE_HOST), pass --kube-host"
        )
    return host


def _kube_client(options: Options, namespace: str | None, log: Log) -> KubeClient:
    host = _require_kube_host(options)
    namespace = namespace or _read_small(f"{SA_DIR}/namespace")
    if not namespace:
        raise LaunchError("cannot tell the namespace of the run's pods: pass --namespace")
    ca = options.kube_ca_cert
    if ca is None and os.path.exists(f"{SA_DIR}/ca.crt"):
        ca = f"{SA_DIR}/ca.crt"
    http = HttpClient(
        host,
        name="Kubernetes API",
        token_path=options.kube_token_path or f"{SA_DIR}/token",
        ca_cert=ca,
        timeout=options.request_timeout,
        retries=options.retries,
        backoff=options.retry_backoff,
        log=log,
    )
    return KubeClient(http, namespace, options.metrics_selector, log)


def launch(
    options: Options,
    *,
    log: Log = _stderr,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Runs one trial: create the run, wait for it, read its metrics. Never exits the process.

    Raises LaunchError for configuration and API problems (exit 2). On KeyboardInterrupt (or
    SIGTERM, via `main`'s handler) the run is terminated and the interrupt propagates.
    """
    http = HttpClient(
        options.host,
        token_path=options.token_path if options.token_path is not None else _default_token_path(),
        ca_cert=options.ca_cert,
        timeout=options.request_timeout,
        retries=options.retries,
        backoff=options.retry_backoff,
        log=log,
        sleep=sleep,
    )
    kfp = KfpClient(http)
    if options.metrics:  # fail on a configuration problem before starting a run
        _require_kube_host(options)
    pipeline_id = options.pipeline_id
    if not pipeline_id:
        if not options.pipeline_name:
            raise LaunchError("pass --pipeline-id or --pipeline-name")
        pipeline_id = kfp.resolve_pipeline(options.pipeline_name, options.namespace)
    version_id = options.version_id
    if not version_id and options.version_name:
        version_id = kfp.resolve_version(pipeline_id, options.version_name)
    if not version_id:
        log(f"no version given: KFP runs the latest version of pipeline {pipeline_id}")
    experiment_id = options.experiment_id
    if not experiment_id and options.experiment_name:
        experiment_id = kfp.resolve_experiment(options.experiment_name, options.namespace)

    started = clock()
    run = kfp.create_run(
        display_name=options.run_name,
        pipeline_id=pipeline_id,
        version_id=version_id,
        parameters=options.parameters,
        experiment_id=experiment_id,
    )
    run_id = str(run["run_id"])
    log(
        f"started run {run_id} ({options.run_name}) of pipeline {pipeline_id}, "
        f"version {version_id or 'latest'}"
    )
    try:
        final = _wait(kfp, run, options, started, log, clock, sleep)
    except (KeyboardInterrupt, _Interrupted):
        log(f"interrupted: terminating run {run_id}")
        _terminate(kfp, run_id, log, retry=False)
        raise
    except LaunchError as error:
        if error.exit_code == EXIT_USAGE:
            log(f"giving up on run {run_id}: terminating it")
            _terminate(kfp, run_id, log, retry=False)
        raise
    if final is None:
        _terminate(kfp, run_id, log, retry=True)
        return Outcome(
            run_id,
            TIMED_OUT,
            message=f"run {run_id} timed out after {options.timeout:g} s (terminate requested)",
        )
    run = final
    state = run_state(run)
    if state != "SUCCEEDED":
        summary = failure_summary(run)
        return Outcome(
            run_id,
            state,
            message=f"run {run_id} ended {state}" + (f": {summary}" if summary else ""),
        )
    if not options.metrics:
        return Outcome(run_id, state)
    namespace = _run_namespace(kfp, run, log) or options.namespace
    kube = _kube_client(options, namespace, log)
    try:
        metrics = read_metrics(kube, run, options.metrics)
    except LaunchError as error:
        if error.exit_code != EXIT_FAILED:
            raise
        return Outcome(run_id, state, message=error.message)
    return Outcome(run_id, state, metrics)


def _wait(
    kfp: KfpClient,
    run: dict[str, Any],
    options: Options,
    started: float,
    log: Log,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> dict[str, Any] | None:
    """Polls the run to a final state; None once past the timeout."""
    run_id = str(run["run_id"])
    deadline = None if not options.timeout else started + options.timeout
    # Katib's StdOut collector runs the launcher under `sh -c "... 1>log 2>&1 && ..."`. When the
    # trial's Job is deleted, the SIGTERM goes to that shell, which does not pass it on: the
    # launcher notices that it was orphaned instead (its parent process changes).
    parent = os.getppid()
    last = ""
    while True:
        state = run_state(run)
        if state != last:
            log(f"run {run_id}: {state}")
            last = state
        if state in FINAL_STATES:
            return run
        if parent > 1 and os.getppid() != parent:
            log("the process that started the launcher has exited")
            raise _Interrupted
        now = clock()
        if deadline is not None and now >= deadline:
            return None
        pause = (
            options.poll_interval
            if deadline is None
            else min(options.poll_interval, deadline - now)
        )
        sleep(max(pause, 0.0))
        run = kfp.get_run(run_id)


def _terminate(kfp: KfpClient, run_id: str, log: Log, *, retry: bool) -> None:
    try:
        kfp.terminate_run(run_id, retry=retry)
    except ApiError as error:
        # 400: KFP refuses to terminate a run that already ended
        log(f"could not terminate run {run_id}: {error.message}")
    except LaunchError as error:
        log(f"could not terminate run {run_id}: {error.message}")
    else:
        log(f"asked KFP to terminate run {run_id}")


def _run_namespace(kfp: KfpClient, run: Mapping[str, Any], log: Log) -> str | None:
    """The namespace of the run's pods: its experiment's (empty in single-user KFP)."""
    experiment_id = run.get("experiment_id")
    if not experiment_id:
        return None
    try:
        namespace = kfp.get_experiment(str(experiment_id)).get("namespace")
    except LaunchError as error:
        log(f"cannot read experiment {experiment_id}: {error.message}")
        return None
    return str(namespace) if namespace else None


# -- CLI ---------------------------------------------------------------------------------------


def parse_param(text: str) -> tuple[str, Any]:
    """`name=value`: the value as JSON when it parses (Katib substitutes strings), else a string."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"`{text}` is not NAME=VALUE")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return name, raw
    if isinstance(value, float) and not math.isfinite(value):
        return name, raw  # NaN and Infinity are not JSON that KFP accepts
    return name, value


def _string_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"`{text}` is not NAME=VALUE")
    return name.strip(), raw


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"`{text}` is not a non-negative number")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"nbflow-launcher: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nbflow-launcher",
        description="Run a KFP PipelineVersion as a Katib trial and print its metrics as name=value.",
        epilog="Exit codes: 0 success; 1 run failed, canceled or timed out, or a metric is missing; "
        "2 usage, configuration or API problem; 130 interrupted (the run is terminated).",
    )
    env = os.environ.get
    add = parser.add_argument
    add("--host", default=env("KFP_HOST") or DEFAULT_HOST, help="KFP API base URL (env KFP_HOST)")
    add(
        "--namespace",
        help="profile namespace: for name lookups and where the run's pods are "
        "(default: the run's experiment's, else this pod's)",
    )
    add("--pipeline-id")
    add("--pipeline-name", help="resolved by name, then display name")
    add("--version-id")
    add("--version-name", help="resolved by name, then display name; default: the latest version")
    add("--experiment-id")
    add("--experiment-name", help="resolved by display name, created when missing")
    add(
        "--run-name",
        default=env("NBFLOW_RUN_NAME") or env("HOSTNAME") or "nbflow-trial",
        help="run display name (default: env NBFLOW_RUN_NAME, else the pod name)",
    )
    add(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter; the value is parsed as JSON when it can be, else a string",
    )
    add(
        "--string-param",
        action="append",
        type=_string_param,
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter sent as a string as written",
    )
    add("--metric", action="append", default=[], metavar="NAME", help="metric to print")
    add(
        "--timeout",
        type=_positive,
        default=0.0,
        help="seconds before the run is terminated (0: none)",
    )
    add("--poll-interval", type=_positive, default=10.0, help="seconds between polls")
    add(
        "--token-path",
        help=f"KFP bearer token file, re-read on each request (default: env "
        f"{TOKEN_ENV}, else {TOKEN_PATHS[0]}, else {TOKEN_PATHS[1]}); none sent when missing",
    )
    add("--ca-cert", help="CA bundle for an https KFP API")
    add("--request-timeout", type=_positive, default=30.0, help="seconds per HTTP request")
    add("--retries", type=int, default=6, help="retries of a failed request (connection, 5xx, 429)")
    add(
        "--retry-backoff",
        type=_positive,
        default=1.0,
        help="first retry delay in seconds, doubled each time up to 30",
    )
    add("--kube-host", help="Kubernetes API URL (default: in-cluster)")
    add("--kube-token-path", help=f"default {SA_DIR}/token")
    add("--kube-ca-cert", help=f"default {SA_DIR}/ca.crt")
    add(
        "--metrics-selector",
        default=METRICS_LABEL,
        help="label selector of the pods whose logs hold the metrics",
    )
    return parser


def parse_options(argv: Sequence[str]) -> Options:
    args = build_parser().parse_args(list(argv))
    if bool(args.pipeline_id) == bool(args.pipeline_name):
        build_parser().error("pass exactly one of --pipeline-id and --pipeline-name")
    if args.version_id and args.version_name:
        build_parser().error("pass at most one of --version-id and --version-name")
    if args.experiment_id and args.experiment_name:
        build_parser().error("pass at most one of --experiment-id and --experiment-name")
    if args.retries < 0:
        build_parser().error("--retries must be 0 or more")
    parameters = dict(args.param)
    parameters.update(dict(args.string_param))
    return Options(
        host=args.host,
        namespace=args.namespace,
        pipeline_id=args.pipeline_id,
        pipeline_name=args.pipeline_name,
        version_id=args.version_id,
        version_name=args.version_name,
        experiment_id=args.experiment_id,
        experiment_name=args.experiment_name,
        run_name=args.run_name,
        parameters=parameters,
        metrics=tuple(dict.fromkeys(args.metric)),
        timeout=args.timeout or None,
        poll_interval=args.poll_interval,
        token_path=args.token_path,
        ca_cert=args.ca_cert,
        request_timeout=args.request_timeout or 30.0,
        retries=args.retries,
        retry_backoff=args.retry_backoff,
        kube_host=args.kube_host,
        kube_token_path=args.kube_token_path,
        kube_ca_cert=args.kube_ca_cert,
        metrics_selector=args.metrics_selector,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: returns the exit code (the one place errors become exit codes)."""
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # argparse: usage error (2) or --help (0)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        outcome = launch(options)
    except LaunchError as error:
        _stderr(f"error: {error.message}")
        return error.exit_code
    except (KeyboardInterrupt, _Interrupted):
        _stderr("interrupted")
        return EXIT_INTERRUPTED
    if outcome.exit_code != EXIT_OK:
        _stderr(f"error: {outcome.message}")
        return outcome.exit_code
    for name, value in outcome.metrics.items():
        print(f"{name}={format_metric(value)}", flush=True)
    _stderr(f"run {outcome.run_id} succeeded")
    return EXIT_OK


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Interrupted


def _entry() -> int:
    # Katib deletes a trial's Job when the trial is early-stopped or the experiment is deleted:
    # the pod gets SIGTERM, and the KFP run must not outlive it.
    signal.signal(signal.SIGTERM, _on_sigterm)
    return main()


if __name__ == "__main__":
    sys.exit(_entry())
