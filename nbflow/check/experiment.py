"""The Katib Experiment (`kubeflow.org/v1beta1`) that a manifest's `tuning` block means.

Each trial is a `batch/v1` Job whose container `launcher` runs the trial launcher
(docs/launcher.md): it starts one run of the project's PipelineVersion with the trial's
parameters, waits for it and prints the metric lines that Katib's StdOut collector reads.

Defaults, when the manifest's `deploy` block leaves them out:
- service account: `default-editor`, which in a Kubeflow profile namespace already holds the KFP
  and pod-log permissions the launcher needs (docs/launcher.md, RBAC);
- image: `ghcr.io/nbflow/nbflow-launcher:<nbflow version>`;
- `--timeout`: when every step has a `timeout`, the sum over steps of timeout x (1 + retries),
  plus 10 minutes for scheduling and image pulls; otherwise 24 hours.

The Experiment is derived here, in `check`, so that validation can hold it against the rules
Katib applies (its admission webhook and suggestion services, `nbflow.check.katib_rules`) and
report a bad search as an error in nbflow.yaml rather than on the cluster.
`nbflow.generate.katib` adds the build's labels and annotations and writes the YAML.
"""

from __future__ import annotations

import math
from typing import Any

from nbflow import __version__
from nbflow.check.katib_rules import (
    API_VERSION,
    KATIB_SETTINGS,
    SHELL_SAFE,
    check_experiment,
    experiment_warnings,
    unsafe_chars,
)
from nbflow.check.manifest import SearchSpace
from nbflow.check.project import Project
from nbflow.check.rules import ALGORITHM_SETTINGS

CONTAINER = "launcher"
# The launcher image holds the launcher package's directory at /app/launcher: Python runs a
# directory as a script through its __main__.py (launcher/Dockerfile, docs/launcher.md).
LAUNCHER_COMMAND = ("python", "/app/launcher")
DEFAULT_SERVICE_ACCOUNT = "default-editor"
DEFAULT_LAUNCHER_REPOSITORY = "ghcr.io/nbflow/nbflow-launcher"
DEFAULT_TRIAL_TIMEOUT = 24 * 3600
TRIAL_OVERHEAD = 600  # seconds for pod scheduling, image pulls and KFP's driver pods
KFP_TOKEN_DIR = "/var/run/secrets/kubeflow/pipelines"  # the launcher's default token path
KFP_AUDIENCE = "pipelines.kubeflow.org"
# not a Python identifier, so that no pipeline parameter can take this name
RUN_NAME_PARAMETER = "trial-name"
PLACEHOLDER_VERSION = "00000000"

# Katib's defaults for a Job trial (experiment_defaults.go), written out so that the YAML says
# what decides a trial's outcome.
JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'

# nbflow's setting names (nbflow.check.rules.ALGORITHM_SETTINGS) where Katib spells them differently
SETTING_NAMES: dict[tuple[str, str], str] = {("tpe", "n_ei_candidates"): "n_EI_candidates"}


