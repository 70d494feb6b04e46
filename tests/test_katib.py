"""The Katib Experiment: generation from small projects, the offline check (one case per rule,
each breaking a generated Experiment), the YAML, Katib's own pydantic models, and the launcher
contract (the args survive `sh -c` and parse with the launcher's own parser)."""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from nbflow import __version__
from nbflow.check.experiment import (
    DEFAULT_SERVICE_ACCOUNT,
    DEFAULT_TRIAL_TIMEOUT,
    KFP_TOKEN_DIR,
    RUN_NAME_PARAMETER,
    TRIAL_OVERHEAD,
    KatibError,
    default_launcher_image,
    katib_setting,
    tuning_warnings,
    validate_tuning,
)
from nbflow.check.katib_rules import KATIB_SETTINGS, check_experiment, experiment_warnings
from nbflow.check.project import Project
from nbflow.check.rules import ALGORITHM_SETTINGS
from nbflow.check.validate import validate_manifest
from nbflow.generate import labels
from nbflow.generate.katib import experiment, experiment_yaml
from nbflow.generate.snapshot import Snapshot
from nbflow.incluster.launcher import parse_options
from tests.support.cases import CASES
from tests.support.fuzz import fuzz_settings

SNAPSHOT = Snapshot("0123456789abcdef0123456789abcdef01234567", False, "https://github.com/o/r")
VERSION = "0a1b2c3d"
HASH = "0a1b2c3d" * 8

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {"cell_type": "code", "id": "c1", "source": "import math"},
        {
            "cell_type": "code",
            "id": "c2",
            "metadata": {"tags": ["parameters"]},
            "source": 'C = 1.0\ngamma = 0.001\nkernel = "rbf"\ndepth = 3\nshrinking = True\nbatch = 32',
        },
        {
            "cell_type": "code",
            "id": "c3",
            "source": "score = C * gamma + depth + batch + len(kernel) + int(shrinking)",
        },
        {
            "cell_type": "code",
            "id": "c4",
            "source": "accuracy = math.tanh(score)\nloss = 1 - accuracy",
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
for _cell in NOTEBOOK["cells"]:
    _cell.setdefault("metadata", {})
    _cell.update(execution_count=None, outputs=[])

MANIFEST = """\
apiVersion: nbflow/v1
name: {name}
notebook: nb.ipynb
setup: 1
steps:
  train:
    cells: 3
{train}
  evaluate:
    cells: 4
{evaluate}
parameters:
  C: 1.0
  gamma: {{type: float, default: 0.001, description: RBF kernel width}}
  kernel: rbf
  depth: 3
  shrinking: true
  batch: 32
metrics:
  accuracy: maximize
  loss: minimize
tuning:
{tuning}
{deploy}
"""

BASE_TUNING = """\
  objective: accuracy
  algorithm: tpe
  maxTrials: 12
  parallelTrials: 3
  search:
    C: {min: 0.1, max: 100, log: true}
    gamma: {min: 0.0001, max: 0.01, log: true}
    depth: {min: 1, max: 8}
    kernel: [rbf, linear]
"""


def make_project(
    root: Path,
    tuning: str = BASE_TUNING,
    *,
    name: str = "digits",
    deploy: str = "",
    train: str = "",
    evaluate: str = "",
) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "nb.ipynb").write_text(json.dumps(NOTEBOOK), encoding="utf-8")
    text = MANIFEST.format(
        name=name, tuning=tuning.rstrip(), deploy=deploy, train=train, evaluate=evaluate
    )
    (root / "nbflow.yaml").write_text(text, encoding="utf-8")
    report, project = validate_manifest(root / "nbflow.yaml", katib=False)
    assert project is not None, [d.message for d in report.errors]
    return project


def make(project: Project) -> dict[str, Any]:
    return experiment(project, version=VERSION, content_hash=HASH, snapshot=SNAPSHOT)


def container(exp: dict[str, Any]) -> dict[str, Any]:
    return exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]


def param(exp: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in exp["spec"]["parameters"] if p["name"] == name)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make(make_project(tmp_path_factory.mktemp("base")))


# -- generation --------------------------------------------------------------------------------


