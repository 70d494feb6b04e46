"""One trial: start the KFP run, wait for a final state (or terminate it), read its metrics."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ApiError,
    Interrupted,
    LaunchError,
    Log,
    log_stderr,
)
from .http import HttpClient
from .kfp import (
    DEFAULT_HOST,
    FINAL_STATES,
    KfpClient,
    default_token_path,
    failure_summary,
    run_state,
)
from .kube import METRICS_LABEL, SA_DIR, KubeClient, in_cluster_host, read_metrics, read_small

TIMED_OUT = "TIMED_OUT"  # an Outcome state of the launcher's own, never a KFP state


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


def _require_kube_host(options: Options) -> str:
    host = options.kube_host or in_cluster_host()
    if not host:
        raise LaunchError(
            "reading metrics needs the Kubernetes API: not in a cluster (no "
            "KUBERNETES_SERVICE_HOST), pass --kube-host"
        )
    return host


def _kube_client(options: Options, namespace: str | None, log: Log) -> KubeClient:
    host = _require_kube_host(options)
    namespace = namespace or read_small(f"{SA_DIR}/namespace")
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
    log: Log = log_stderr,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Runs one trial: create the run, wait for it, read its metrics. Never exits the process.

    Raises LaunchError for configuration and API problems (exit 2). On KeyboardInterrupt (or
    SIGTERM, via `main`'s handler) the run is terminated and the interrupt propagates.
    """
    http = HttpClient(
        options.host,
        token_path=options.token_path if options.token_path is not None else default_token_path(),
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
    except (KeyboardInterrupt, Interrupted):
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
            raise Interrupted
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
