"""The launcher's command line: options, the one place errors become exit codes, signals."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Interrupted, LaunchError, log_stderr
from .kfp import DEFAULT_HOST, TOKEN_ENV, TOKEN_PATHS
from .kube import METRICS_LABEL, SA_DIR
from .metrics import format_metric
from .trial import Options, launch


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
        log_stderr(f"error: {error.message}")
        return error.exit_code
    except (KeyboardInterrupt, Interrupted):
        log_stderr("interrupted")
        return EXIT_INTERRUPTED
    if outcome.exit_code != EXIT_OK:
        log_stderr(f"error: {outcome.message}")
        return outcome.exit_code
    for name, value in outcome.metrics.items():
        print(f"{name}={format_metric(value)}", flush=True)
    log_stderr(f"run {outcome.run_id} succeeded")
    return EXIT_OK


def _on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted


def entry() -> int:
    # Katib deletes a trial's Job when the trial is early-stopped or the experiment is deleted:
    # the pod gets SIGTERM, and the KFP run must not outlive it.
    signal.signal(signal.SIGTERM, _on_sigterm)
    return main()