def test_the_valid_tuning_case() -> None:
    _, project = validate_manifest(CASES / "valid" / "with-tuning" / "nbflow.yaml", katib=False)
    assert project is not None
    exp = make(project)
    meta = exp["metadata"]
    assert exp["apiVersion"] == "kubeflow.org/v1beta1" and exp["kind"] == "Experiment"
    assert meta["name"] == "digits-0a1b2c3d" and "namespace" not in meta
    assert meta["labels"] == labels.labels(project, VERSION, HASH, SNAPSHOT)
    assert meta["annotations"] == labels.resource_annotations(project, SNAPSHOT)
    spec = exp["spec"]
    assert spec["objective"] == {"type": "maximize", "objectiveMetricName": "accuracy"}
    assert spec["algorithm"] == {"algorithmName": "tpe"}
    assert (spec["parallelTrialCount"], spec["maxTrialCount"]) == (3, 12)
    assert "maxFailedTrialCount" not in spec
    assert spec["metricsCollectorSpec"] == {"collector": {"kind": "StdOut"}}
    assert param(exp, "C") == {
        "name": "C",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.1", "max": "100.0", "distribution": "logUniform"},
    }
    assert check_experiment(exp) == []
    assert validate_tuning(project) == [] and tuning_warnings(project) == []


def test_trial_template(base: dict[str, Any]) -> None:
    tt = base["spec"]["trialTemplate"]
    assert tt["primaryContainerName"] == "launcher"
    assert tt["trialParameters"] == [
        {"name": "C", "reference": "C", "description": "the `C` parameter of pipeline digits"},
        {"name": "gamma", "reference": "gamma", "description": "RBF kernel width"},
        {
            "name": "depth",
            "reference": "depth",
            "description": "the `depth` parameter of pipeline digits",
        },
        {
            "name": "kernel",
            "reference": "kernel",
            "description": "the `kernel` parameter of pipeline digits",
        },
        {
            "name": RUN_NAME_PARAMETER,
            "reference": "${trialSpec.Name}",
            "description": "the KFP run's display name: the trial's name",
        },
    ]
    job = tt["trialSpec"]
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert "metadata" not in job
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert pod["metadata"]["labels"] == {"sidecar.istio.io/inject": "false"}
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["serviceAccountName"] == DEFAULT_SERVICE_ACCOUNT
    [volume] = pod["spec"]["volumes"]
    assert volume["projected"]["sources"] == [
        {
            "serviceAccountToken": {
                "path": "token",
                "audience": "pipelines.kubeflow.org",
                "expirationSeconds": 7200,
            }
        }
    ]
    c = container(base)
    assert c["name"] == "launcher" and c["image"] == default_launcher_image()
    assert default_launcher_image() == f"ghcr.io/nbflow/nbflow-launcher:{__version__}"
    assert c["volumeMounts"] == [
        {"name": volume["name"], "mountPath": KFP_TOKEN_DIR, "readOnly": True}
    ]
    assert c["command"] == ["python", "/app/launcher"]
    assert c["args"] == [
        "--pipeline-name=digits",
        "--version-name=digits-0a1b2c3d",
        "--experiment-name=digits-0a1b2c3d",
        "--run-name=${trialParameters.trial-name}",
        "--param=C=${trialParameters.C}",
        "--param=gamma=${trialParameters.gamma}",
        "--param=depth=${trialParameters.depth}",
        "--string-param=kernel=${trialParameters.kernel}",
        "--metric=accuracy",
        "--metric=loss",
        f"--timeout={DEFAULT_TRIAL_TIMEOUT}",
    ]
    # the other declared metric is collected as well
    assert base["spec"]["objective"]["additionalMetricNames"] == ["loss"]


def test_deploy_settings(tmp_path: Path) -> None:
    deploy = (
        "deploy:\n  namespace: team-a\n  serviceAccount: tuner\n"
        "  launcherImage: registry.example.com/launcher:1.2.3\n"
    )
    tuning = BASE_TUNING.replace(
        "  parallelTrials: 3\n",
        "  parallelTrials: 3\n  maxFailedTrials: 4\n  goal: 0.99\n  additionalMetrics: []\n",
    )
    exp = make(make_project(tmp_path, tuning, deploy=deploy))
    assert exp["metadata"]["namespace"] == "team-a"
    assert exp["spec"]["maxFailedTrialCount"] == 4
    assert exp["spec"]["objective"] == {
        "type": "maximize",
        "goal": 0.99,
        "objectiveMetricName": "accuracy",
    }
    pod = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "tuner"
    c = container(exp)
    assert c["image"] == "registry.example.com/launcher:1.2.3"
    assert "--namespace=team-a" in c["args"]
    assert "--metric=loss" not in c["args"]
    assert check_experiment(exp) == []


