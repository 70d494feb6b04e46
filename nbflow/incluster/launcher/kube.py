"""The Kubernetes core API: the pods of a KFP run, their logs, and the metrics printed there."""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import EXIT_FAILED, EXIT_USAGE, ApiError, LaunchError, Log, log_stderr
from .http import HttpClient
from .metrics import parse_metric_lines

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
METRICS_LABEL = "nbflow.dev/metrics=true"
RUN_ID_LABEL = "pipeline/runid"


def read_small(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def in_cluster_host() -> str | None:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


@dataclass
class KubeClient:
    """The Kubernetes core API, where the pods of a KFP run live and their logs are read."""

    http: HttpClient
    namespace: str
    selector: str = METRICS_LABEL
    log: Log = log_stderr

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
