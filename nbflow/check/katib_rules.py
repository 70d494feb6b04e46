"""The offline check of a Katib Experiment (`kubeflow.org/v1beta1`): the rules Katib applies.

Katib's CRD schema is open, so a bad Experiment is only refused by Katib's admission webhook, or
later, when the suggestion service starts. `check_experiment` applies those rules offline. They
were read from Katib v0.19.0's sources: `pkg/webhook/v1beta1/experiment/validator`, the
suggestion services under `pkg/suggestion/v1beta1` and the default `katib-config.yaml`.
`experiment_warnings` names what Katib accepts but does differently from what it is asked.

The Experiment itself is generated in `nbflow.generate.katib`, which shares Katib's facts from here
(API_VERSION, KATIB_SETTINGS, the shell-safe alphabet).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from nbflow.check.rules import EXPERIMENT_NAME_MAX

API_VERSION = "kubeflow.org/v1beta1"

# The suggestion services of Katib v0.19's default katib-config and the settings each accepts,
# with Katib's own names. Values are strings in the Experiment; the kind says what they parse to.
KATIB_SETTINGS: dict[str, dict[str, str]] = {
    "random": {"random_state": "int>=0"},  # hyperopt
    "tpe": {  # hyperopt
        "gamma": "float(0,1)",
        "prior_weight": "float>0",
        "n_EI_candidates": "int>0",
        "random_state": "int>=0",
    },
    "grid": {"random_state": "int>=0"},  # optuna
    "multivariate-tpe": {  # optuna
        "n_startup_trials": "int>=0",
        "n_ei_candidates": "int>=0",
        "random_state": "int>=0",
    },
    "bayesianoptimization": {  # skopt
        "base_estimator": "GP|RF|ET|GBRT",
        "n_initial_points": "int>=0",
        "acq_func": "gp_hedge|LCB|EI|PI|EIps|PIps",
        "acq_optimizer": "auto|sampling|lbfgs",
        "random_state": "int>=0",
    },
    "cmaes": {  # goptuna
        "random_state": "int",
        "sigma": "float",
        "restart_strategy": "none|ipop|bipop",
    },
    "sobol": {},  # goptuna
    "hyperband": {"r_l": "float>0", "resource_name": "str", "eta": "float"},
}
KATIB_ALGORITHMS = (*KATIB_SETTINGS, "pbt", "enas", "darts")
# Services that ignore `distribution`: cmaes and sobol (goptuna), hyperband, and skopt, which
# searches every double on a log scale. grid searches the points min, min+step, ..., max.
IGNORES_DISTRIBUTION = ("grid", "cmaes", "sobol", "hyperband", "bayesianoptimization")
# optuna (grid, multivariate-tpe) in v0.19 silently leaves normal/logNormal parameters out
OPTUNA = ("grid", "multivariate-tpe")

PARAMETER_TYPES = ("int", "double", "categorical", "discrete")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
COLLECTORS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push")
RESUME_POLICIES = ("", "Never", "LongRunning", "FromVolume")
# katib-config's default trialResources (Kind.version.group)
TRIAL_RESOURCES = (
    "Job.v1.batch",
    "TrainJob.v1alpha1.trainer.kubeflow.org",
    "TFJob.v1.kubeflow.org",
    "PyTorchJob.v1.kubeflow.org",
    "MPIJob.v1.kubeflow.org",
    "XGBoostJob.v1.kubeflow.org",
)
CONDITIONS_DEFAULTED = ("Job", "TrainJob", "TFJob", "PyTorchJob", "MPIJob", "XGBoostJob")
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")

NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
METRIC_NAME = re.compile(r"^[\w|-]+$")  # the name group of the StdOut collector's filter
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
PLACEHOLDER = re.compile(r"\$\{trialParameters\..+?\}")  # Katib's own pattern
META_REFERENCE = re.compile(r"^\$\{trialSpec\.(.+?)\}$")
# Characters `sh -c` takes literally in a word. Katib joins the primary container's command and
# args with spaces and runs them with `sh -c`, quoting nothing; values also go into the trial
# template's JSON text, so quotes and backslashes are out too.
SHELL_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")
SHELL_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_@%+=:,./-]")


def unsafe_chars(text: str) -> str:
    """The characters of `text` that `sh -c` would interpret, as a message lists them."""
    chars = sorted(set(SHELL_UNSAFE_CHAR.findall(text)))
    return ", ".join(
        "a space" if c == " " else f"`{c if c.isprintable() else repr(c)[1:-1]}`" for c in chars
    )


def check_experiment(exp: dict[str, Any]) -> list[str]:
    """Problems Katib (v0.19) would refuse in `exp`, at admission or when its suggestion
    service starts, plus arguments that Katib's `sh -c` wrapping would break. [] means none."""
    if not isinstance(exp, dict):
        return ["an Experiment is a mapping"]
    spec = exp.get("spec")
    if not isinstance(spec, dict):
        return ["spec: missing"]
    out: list[str] = []
    for check in _CHECKS:
        out.extend(check(exp, spec))
    return out