def test_minimize_objective_and_explicit_metrics(tmp_path: Path) -> None:
    tuning = BASE_TUNING.replace(
        "objective: accuracy", "objective: loss\n  additionalMetrics: [accuracy, loss]"
    )
    exp = make(make_project(tmp_path, tuning))
    assert exp["spec"]["objective"]["type"] == "minimize"
    # the objective is dropped from the additional metrics, where Katib refuses it
    assert exp["spec"]["objective"]["additionalMetricNames"] == ["accuracy"]
    assert [a for a in container(exp)["args"] if a.startswith("--metric")] == [
        "--metric=loss",
        "--metric=accuracy",
    ]


PARAMETER_KINDS = {
    "int": (
        "depth: {min: 1, max: 10}",
        "int",
        {"min": "1", "max": "10", "distribution": "uniform"},
    ),
    "int-step": (
        "depth: {min: 2, max: 10, step: 2}",
        "int",
        {"min": "2", "max": "10", "step": "2", "distribution": "uniform"},
    ),
    "double": (
        "C: {min: 0.1, max: 10}",
        "double",
        {"min": "0.1", "max": "10.0", "distribution": "uniform"},
    ),
    "double-log": (
        "C: {min: 0.0001, max: 1, log: true}",
        "double",
        {"min": "0.0001", "max": "1.0", "distribution": "logUniform"},
    ),
    "int-log": (
        "depth: {min: 1, max: 64, log: true}",
        "int",
        {"min": "1", "max": "64", "distribution": "logUniform"},
    ),
    "double-normal": (
        "C: {min: 1, max: 5, distribution: normal}",
        "double",
        {"min": "1.0", "max": "5.0", "distribution": "normal"},
    ),
    "discrete-int": ("batch: [16, 32, 64]", "discrete", {"list": ["16", "32", "64"]}),
    "discrete-float": ("C: [0.1, 1, 10]", "discrete", {"list": ["0.1", "1.0", "10.0"]}),
    "categorical-str": (
        "kernel: [rbf, linear, poly]",
        "categorical",
        {"list": ["rbf", "linear", "poly"]},
    ),
    "categorical-bool": ("shrinking: [true, false]", "categorical", {"list": ["true", "false"]}),
}


@pytest.mark.parametrize("kind", list(PARAMETER_KINDS))
def test_parameter_kinds(tmp_path: Path, kind: str) -> None:
    search, ptype, feasible = PARAMETER_KINDS[kind]
    name = search.split(":")[0]
    tuning = (
        f"  objective: accuracy\n  algorithm: random\n  maxTrials: 3\n  search:\n    {search}\n"
    )
    exp = make(make_project(tmp_path, tuning))
    assert exp["spec"]["parameters"] == [
        {"name": name, "parameterType": ptype, "feasibleSpace": feasible}
    ]
    option = "--string-param" if name == "kernel" else "--param"
    assert f"{option}={name}=${{trialParameters.{name}}}" in container(exp)["args"]
    assert check_experiment(exp) == []


