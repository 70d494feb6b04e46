"""Katib trial launcher: run a KFP PipelineVersion with a trial's parameters, print its metrics.

A Katib trial of an nbflow pipeline is a ``batch/v1`` Job whose container runs this package. It

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
streams), and never contain a token.

One concern a module: ``errors`` (exit codes, the errors, the progress log), ``http`` (JSON over
HTTP(S), token, retries), ``kfp`` (the KFP REST calls, run states, failure summary), ``metrics``
(the ``name=value`` lines), ``kube`` (pods, their logs, reading the metrics there), ``trial``
(launch, wait, terminate: ``Options`` in, ``Outcome`` out) and ``cli`` (options, exit codes,
signals). Standard library only, and the modules import each other relatively, never from
``nbflow``: the launcher image copies this package's directory alone to ``/app/launcher`` and runs
``python /app/launcher`` (``__main__``), which behaves as ``python -m nbflow.incluster.launcher``.
"""

from __future__ import annotations

from .cli import build_parser, main, parse_options, parse_param
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, ApiError, LaunchError
from .http import HttpClient
from .kfp import FINAL_STATES, KfpClient, failure_summary, run_state
from .kube import KubeClient, read_metrics
from .metrics import format_metric, parse_metric_lines
from .trial import Options, Outcome, launch

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
    "build_parser",
    "failure_summary",
    "format_metric",
    "launch",
    "main",
    "parse_metric_lines",
    "parse_options",
    "parse_param",
    "read_metrics",
    "run_state",
]