def experiment_warnings(exp: dict[str, Any]) -> list[str]:
    """What Katib accepts but does differently from what the Experiment says."""
    spec = exp.get("spec") if isinstance(exp, dict) else None
    if not isinstance(spec, dict):
        return []
    algorithm = _str(_get(spec, "algorithm", "algorithmName"))
    out = []
    for i, p in _parameters(spec):
        dist = _get(p, "feasibleSpace", "distribution")
        ptype = p.get("parameterType")
        if ptype not in ("int", "double"):
            continue
        where = f"spec.parameters[{i}] `{p.get('name')}`"
        if algorithm == "bayesianoptimization" and ptype == "double":
            if dist == "logUniform":
                continue
            out.append(
                f"{where}: Katib's bayesianoptimization (skopt) searches every double on a log "
                f"scale, not `{dist or 'uniform'}`"
            )
        elif algorithm in IGNORES_DISTRIBUTION and dist not in (None, "", "uniform"):
            how = "tries min, min+step, ..., max" if algorithm == "grid" else "searches uniformly"
            out.append(
                f"{where}: Katib's {algorithm} ignores distribution `{dist}` and {how}; "
                "random and tpe honour every distribution"
            )
    return out


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _parameters(spec: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    params = spec.get("parameters")
    if not isinstance(params, list):
        return []
    return [(i, p) for i, p in enumerate(params) if isinstance(p, dict)]


def _number(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _integer(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _check_metadata(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    if exp.get("apiVersion") != API_VERSION or exp.get("kind") != "Experiment":
        yield f"apiVersion/kind: must be {API_VERSION} Experiment"
    meta = exp.get("metadata")
    name = _str(_get(meta, "name"))
    if not NAME.fullmatch(name) or len(name) > EXPERIMENT_NAME_MAX:
        yield (
            f"metadata.name `{name}`: Katib wants lowercase letters, digits and `-`, starting "
            f"with a letter and ending with a letter or digit, at most {EXPERIMENT_NAME_MAX} "
            "characters"
        )
    ns = _get(meta, "namespace")
    if ns is not None and (not isinstance(ns, str) or not DNS_LABEL.fullmatch(ns) or len(ns) > 63):
        yield f"metadata.namespace `{ns}` is not a DNS-1123 label"
    labels = _get(meta, "labels") or {}
    if not isinstance(labels, dict):
        yield "metadata.labels: must be a mapping"
        return
    for k, v in labels.items():
        if not isinstance(k, str) or len(k.rsplit("/", 1)[-1]) > 63 or not LABEL_KEY.fullmatch(k):
            yield f"metadata.labels: `{k}` is not a valid label key"
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.fullmatch(v):
            yield f"metadata.labels: the value of `{k}` (`{v}`) is not a valid label value"


def _check_counts(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    counts = {}
    for key, least in (("maxTrialCount", 1), ("parallelTrialCount", 1), ("maxFailedTrialCount", 0)):
        if key not in spec:
            continue
        v = _int(spec[key])
        if v is None or v < least:
            yield f"spec.{key}: must be an integer of at least {least}, not `{spec[key]}`"
        else:
            counts[key] = v
    counts.setdefault("parallelTrialCount", 3)  # Katib's default, set before it validates
    if "maxTrialCount" in counts:
        for key in ("parallelTrialCount", "maxFailedTrialCount"):
            if key in counts and counts[key] > counts["maxTrialCount"]:
                yield (
                    f"spec.{key} ({counts[key]}) is more than spec.maxTrialCount "
                    f"({counts['maxTrialCount']})"
                )
    policy = spec.get("resumePolicy", "")
    if policy not in RESUME_POLICIES:
        yield f"spec.resumePolicy `{policy}`: must be one of {', '.join(RESUME_POLICIES[1:])}"


def _check_objective(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    obj = spec.get("objective")
    if not isinstance(obj, dict):
        yield "spec.objective: missing"
        return
    if obj.get("type") not in ("minimize", "maximize"):
        yield f"spec.objective.type `{obj.get('type')}`: must be minimize or maximize"
    goal = obj.get("goal")
    if goal is not None and (isinstance(goal, bool) or not isinstance(goal, int | float)):
        yield f"spec.objective.goal `{goal}`: must be a number"
    name = _str(obj.get("objectiveMetricName"))
    if not name:
        yield "spec.objective.objectiveMetricName: missing"
    extra = obj.get("additionalMetricNames") or []
    if not isinstance(extra, list):
        yield "spec.objective.additionalMetricNames: must be a list"
        return
    if name and name in extra:
        yield f"spec.objective.additionalMetricNames: must not hold the objective `{name}`"
    if len(set(map(str, extra))) != len(extra):
        yield "spec.objective.additionalMetricNames: a name appears twice"
    if _get(spec, "metricsCollectorSpec", "source", "filter") is None:
        for m in [name, *extra] if name else extra:
            if not isinstance(m, str) or not METRIC_NAME.fullmatch(m):
                yield f"metric `{m}`: the StdOut collector's filter only reads names of `[\\w|-]+`"


def _check_algorithm(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    name = _get(spec, "algorithm", "algorithmName")
    if not name:
        yield "spec.algorithm.algorithmName: missing"
        return
    if name not in KATIB_ALGORITHMS:
        yield (
            f"spec.algorithm.algorithmName `{name}`: Katib's default configuration has "
            f"{', '.join(KATIB_ALGORITHMS)}"
        )
        return
    if name in ("enas", "darts"):
        yield f"spec.algorithm: {name} searches neural architectures (spec.nasConfig), not parameters"
    settings = _get(spec, "algorithm", "algorithmSettings") or []
    if not isinstance(settings, list) or name not in KATIB_SETTINGS:
        return
    allowed = KATIB_SETTINGS[name]
    seen: set[str] = set()
    for i, s in enumerate(settings):
        key, value = _get(s, "name"), _get(s, "value")
        where = f"spec.algorithm.algorithmSettings[{i}]"
        if not isinstance(key, str) or not isinstance(value, str):
            yield f"{where}: needs a name and a string value"
            continue
        if key in seen:
            yield f"{where}: `{key}` is set twice"
        seen.add(key)
        if key not in allowed:
            yield (
                f"{where}: Katib's {name} algorithm has no setting `{key}` "
                f"(it accepts: {', '.join(allowed) or 'none'})"
            )
        elif not _setting_ok(allowed[key], value):
            yield f"{where}: `{key}` must be {_kind_text(allowed[key])}, not `{value}`"


def _setting_ok(kind: str, value: str) -> bool:
    if "|" in kind:
        return value in kind.split("|")
    if kind == "str":
        return bool(value)
    if kind.startswith("int"):
        n = _integer(value)
        return n is not None and (kind == "int" or n >= (1 if kind == "int>0" else 0))
    x = _number(value)
    if x is None:
        return False
    return kind == "float" or (kind == "float>0" and x > 0) or (kind == "float(0,1)" and 0 < x < 1)


def _kind_text(kind: str) -> str:
    return {
        "int": "an integer",
        "int>=0": "an integer >= 0",
        "int>0": "an integer > 0",
        "float": "a number",
        "float>0": "a number > 0",
        "float(0,1)": "a number between 0 and 1",
        "str": "a non-empty string",
    }.get(kind, "one of " + ", ".join(kind.split("|")))


def _check_parameters(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    params = spec.get("parameters")
    if not isinstance(params, list) or not params:
        if spec.get("nasConfig") is None:
            yield "spec.parameters: missing (or spec.nasConfig)"
        return
    names: set[str] = set()
    for i, p in enumerate(params):
        where = f"spec.parameters[{i}]"
        if not isinstance(p, dict):
            yield f"{where}: must be a mapping"
            continue
        name, ptype, fs = p.get("name"), p.get("parameterType"), p.get("feasibleSpace")
        if not isinstance(name, str) or not name:
            yield f"{where}: missing name"
        elif name in names:
            yield f"{where}: the name `{name}` appears twice"
        else:
            names.add(name)
            where = f"{where} `{name}`"
        if ptype not in PARAMETER_TYPES:
            yield f"{where}: parameterType `{ptype}` must be one of {', '.join(PARAMETER_TYPES)}"
        if not isinstance(fs, dict) or not fs:
            yield f"{where}: feasibleSpace: missing"
            continue
        for key in ("min", "max", "step", "distribution"):
            if key in fs and not isinstance(fs[key], str):
                yield f"{where}: feasibleSpace.{key} must be a string, not `{fs[key]!r}`"
        items = fs.get("list")
        if items is not None and (
            not isinstance(items, list) or any(not isinstance(x, str) for x in items)
        ):
            yield f"{where}: feasibleSpace.list must be a list of strings"
            continue
        dist = fs.get("distribution")
        if dist not in (None, "", *DISTRIBUTIONS):
            yield f"{where}: distribution `{dist}` must be one of {', '.join(DISTRIBUTIONS)}"
        if ptype in ("int", "double"):
            yield from _check_range(where, ptype, fs, dist)
        elif ptype in ("categorical", "discrete"):
            if any(k in fs for k in ("min", "max", "step")):
                yield f"{where}: a {ptype} parameter takes feasibleSpace.list only, no min/max/step"
            if not items:
                yield f"{where}: a {ptype} parameter needs a non-empty feasibleSpace.list"
            elif ptype == "discrete" and any(_number(x) is None for x in items):
                yield f"{where}: a discrete list holds numbers only"


def _check_range(where: str, ptype: str, fs: dict[str, Any], dist: Any) -> Iterator[str]:
    a = "an int" if ptype == "int" else "a double"
    if "list" in fs:
        yield f"{where}: {a} parameter takes min and max, not feasibleSpace.list"
    if "min" not in fs or "max" not in fs:
        yield f"{where}: {a} parameter needs feasibleSpace.min and max"
        return
    if any(not isinstance(fs.get(k, ""), str) for k in ("min", "max", "step")):
        return  # reported: not a string
    parse = _integer if ptype == "int" else _number
    lo, hi = parse(fs["min"]), parse(fs["max"])
    step = parse(fs["step"]) if fs.get("step") else None
    if lo is None or hi is None or (fs.get("step") and step is None):
        kind = "integers" if ptype == "int" else "finite numbers"
        yield f"{where}: min, max and step of {a} parameter must be {kind}"
        return
    if lo > hi:
        yield f"{where}: min {fs['min']} is greater than max {fs['max']}"
    if step is not None and step <= 0:
        yield f"{where}: step must be positive"
    if dist in ("logUniform", "logNormal") and lo <= 0:
        yield f"{where}: a {dist} distribution needs min > 0"


def _combinations(p: dict[str, Any]) -> float:
    """How many points Katib's grid takes from one parameter (search_space.py)."""
    fs = p.get("feasibleSpace")
    if not isinstance(fs, dict):
        return math.inf
    if p.get("parameterType") in ("categorical", "discrete"):
        items = fs.get("list")
        return len(items) if isinstance(items, list) else math.inf
    lo, hi = _number(fs.get("min")), _number(fs.get("max"))
    step = _number(fs.get("step")) if fs.get("step") else None
    if lo is None or hi is None or lo > hi:
        return math.inf
    if p.get("parameterType") == "int":  # range(min, max + 1, step)
        stride = int(step or 1)
        return (int(hi) - int(lo)) // stride + 1 if stride >= 1 else math.inf
    if step is None or step <= 0:
        return math.inf
    q = (hi + step - lo) / step
    if not math.isfinite(q):
        return math.inf
    n = math.ceil(q)  # len(numpy.arange(min, max + step, step)), less a last point past max
    delta = (lo + step) - lo  # numpy fills start + i * (second - first)
    return n - 1 if lo + (n - 1) * delta > hi else n


def _check_search(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    """The rules each suggestion service applies when it starts."""
    algorithm = _get(spec, "algorithm", "algorithmName")
    params = _parameters(spec)
    numeric = [(i, p) for i, p in params if p.get("parameterType") in ("int", "double")]
    if algorithm == "grid":
        for i, p in numeric:
            if p.get("parameterType") == "double" and not _get(p, "feasibleSpace", "step"):
                yield f"spec.parameters[{i}] `{p.get('name')}`: grid search needs a step for a double"
        total = math.prod(_combinations(p) for _, p in params)
        most = _int(spec.get("maxTrialCount"))
        if math.isfinite(total) and most is not None and most > total:
            yield f"spec.maxTrialCount ({most}) is more than the grid's {int(total)} combinations"
    if algorithm == "cmaes" and len(numeric) < 2:
        yield "cmaes needs two or more int or double parameters"
    if algorithm in OPTUNA:
        for i, p in numeric:
            dist = _get(p, "feasibleSpace", "distribution")
            if dist in ("normal", "logNormal"):
                yield (
                    f"spec.parameters[{i}] `{p.get('name')}`: Katib's {algorithm} (optuna) "
                    f"does not support distribution `{dist}` and would leave the parameter out"
                )
    if algorithm == "bayesianoptimization":
        for i, p in numeric:
            lo = _number(_get(p, "feasibleSpace", "min"))
            if p.get("parameterType") == "double" and lo is not None and lo <= 0:
                yield (
                    f"spec.parameters[{i}] `{p.get('name')}`: Katib's bayesianoptimization "
                    "searches doubles on a log scale, so min must be > 0"
                )
    if algorithm == "hyperband":
        yield from _check_hyperband(spec, params)


def _check_hyperband(
    spec: dict[str, Any], params: list[tuple[int, dict[str, Any]]]
) -> Iterator[str]:
    settings = {
        _str(_get(s, "name")): _get(s, "value")
        for s in _list(_get(spec, "algorithm", "algorithmSettings"))
    }
    if "r_l" not in settings or "resource_name" not in settings:
        yield "hyperband needs the settings r_l and resource_name"
        return
    if _str(settings["resource_name"]) not in {_str(p.get("name")) for _, p in params}:
        yield f"hyperband's resource_name `{settings['resource_name']}` is not a parameter"
    r_l = _number(settings["r_l"])
    eta_value = _number(settings.get("eta", "3"))
    if r_l is None or r_l <= 0 or eta_value is None:
        return  # reported with the settings
    eta = int(eta_value) if int(eta_value) > 0 else 3
    if eta == 1:
        yield "hyperband's eta must be at least 2 (Katib divides by log(eta))"
        return
    s_max = int(math.log(r_l) / math.log(eta))
    need = math.ceil(eta**s_max)
    parallel = _int(spec.get("parallelTrialCount"))
    if parallel is None:
        parallel = 3  # Katib's default
    if parallel < need:
        yield f"hyperband with r_l={settings['r_l']} and eta={eta} needs parallelTrialCount >= {need}"


def _check_collector(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    mc = spec.get("metricsCollectorSpec")
    kind = _get(mc, "collector", "kind") if mc is not None else "StdOut"
    if kind not in COLLECTORS:
        yield f"metricsCollectorSpec.collector.kind `{kind}`: must be one of {', '.join(COLLECTORS)}"
        return
    path = _get(mc, "source", "fileSystemPath", "path")
    if kind in ("File", "TensorFlowEvent") and path is not None and not str(path).startswith("/"):
        yield f"metricsCollectorSpec.source.fileSystemPath.path `{path}` must be absolute"
    if kind == "Custom" and _get(mc, "collector", "customCollector") is None:
        yield "metricsCollectorSpec.collector.customCollector: needed by the Custom kind"


def _check_trial_template(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    tt = spec.get("trialTemplate")
    if not isinstance(tt, dict):
        yield "spec.trialTemplate: missing"
        return
    trial = tt.get("trialSpec")
    if (trial is None) == (tt.get("configMap") is None):
        yield "spec.trialTemplate: needs exactly one of trialSpec and configMap"
    if not isinstance(trial, dict):
        return  # a configMap template is checked where it lives
    primary = _str(tt.get("primaryContainerName"))
    if not primary:
        yield "spec.trialTemplate.primaryContainerName: missing"
    elif primary not in [_get(c, "name") for c in _containers(trial)]:
        yield f"spec.trialTemplate.primaryContainerName `{primary}` names no container of the trial"
    api, kind = _str(trial.get("apiVersion")), _str(trial.get("kind"))
    if not api or not kind:
        yield "spec.trialTemplate.trialSpec: apiVersion and kind must be given"
    else:
        group, _, ver = api.rpartition("/")
        resource = f"{kind}.{ver}.{group}" if group else f"{kind}.{ver}"
        if resource not in TRIAL_RESOURCES:
            yield (
                f"spec.trialTemplate.trialSpec: {kind} ({api}) is not among Katib's default "
                "trialResources; add it to katib-config"
            )
        if kind not in CONDITIONS_DEFAULTED and not (
            tt.get("successCondition") and tt.get("failureCondition")
        ):
            yield f"spec.trialTemplate: a {kind} trial needs successCondition and failureCondition"
    if _get(trial, "metadata", "name") or _get(trial, "metadata", "namespace"):
        yield "spec.trialTemplate.trialSpec: metadata.name and metadata.namespace must be left out"
    if kind == "Job" and api == "batch/v1":
        policy = _get(trial, "spec", "template", "spec", "restartPolicy")
        if policy not in ("Never", "OnFailure"):
            yield f"spec.trialTemplate.trialSpec: a Job's restartPolicy must be Never or OnFailure, not `{policy}`"
    yield from _check_trial_parameters(spec, tt, trial)


def _check_trial_parameters(
    spec: dict[str, Any], tt: dict[str, Any], trial: dict[str, Any]
) -> Iterator[str]:
    declared = tt.get("trialParameters")
    if not isinstance(declared, list):
        yield "spec.trialTemplate.trialParameters: missing"
        return
    params = {_str(p.get("name")) for _, p in _parameters(spec)}
    text = json.dumps(trial, sort_keys=True)  # Katib substitutes into the template's text
    names: set[str] = set()
    references: set[str] = set()
    for i, tp in enumerate(declared):
        where = f"spec.trialTemplate.trialParameters[{i}]"
        name, ref = _str(_get(tp, "name")), _str(_get(tp, "reference"))
        if not name or not ref or "{" in name or "}" in name:
            yield f"{where}: needs a name (without `{{` or `}}`) and a reference"
            continue
        if name in names:
            yield f"{where}: the name `{name}` appears twice"
            continue
        if ref in references:
            yield f"{where}: the reference `{ref}` appears twice"
            continue
        names.add(name)
        references.add(ref)
        if not _is_meta(ref) and ref not in params:
            yield f"{where}: `{ref}` is neither a parameter of spec.parameters nor ${{trialSpec.<key>}}"
        placeholder = f"${{trialParameters.{name}}}"
        if placeholder not in text:
            yield f"{where}: `{placeholder}` is not used in the trial spec"
        text = text.replace(placeholder, "x")
    for left in sorted(set(PLACEHOLDER.findall(text))):
        yield f"spec.trialTemplate.trialSpec: `{left}` is not declared in trialParameters"
    for _, p in _parameters(spec):
        if _str(p.get("name")) not in references:
            yield f"spec.parameters `{p.get('name')}`: no trialParameter passes it to the trial"


def _is_meta(reference: str) -> bool:
    m = META_REFERENCE.fullmatch(reference)
    if not m:
        return False
    key = m.group(1)
    return key in META_KEYS or bool(re.fullmatch(r"(Labels|Annotations)\[.+\]", key))


def _check_shell(exp: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    """Katib's StdOut and File collectors run the primary container through `sh -c`, with
    command and args joined by spaces and nothing quoted: every word must stay one word."""
    tt = spec.get("trialTemplate")
    primary = _str(_get(tt, "primaryContainerName"))
    kind = _get(spec, "metricsCollectorSpec", "collector", "kind") or "StdOut"
    if kind not in ("StdOut", "File", "TensorFlowEvent") or not primary:
        return
    containers = [
        c
        for c in _containers(_get(tt, "trialSpec"))
        if isinstance(c, dict) and c.get("name") == primary
    ]
    if not containers:
        return
    c = containers[0]
    words = [*_list(c.get("command")), *_list(c.get("args"))]
    values = _placeholder_values(spec, tt)
    for word in words:
        if not isinstance(word, str):
            yield f"container `{primary}`: `{word!r}` is not a string"
            continue
        literal = PLACEHOLDER.sub("", word)
        if not SHELL_SAFE.fullmatch(literal):
            yield (
                f"container `{primary}`: `{word}` holds {unsafe_chars(literal)}, which `sh -c` "
                "would interpret: Katib quotes nothing"
            )
        for ph in PLACEHOLDER.findall(word):
            for value in values.get(ph, []):
                if not SHELL_SAFE.fullmatch(value):
                    yield (
                        f"container `{primary}`: `{ph}` can be {value!r}, which holds "
                        f"{unsafe_chars(value)}: Katib passes it through `sh -c` without quoting"
                    )


def _containers(node: Any) -> list[Any]:
    out: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                out.extend(value)
            else:
                out.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_containers(item))
    return out


def _placeholder_values(spec: dict[str, Any], tt: Any) -> dict[str, list[str]]:
    """The texts each `${trialParameters.x}` can become, where they could be unsafe."""
    lists = {
        _str(p.get("name")): [
            x for x in _list(_get(p, "feasibleSpace", "list")) if isinstance(x, str)
        ]
        for _, p in _parameters(spec)
        if p.get("parameterType") in ("categorical", "discrete")
    }
    out: dict[str, list[str]] = {}
    for tp in _list(_get(tt, "trialParameters")):
        name, ref = _str(_get(tp, "name")), _str(_get(tp, "reference"))
        ph = f"${{trialParameters.{name}}}"
        if ref in lists:
            out[ph] = lists[ref]
        elif ref.startswith("${trialSpec.Annotations["):
            out[ph] = ["<any annotation value>"]
    return out


_CHECKS: tuple[Callable[[dict[str, Any], dict[str, Any]], Iterator[str]], ...] = (
    _check_metadata,
    _check_counts,
    _check_objective,
    _check_algorithm,
    _check_parameters,
    _check_search,
    _check_collector,
    _check_trial_template,
    _check_shell,
)