class KatibError(ValueError):
    """The project's `tuning` can't be expressed as a Katib Experiment; `problems` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# -- derivation --------------------------------------------------------------------------------
def default_launcher_image() -> str:
    # a tag can't hold `+` (a local version such as 0.1.0+g1234)
    return f"{DEFAULT_LAUNCHER_REPOSITORY}:{__version__.replace('+', '-')}"


def katib_setting(algorithm: str, key: str) -> str | None:
    """Katib's name for nbflow's setting `key` of `algorithm`; None when Katib has none."""
    name = SETTING_NAMES.get((algorithm, key), key)
    return name if name in KATIB_SETTINGS.get(algorithm, {}) else None


def trial_timeout(project: Project) -> int:
    """Seconds the launcher waits for a run (see the module docstring)."""
    steps = [s.spec for s in project.steps]
    if not steps or any(s.timeout is None for s in steps):
        return DEFAULT_TRIAL_TIMEOUT
    return sum((s.timeout or 0) * (1 + s.retries) for s in steps) + TRIAL_OVERHEAD


def experiment_body(project: Project, *, version: str) -> dict[str, Any]:
    """The Katib Experiment of `project.manifest.tuning`, as plain dicts, without the labels and
    annotations that `nbflow.generate.katib` adds (they record the build, not the search).

    Raises KatibError, naming every problem, when the tuning block can't be written for Katib
    (a categorical value the shell would interpret, a setting Katib doesn't have, ...).
    """
    m = project.manifest
    t = m.tuning
    if t is None:
        raise KatibError([f"pipeline `{project.name}` has no `tuning` block"])
    problems: list[str] = []
    name = f"{project.name}-{version}"
    metadata: dict[str, Any] = {"name": name}
    if m.deploy.namespace:
        metadata["namespace"] = m.deploy.namespace

    metric = m.metrics.get(t.objective)
    if metric is None:
        problems.append(f"the tuning objective `{t.objective}` is not a declared metric")
    listed = t.additionalMetrics if t.additionalMetrics is not None else tuple(m.metrics)
    # the objective is always collected; Katib refuses it among the additional metrics
    extra = [x for x in dict.fromkeys(listed) if x != t.objective]
    objective: dict[str, Any] = {"type": metric.goal if metric else "maximize"}
    if t.goal is not None:
        objective["goal"] = float(t.goal)
    objective["objectiveMetricName"] = t.objective
    if extra:
        objective["additionalMetricNames"] = extra

    algorithm: dict[str, Any] = {"algorithmName": t.algorithm}
    settings = _settings(t.algorithm, t.settings, problems)
    if settings:
        algorithm["algorithmSettings"] = settings

    types = {p.name: p.type for p in project.parameters}
    descriptions = {p.name: p.description for p in project.parameters}
    parameters = []
    for pname, space in t.search.items():
        if pname not in types:
            problems.append(f"`{pname}` is searched but is not a declared parameter")
            continue
        param = _parameter(pname, types[pname], space, problems)
        if param is not None:
            parameters.append(param)

    spec: dict[str, Any] = {
        "objective": objective,
        "algorithm": algorithm,
        "parallelTrialCount": t.parallelTrials,
        "maxTrialCount": t.maxTrials,
    }
    if t.maxFailedTrials is not None:
        spec["maxFailedTrialCount"] = t.maxFailedTrials
    spec["metricsCollectorSpec"] = {"collector": {"kind": "StdOut"}}
    spec["parameters"] = parameters
    spec["trialTemplate"] = _trial_template(
        project, name, parameters, types, descriptions, [t.objective, *extra]
    )
    if problems:
        raise KatibError(problems)
    return {"apiVersion": API_VERSION, "kind": "Experiment", "metadata": metadata, "spec": spec}


def validate_tuning(project: Project) -> list[str]:
    """What Katib would refuse in the project's Experiment, built with a placeholder version
    (its labels are left out: they hold the pipeline name, checked already, and build data)."""
    exp, problems = _placeholder(project)
    return problems if exp is None else check_experiment(exp)


def tuning_warnings(project: Project) -> list[str]:
    """What Katib would accept but do differently from what the manifest asks."""
    exp, _ = _placeholder(project)
    return [] if exp is None else experiment_warnings(exp)


def _placeholder(project: Project) -> tuple[dict[str, Any] | None, list[str]]:
    if project.manifest.tuning is None:
        return None, []
    try:
        exp = experiment_body(project, version=PLACEHOLDER_VERSION)
    except KatibError as exc:
        return None, exc.problems
    return exp, []


def _text(value: Any, ptype: str | None = None) -> str:
    """A manifest scalar as Katib's string: JSON's spelling of booleans, floats kept floats."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if ptype == "float" or isinstance(value, float):
        return repr(float(value))
    return str(value)


def _settings(
    algorithm: str, settings: dict[str, Any], problems: list[str]
) -> list[dict[str, str]]:
    out = []
    for key, value in settings.items():
        katib_name = katib_setting(algorithm, key)
        if katib_name is None:
            accepted = ", ".join(KATIB_SETTINGS.get(algorithm, {})) or "none"
            known = key in ALGORITHM_SETTINGS.get(algorithm, {})
            problems.append(
                f"Katib's {algorithm} algorithm has no setting `{key}` (it accepts: {accepted})"
                + (
                    ": only `nbflow tune` would use it; remove it, or choose an algorithm that has it"
                    if known
                    else ""
                )
            )
            continue
        out.append({"name": katib_name, "value": _text(value)})
    return out


def _distribution(name: str, space: SearchSpace, problems: list[str]) -> str:
    if not space.log:
        return space.distribution or "uniform"
    if space.distribution in (None, "logUniform", "logNormal"):
        return space.distribution or "logUniform"
    problems.append(f"`{name}` has `log: true` and distribution `{space.distribution}`: keep one")
    return space.distribution


def _parameter(
    name: str, ptype: str, space: SearchSpace, problems: list[str]
) -> dict[str, Any] | None:
    if space.values is not None:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in space.values)
        items = [_text(v, ptype) for v in space.values]
        for v, item in zip(space.values, items, strict=True):
            if isinstance(v, float) and not math.isfinite(v):
                problems.append(f"`{name}` lists `{v}`, which is not a finite number")
            elif not SHELL_SAFE.fullmatch(item):
                problems.append(
                    f"`{name}` lists {item!r}, which holds {unsafe_chars(item)}: Katib passes "
                    "values through `sh -c` without quoting; use letters, digits and "
                    "`_ . - + / : @ % , =` only"
                )
        kind = "discrete" if numbers else "categorical"
        return {"name": name, "parameterType": kind, "feasibleSpace": {"list": items}}
    if ptype not in ("int", "float"):
        problems.append(f"`{name}` is a {ptype} parameter: search it with `values`, not min/max")
        return None
    feasible: dict[str, Any] = {}
    for key in ("min", "max", "step"):
        v = getattr(space, key)
        if v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            problems.append(f"`{name}` has {key} `{v}`, which is not a finite number")
        feasible[key] = _text(v, ptype)
    feasible["distribution"] = _distribution(name, space, problems)
    kind = "int" if ptype == "int" else "double"
    return {"name": name, "parameterType": kind, "feasibleSpace": feasible}