ALGORITHMS = {
    "random": (
        "random",
        "  settings: {random_state: 7}\n",
        "    C: {min: 0.1, max: 100, log: true}\n    kernel: [rbf, linear]\n",
        [{"name": "random_state", "value": "7"}],
    ),
    "grid": (
        "grid",
        "  maxTrials: 6\n",
        "    C: {min: 1, max: 3, step: 1}\n    kernel: [rbf, linear]\n",
        None,
    ),
    "tpe": (
        "tpe",
        "  settings: {gamma: 0.25, n_ei_candidates: 12, prior_weight: 1.5}\n",
        "    C: {min: 0.1, max: 100, log: true}\n    depth: {min: 1, max: 8}\n",
        [
            {"name": "gamma", "value": "0.25"},
            {"name": "n_EI_candidates", "value": "12"},
            {"name": "prior_weight", "value": "1.5"},
        ],
    ),
    "multivariate-tpe": (
        "multivariate-tpe",
        "  settings: {n_startup_trials: 5, n_ei_candidates: 24}\n",
        "    C: {min: 0.1, max: 100, log: true}\n    gamma: {min: 0.0001, max: 0.01}\n",
        [{"name": "n_startup_trials", "value": "5"}, {"name": "n_ei_candidates", "value": "24"}],
    ),
    "bayesianoptimization": (
        "bayesianoptimization",
        "  settings: {base_estimator: GP, acq_func: EI, n_initial_points: 4}\n",
        "    C: {min: 0.1, max: 100, log: true}\n    depth: {min: 1, max: 8}\n",
        [
            {"name": "base_estimator", "value": "GP"},
            {"name": "acq_func", "value": "EI"},
            {"name": "n_initial_points", "value": "4"},
        ],
    ),
    "cmaes": (
        "cmaes",
        "  settings: {sigma: 0.5, restart_strategy: ipop}\n",
        "    C: {min: 0.1, max: 100}\n    gamma: {min: 0.0001, max: 0.01}\n",
        [{"name": "sigma", "value": "0.5"}, {"name": "restart_strategy", "value": "ipop"}],
    ),
    "sobol": ("sobol", "", "    C: {min: 0.1, max: 100}\n    depth: {min: 1, max: 8}\n", None),
    "hyperband": (
        "hyperband",
        "  parallelTrials: 9\n  settings: {r_l: 9, resource_name: depth, eta: 3}\n",
        "    depth: {min: 1, max: 9}\n    C: {min: 0.1, max: 100}\n",
        [
            {"name": "r_l", "value": "9"},
            {"name": "resource_name", "value": "depth"},
            {"name": "eta", "value": "3"},
        ],
    ),
}


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_algorithms(tmp_path: Path, algorithm: str) -> None:
    katib_name, extra, search, settings = ALGORITHMS[algorithm]
    if "maxTrials" not in extra:
        extra = "  maxTrials: 12\n" + extra
    tuning = f"  objective: accuracy\n  algorithm: {algorithm}\n{extra}  search:\n{search}"
    project = make_project(tmp_path, tuning)
    exp = make(project)
    expected: dict[str, Any] = {"algorithmName": katib_name}
    if settings:
        expected["algorithmSettings"] = settings
    assert exp["spec"]["algorithm"] == expected
    assert check_experiment(exp) == []
    assert validate_tuning(project) == []


def test_every_nbflow_setting_has_a_katib_name() -> None:
    # nbflow's settings (shared with `nbflow tune`) that Katib v0.19 has no equivalent for
    missing = {
        (alg, key)
        for alg, keys in ALGORITHM_SETTINGS.items()
        for key in keys
        if katib_setting(alg, key) is None
    }
    assert missing == set()
    assert set(KATIB_SETTINGS) == set(ALGORITHM_SETTINGS)


def test_a_setting_katib_lacks_is_a_validation_error(tmp_path: Path) -> None:
    tuning = BASE_TUNING + "  settings: {n_startup_trials: 5}\n"
    with pytest.raises(AssertionError, match="`n_startup_trials` is not a setting of the tpe"):
        make_project(tmp_path, tuning)


def test_validate_reports_what_katib_would_reject(tmp_path: Path) -> None:
    make_project(tmp_path, name="9digits")
    report, project = validate_manifest(tmp_path / "nbflow.yaml")
    assert project is None
    [d] = report.errors
    assert d.code == "NBF511" and d.message.startswith("metadata.name `9digits-00000000`")
    assert d.location.line is not None


def test_shell_unsafe_categorical_values(tmp_path: Path) -> None:
    tuning = BASE_TUNING.replace(
        "kernel: [rbf, linear]", "kernel: [rbf, 'two words', 'a;b', \"it's\"]"
    )
    project = make_project(tmp_path, tuning)
    with pytest.raises(KatibError) as info:
        make(project)
    assert len(info.value.problems) == 3
    assert "'two words', which holds a space" in info.value.problems[0]
    assert "`;`" in info.value.problems[1] and "`'`" in info.value.problems[2]
    assert validate_tuning(project) == info.value.problems


def test_a_name_katib_refuses(tmp_path: Path) -> None:
    project = make_project(tmp_path, name="9digits")
    [problem] = validate_tuning(project)
    assert problem.startswith("metadata.name `9digits-00000000`: Katib wants")
    with pytest.raises(KatibError):
        experiment_yaml(project, version=VERSION, content_hash=HASH, snapshot=SNAPSHOT)


def test_timeout_sums_step_timeouts_with_retries(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        train="    timeout: 30m\n    retries: 2",
        evaluate="    timeout: 5m",
    )
    expected = 30 * 60 * 3 + 5 * 60 + TRIAL_OVERHEAD
    assert f"--timeout={expected}" in container(make(project))["args"]


def test_warnings_for_what_katib_does_differently(tmp_path: Path) -> None:
    tuning = BASE_TUNING.replace("algorithm: tpe", "algorithm: cmaes")
    warnings = tuning_warnings(make_project(tmp_path / "a", tuning))
    assert len(warnings) == 2 and all(
        "cmaes ignores distribution `logUniform`" in w for w in warnings
    )
    tuning = BASE_TUNING.replace("algorithm: tpe", "algorithm: bayesianoptimization").replace(
        "gamma: {min: 0.0001, max: 0.01, log: true}", "gamma: {min: 0.0001, max: 0.01}"
    )
    exp = make(make_project(tmp_path / "b", tuning))
    [warning] = experiment_warnings(exp)
    assert "`gamma`" in warning and "log scale" in warning


# -- output ------------------------------------------------------------------------------------


def test_yaml_is_deterministic_and_loads_back(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    one = experiment_yaml(project, version=VERSION, content_hash=HASH, snapshot=SNAPSHOT)
    two = experiment_yaml(project, version=VERSION, content_hash=HASH, snapshot=SNAPSHOT)
    assert one == two
    assert yaml.safe_load(one) == make(project)
    assert one.startswith("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\n")


def test_no_secret_in_the_output(tmp_path: Path) -> None:
    text = experiment_yaml(
        make_project(tmp_path), version=VERSION, content_hash=HASH, snapshot=SNAPSHOT
    )
    lowered = text.lower()
    for word in ("bearer", "authorization", "password", "secretkeyref", "secretname", "env:"):
        assert word not in lowered
    # the KFP credential is a projected, short-lived service-account token, never a value
    assert "serviceAccountToken:" in text and "expirationSeconds: 7200" in text


def test_katib_models_accept_it(base: dict[str, Any]) -> None:
    from kubeflow_katib_api.models import IoK8sApiCoreV1PodTemplateSpec, V1beta1Experiment

    # from_dict drops unknown keys: a lossless round trip means every field is Katib's
    model = V1beta1Experiment.from_dict(copy.deepcopy(base))
    assert model is not None and model.to_dict() == base
    pod = base["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]
    pod_model = IoK8sApiCoreV1PodTemplateSpec.from_dict(copy.deepcopy(pod))
    assert pod_model is not None and pod_model.to_dict() == pod
    assert set(base["spec"]["trialTemplate"]["trialSpec"]["spec"]) == {"backoffLimit", "template"}


SAMPLES = {"C": "0.0123", "gamma": "1e-05", "depth": "7", "kernel": "linear"}


def _substitute(exp: dict[str, Any], values: dict[str, str]) -> list[str]:
    """The primary container's words after Katib's substitution of trialParameters."""
    words = [*container(exp)["command"], *container(exp)["args"]]
    values = {**values, RUN_NAME_PARAMETER: "digits-0a1b2c3d-x7kq2m4z"}
    out = []
    for w in words:
        for name, v in values.items():
            w = w.replace(f"${{trialParameters.{name}}}", v)
        out.append(w)
    return out


def test_args_survive_katib_sh_wrapping(base: dict[str, Any]) -> None:
    words = _substitute(base, SAMPLES)
    # Katib joins the words with spaces and hands the line to `sh -c`, quoting nothing
    line = "printf '%s\\n' " + " ".join(words)
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == words
    assert shlex.split(" ".join(words)) == words


def test_args_parse_with_the_launcher(base: dict[str, Any]) -> None:
    words = _substitute(base, {**SAMPLES, "kernel": "true"})
    options = parse_options(words[2:])
    assert options.pipeline_name == "digits" and options.version_name == "digits-0a1b2c3d"
    assert options.experiment_name == "digits-0a1b2c3d"
    assert options.run_name == "digits-0a1b2c3d-x7kq2m4z"
    # a str parameter stays a string even when it reads as JSON
    assert options.parameters == {"C": 0.0123, "gamma": 1e-05, "depth": 7, "kernel": "true"}
    assert options.metrics == ("accuracy", "loss")
    assert options.timeout == DEFAULT_TRIAL_TIMEOUT


# -- the offline check: one case per rule, each breaking the generated Experiment --------------

Mutate = Callable[[dict[str, Any]], None]


def _tt(e: dict[str, Any]) -> dict[str, Any]:
    return e["spec"]["trialTemplate"]


def _args(e: dict[str, Any]) -> list[str]:
    return container(e)["args"]


def _set(path: str, value: Any) -> Mutate:
    def mutate(e: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = e
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


def _algorithm(name: str, settings: list[dict[str, str]] | None = None) -> Mutate:
    def mutate(e: dict[str, Any]) -> None:
        e["spec"]["algorithm"] = {"algorithmName": name}
        if settings:
            e["spec"]["algorithm"]["algorithmSettings"] = settings

    return mutate


def _drop_parameters(*names: str) -> Mutate:
    def mutate(e: dict[str, Any]) -> None:
        e["spec"]["parameters"] = [p for p in e["spec"]["parameters"] if p["name"] not in names]
        _tt(e)["trialParameters"] = [p for p in _tt(e)["trialParameters"] if p["name"] not in names]
        container(e)["args"] = [
            a for a in _args(e) if not any(f"trialParameters.{n}}}" in a for n in names)
        ]

    return mutate


def _both(*mutations: Mutate) -> Mutate:
    def mutate(e: dict[str, Any]) -> None:
        for m in mutations:
            m(e)

    return mutate


# parameters of the base: 0 C (double, log), 1 gamma (double, log), 2 depth (int), 3 kernel
RULES: dict[str, tuple[Mutate, str]] = {
    "name-too-long": (_set("metadata.name", "a" * 41), "at most 40 characters"),
    "name-starts-with-digit": (_set("metadata.name", "1digits-0a1b2c3d"), "starting with a letter"),
    "name-uppercase": (_set("metadata.name", "Digits-0a1b2c3d"), "metadata.name"),
    "namespace": (_set("metadata.namespace", "Team_A"), "not a DNS-1123 label"),
    "label-value": (
        lambda e: e["metadata"]["labels"].update({"nbflow.dev/pipeline": "a b"}),
        "not a valid label value",
    ),
    "api-version": (_set("apiVersion", "kubeflow.org/v1alpha3"), "apiVersion/kind"),
    "parallel-more-than-max": (
        _set("spec.parallelTrialCount", 13),
        "parallelTrialCount (13) is more than",
    ),
    "failed-more-than-max": (
        _set("spec.maxFailedTrialCount", 13),
        "maxFailedTrialCount (13) is more than",
    ),
    "default-parallel-more-than-max": (
        _both(lambda e: e["spec"].pop("parallelTrialCount"), _set("spec.maxTrialCount", 2)),
        "parallelTrialCount (3) is more than spec.maxTrialCount (2)",
    ),
    "max-trials-zero": (
        _set("spec.maxTrialCount", 0),
        "maxTrialCount: must be an integer of at least 1",
    ),
    "resume-policy": (_set("spec.resumePolicy", "Always"), "resumePolicy"),
    "objective-type": (_set("spec.objective.type", "max"), "must be minimize or maximize"),
    "objective-name-missing": (
        _set("spec.objective.objectiveMetricName", ""),
        "objectiveMetricName: missing",
    ),
    "objective-in-additional": (
        _set("spec.objective.additionalMetricNames", ["loss", "accuracy"]),
        "must not hold the objective",
    ),
    "metric-name-filter": (
        _set("spec.objective.additionalMetricNames", ["lo ss"]),
        "StdOut collector's filter",
    ),
    "goal-not-number": (_set("spec.objective.goal", "0.9"), "goal `0.9`: must be a number"),
    "unknown-algorithm": (_algorithm("bayesian"), "algorithmName `bayesian`"),
    "nas-algorithm": (_algorithm("darts"), "neural architectures"),
    "unknown-setting": (
        _algorithm("tpe", [{"name": "n_startup_trials", "value": "5"}]),
        "has no setting `n_startup_trials`",
    ),
    "setting-value": (_algorithm("tpe", [{"name": "gamma", "value": "2"}]), "between 0 and 1"),
    "setting-twice": (
        _algorithm(
            "random",
            [{"name": "random_state", "value": "1"}, {"name": "random_state", "value": "2"}],
        ),
        "set twice",
    ),
    "setting-not-string": (
        _algorithm("random", [{"name": "random_state", "value": 1}]),
        "a string value",
    ),
    "no-parameters": (_set("spec.parameters", []), "spec.parameters: missing"),
    "parameter-type": (_set("spec.parameters.0.parameterType", "float"), "parameterType `float`"),
    "parameter-twice": (_set("spec.parameters.1.name", "C"), "the name `C` appears twice"),
    "int-without-max": (
        lambda e: e["spec"]["parameters"][2]["feasibleSpace"].pop("max"),
        "needs feasibleSpace.min and max",
    ),
    "int-with-list": (
        _set("spec.parameters.2.feasibleSpace.list", ["1", "2"]),
        "not feasibleSpace.list",
    ),
    "int-not-integer": (_set("spec.parameters.2.feasibleSpace.min", "1.5"), "must be integers"),
    "min-more-than-max": (
        _set("spec.parameters.2.feasibleSpace.min", "9"),
        "min 9 is greater than max 8",
    ),
    "step-not-positive": (
        _set("spec.parameters.2.feasibleSpace.step", "0"),
        "step must be positive",
    ),
    "min-not-string": (
        _set("spec.parameters.0.feasibleSpace.min", 0.1),
        "feasibleSpace.min must be a string",
    ),
    "distribution": (
        _set("spec.parameters.0.feasibleSpace.distribution", "loguniform"),
        "distribution `loguniform`",
    ),
    "log-nonpositive": (
        _set("spec.parameters.0.feasibleSpace.min", "0"),
        "logUniform distribution needs min > 0",
    ),
    "categorical-with-min": (
        _set("spec.parameters.3.feasibleSpace.min", "1"),
        "feasibleSpace.list only",
    ),
    "categorical-empty": (
        _set("spec.parameters.3.feasibleSpace.list", []),
        "non-empty feasibleSpace.list",
    ),
    "list-not-strings": (
        _set("spec.parameters.3.feasibleSpace.list", ["rbf", 3]),
        "list of strings",
    ),
    "discrete-not-numbers": (
        _set("spec.parameters.3.parameterType", "discrete"),
        "holds numbers only",
    ),
    "grid-double-without-step": (_algorithm("grid"), "grid search needs a step for a double"),
    "grid-too-few-combinations": (
        _both(_algorithm("grid"), _drop_parameters("C", "gamma"), _set("spec.maxTrialCount", 20)),
        "spec.maxTrialCount (20) is more than the grid's 16 combinations",
    ),
    "cmaes-one-numeric": (
        _both(_algorithm("cmaes"), _drop_parameters("gamma", "depth")),
        "cmaes needs two or more",
    ),
    "hyperband-settings": (_algorithm("hyperband"), "needs the settings r_l and resource_name"),
    "hyperband-resource": (
        _algorithm(
            "hyperband",
            [{"name": "r_l", "value": "3"}, {"name": "resource_name", "value": "epochs"}],
        ),
        "resource_name `epochs` is not a parameter",
    ),
    "hyperband-parallel": (
        _algorithm(
            "hyperband",
            [{"name": "r_l", "value": "27"}, {"name": "resource_name", "value": "depth"}],
        ),
        "needs parallelTrialCount >= 27",
    ),
    "hyperband-eta-one": (
        _algorithm(
            "hyperband",
            [
                {"name": "r_l", "value": "3"},
                {"name": "resource_name", "value": "depth"},
                {"name": "eta", "value": "1.5"},
            ],
        ),
        "eta must be at least 2",
    ),
    "optuna-normal": (
        _both(
            _algorithm("multivariate-tpe"),
            _set("spec.parameters.0.feasibleSpace.distribution", "normal"),
        ),
        "would leave the parameter out",
    ),
    "bayesian-double-at-zero": (
        _both(
            _algorithm("bayesianoptimization"),
            _set("spec.parameters.1.feasibleSpace.min", "0"),
            _set("spec.parameters.1.feasibleSpace.distribution", "uniform"),
        ),
        "min must be > 0",
    ),
    "collector-kind": (
        _set("spec.metricsCollectorSpec.collector.kind", "None"),
        "collector.kind `None`",
    ),
    "collector-custom": (
        _set("spec.metricsCollectorSpec.collector.kind", "Custom"),
        "customCollector",
    ),
    "trial-parameter-unused": (
        lambda e: _tt(e)["trialParameters"].append(
            {"name": "seed", "reference": "${trialSpec.Namespace}"}
        ),
        "`${trialParameters.seed}` is not used",
    ),
    "placeholder-undeclared": (
        lambda e: _args(e).append("--param=x=${trialParameters.nope}"),
        "`${trialParameters.nope}` is not declared",
    ),
    "trial-parameter-reference": (
        _set("spec.trialTemplate.trialParameters.0.reference", "c"),
        "`c` is neither a parameter",
    ),
    "trial-parameter-braces": (
        _set("spec.trialTemplate.trialParameters.0.name", "{C}"),
        "without `{` or `}`",
    ),
    "trial-parameter-twice": (
        lambda e: _tt(e)["trialParameters"].append(dict(_tt(e)["trialParameters"][0])),
        "the name `C` appears twice",
    ),
    "parameter-not-passed": (
        lambda e: _tt(e)["trialParameters"].pop(0),
        "`C`: no trialParameter passes it",
    ),
    "trial-metadata-name": (
        _set("spec.trialTemplate.trialSpec.metadata", {"name": "x"}),
        "metadata.name and metadata.namespace must be left out",
    ),
    "trial-metadata-namespace": (
        _set("spec.trialTemplate.trialSpec.metadata", {"namespace": "x"}),
        "must be left out",
    ),
    "primary-container": (
        _set("spec.trialTemplate.primaryContainerName", "main"),
        "`main` names no container",
    ),
    "trial-kind": (
        _set("spec.trialTemplate.trialSpec.kind", "Pod"),
        "not among Katib's default trialResources",
    ),
    "trial-without-kind": (
        lambda e: _tt(e)["trialSpec"].pop("kind"),
        "apiVersion and kind must be given",
    ),
    "trial-source": (
        _set("spec.trialTemplate.configMap", {"configMapName": "t"}),
        "exactly one of trialSpec and configMap",
    ),
    "restart-policy": (
        _set("spec.trialTemplate.trialSpec.spec.template.spec.restartPolicy", "Always"),
        "restartPolicy must be Never or OnFailure",
    ),
    "shell-arg": (lambda e: _args(e).append("--run-name=my run"), "holds a space"),
    "shell-metacharacter": (lambda e: _args(e).append("--metric=a;rm"), "holds `;`"),
    "shell-categorical-value": (
        _set("spec.parameters.3.feasibleSpace.list", ["rbf", "$(id)"]),
        "`${trialParameters.kernel}` can be '$(id)'",
    ),
}


def test_the_base_passes(base: dict[str, Any]) -> None:
    assert check_experiment(base) == [] and experiment_warnings(base) == []


@pytest.mark.parametrize("rule", list(RULES))
def test_check_catches(base: dict[str, Any], rule: str) -> None:
    mutate, expected = RULES[rule]
    exp = copy.deepcopy(base)
    mutate(exp)
    problems = check_experiment(exp)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "junk",
    [
        None,
        [],
        {},
        {"spec": []},
        {"spec": {"parameters": "x", "trialTemplate": []}},
        {
            "metadata": 3,
            "spec": {
                "objective": {},
                "algorithm": {"algorithmName": "grid"},
                "parameters": [None, {"feasibleSpace": []}],
            },
        },
    ],
)
def test_check_never_raises(junk: Any) -> None:
    assert check_experiment(junk)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        out.extend(_paths(value, (*path, key)))
    return out


def test_check_never_raises_on_a_corrupted_experiment(base: dict[str, Any]) -> None:
    for path in _paths(base):
        for junk in (None, 0, -1, "", "x y", [], {}, [None], {"a": []}):
            exp = copy.deepcopy(base)
            node: Any = exp
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = junk
            assert isinstance(check_experiment(exp), list)
            assert isinstance(experiment_warnings(exp), list)


@fuzz_settings(300)
@given(
    lo=st.floats(-1e3, 1e3, allow_nan=False),
    span=st.floats(0, 1e3, allow_nan=False),
    step=st.floats(1e-3, 1e2, allow_nan=False),
)
def test_grid_points_of_a_double_match_katib(lo: float, span: float, step: float) -> None:
    np = pytest.importorskip("numpy")
    from nbflow.check.katib_rules import _combinations

    hi = lo + span
    # Katib's search_space.py: numpy.arange(min, max + step, step), less a last point past max
    points = np.arange(lo, hi + step, step)
    if points[-1] > hi:
        points = points[:-1]
    fs = {"min": repr(lo), "max": repr(hi), "step": repr(step)}
    assert _combinations({"parameterType": "double", "feasibleSpace": fs}) == len(points)