def _trial_template(
    project: Project,
    name: str,
    parameters: list[dict[str, Any]],
    types: dict[str, str],
    descriptions: dict[str, str | None],
    metrics: list[str],
) -> dict[str, Any]:
    deploy = project.manifest.deploy
    trial_parameters = [
        {
            "name": p["name"],
            "reference": p["name"],
            "description": descriptions.get(p["name"])
            or f"the `{p['name']}` parameter of pipeline {project.name}",
        }
        for p in parameters
    ]
    trial_parameters.append(
        {
            "name": RUN_NAME_PARAMETER,
            "reference": "${trialSpec.Name}",
            "description": "the KFP run's display name: the trial's name",
        }
    )
    args = [f"--pipeline-name={project.name}", f"--version-name={name}"]
    if deploy.namespace:
        args.append(f"--namespace={deploy.namespace}")
    # one KFP experiment per Katib Experiment groups its trials' runs (multi-user KFP needs one)
    args.append(f"--experiment-name={name}")
    args.append(f"--run-name=${{trialParameters.{RUN_NAME_PARAMETER}}}")
    for p in parameters:
        # a string parameter goes as written: `007` or `true` must not turn into a number
        option = "--string-param" if types.get(p["name"]) == "str" else "--param"
        args.append(f"{option}={p['name']}=${{trialParameters.{p['name']}}}")
    args.extend(f"--metric={x}" for x in metrics)
    args.append(f"--timeout={trial_timeout(project)}")
    no_istio = {"sidecar.istio.io/inject": "false"}  # else the Job never completes
    container = {
        "name": CONTAINER,
        "image": deploy.launcherImage or default_launcher_image(),
        # explicit, or Katib fetches the image's entrypoint from the registry to wrap it
        "command": list(LAUNCHER_COMMAND),
        "args": args,
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "kfp-token", "mountPath": KFP_TOKEN_DIR, "readOnly": True}],
    }
    token = {"path": "token", "audience": KFP_AUDIENCE, "expirationSeconds": 7200}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(no_istio), "annotations": dict(no_istio)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": deploy.serviceAccount or DEFAULT_SERVICE_ACCOUNT,
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "kfp-token",
                            "projected": {"sources": [{"serviceAccountToken": token}]},
                        }
                    ],
                },
            },
        },
    }
    return {
        "primaryContainerName": CONTAINER,
        "successCondition": JOB_SUCCESS,
        "failureCondition": JOB_FAILURE,
        "trialParameters": trial_parameters,
        "trialSpec": job,
    }
