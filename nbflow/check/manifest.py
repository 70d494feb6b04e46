"""The `nbflow.yaml` v1 model (pydantic v2): every key of the spec, short forms normalised.

This is the manifest as written, checked for shape and types and frozen. Rules that need the
notebook (cells exist, parameters cell, data flow) live in `nbflow.check.rules` and `nbflow.dataflow.planner`.
The JSON schema in `schemas/nbflow.v1.schema.json` is generated from these classes.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from nbflow import codes
from nbflow.check.quantities import duration_seconds, is_quantity
from nbflow.check.schema import SCHEMA_URL, readable
from nbflow.codes import Code

API_VERSION = "nbflow/v1"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
ALGORITHMS = (
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "bayesianoptimization",
    "cmaes",
    "sobol",
    "hyperband",
)
ParamType = Literal["int", "float", "str", "bool", "list", "dict"]


def _fail(code: Code, message: str, **ctx: Any) -> PydanticCustomError:
    # the error's type is the code's id: `schema_errors` turns it back into that diagnostic
    return PydanticCustomError(code.id, message, ctx or None)


def _dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not DNS_LABEL.fullmatch(value):
        raise _fail(
            codes.INVALID_NAME,
            f"{what} `{value}` is not a DNS-1123 label: lowercase letters, digits and `-`, "
            "starting and ending with a letter or digit, at most 63 characters",
        )
    return value


MAX_TIMEOUT_DAYS = 3650  # Argo adds a timeout to the time as Go's time.Duration: under 292 years


def _dns_subdomain(value: str, what: str, code: Code = codes.INVALID_NAME) -> str:
    if len(value) > 253 or not DNS_SUBDOMAIN.fullmatch(value):
        raise _fail(
            code,
            f"{what} `{value}` is not a DNS-1123 subdomain: lowercase letters, digits, `-` and "
            "`.`, starting and ending with a letter or digit, at most 253 characters",
        )
    return value


def _path_text(value: str, what: str) -> str:
    """A path nbflow passes to the file system or a container: no NUL or other control
    characters, which no file name needs and which break whatever reads them."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _fail(
            codes.INVALID_VALUE,
            f"{what} {value!r} holds a control character (a NUL, a line break...)",
        )
    return value


def _identifier(value: str, what: str) -> str:
    if not IDENTIFIER.fullmatch(value) or keyword.iskeyword(value):
        raise _fail(codes.INVALID_NAME, f"{what} `{value}` is not a Python identifier")
    return value


def _cells_shape(value: Any) -> Any:
    """Accept `4`, `"4-5"`, `"id:abc"`, `"tag:train"` or a list of those; ranges are parsed in
    `rules`."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise _fail(
                codes.WRONG_TYPE,
                "cells are a number, a range like `4-5`, `id:<cell id>`, `tag:<cell tag>`, "
                "or a list of those; "
                f"got {type(item).__name__} `{item}`",
            )
    return tuple(items)


_CELLS_SCHEMA: dict[str, Any] = {
    "description": "1-based cell numbers counting every cell, ranges `4-5`, `id:<cell id>`, "
    "`tag:<cell tag>` (every cell with that tag), or a list of those",
    "anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "string", "pattern": r"^\s*(\d+\s*(-\s*\d+)?|id:\S+|tag:\S+)\s*$"},
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": r"^\s*(\d+\s*(-\s*\d+)?|id:\S+|tag:\S+)\s*$"},
                ]
            },
        },
    ],
}
Cells = Annotated[
    tuple[StrictInt | StrictStr, ...],
    BeforeValidator(_cells_shape),
    WithJsonSchema(_CELLS_SCHEMA),
]


def _quantity(value: Any) -> str:
    if isinstance(value, bool):
        raise _fail(codes.BAD_QUANTITY, f"`{value}` is not a Kubernetes quantity")
    if isinstance(value, int | float):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str) or not is_quantity(value):
        raise _fail(
            codes.BAD_QUANTITY,
            f"`{value}` is not a Kubernetes quantity (e.g. `500m`, `2`, `4Gi`, `512Mi`)",
        )
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "number"}], "description": "A Kubernetes quantity"}
    ),
]


def _duration(value: Any) -> int:
    if isinstance(value, bool):
        raise _fail(codes.TIMEOUT, f"`{value}` is not a duration")
    seconds = duration_seconds(value)
    if seconds is None or seconds <= 0:
        raise _fail(
            codes.TIMEOUT,
            f"`{value}` is not a positive duration (e.g. `90s`, `30m`, `2h`, `1h30m`)",
        )
    if seconds > MAX_TIMEOUT_DAYS * 86400:
        raise _fail(
            codes.TIMEOUT, f"`{value}` is longer than {MAX_TIMEOUT_DAYS}d, the longest timeout"
        )
    return seconds


Duration = Annotated[
    int,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^(\d+[smhd])+$"},
            ],
            "description": "seconds, or a duration like `90s`, `30m`, `2h`",
        }
    ),
]

EnvValue = StrictStr | StrictInt | StrictFloat | StrictBool


def _env_name(v: str) -> str:
    if not ENV_NAME.fullmatch(v):
        raise _fail(codes.ENV_NAME, f"`{v}` is not a valid environment variable name")
    return v


def _env_values(v: dict[str, Any]) -> dict[str, str]:
    return {k: (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}


EnvMap = Annotated[
    dict[Annotated[StrictStr, AfterValidator(_env_name)], EnvValue],
    AfterValidator(_env_values),
]
LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _label_key(v: str) -> str:
    """A Kubernetes label key: `[prefix/]name`, as the API server checks a nodeSelector."""
    prefix, _, name = v.rpartition("/")
    if (
        len(name) > 63
        or not LABEL_NAME.fullmatch(name)
        or ("/" in v and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)))
    ):
        raise _fail(
            codes.BAD_LABEL,
            f"`{v}` is not a Kubernetes label key: an optional DNS subdomain and `/`, then at "
            "most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit",
        )
    return v


def _label_value(v: str) -> str:
    if v and (len(v) > 63 or not LABEL_NAME.fullmatch(v)):
        raise _fail(
            codes.BAD_LABEL,
            f"`{v}` is not a Kubernetes label value: at most 63 letters, digits, `-`, `_` or `.`, "
            "starting and ending with a letter or digit",
        )
    return v


LabelKey = Annotated[StrictStr, AfterValidator(_label_key)]
LabelValue = Annotated[StrictStr, AfterValidator(_label_value)]
StepName = Annotated[StrictStr, AfterValidator(lambda v: _dns_label(v, "step name"))]


def _parameter_name(v: str) -> str:
    _identifier(v, "parameter name")
    if v.startswith("_"):
        # generated code keeps `_`-names for itself, so no parameter can shadow them
        raise _fail(codes.INVALID_NAME, f"parameter name `{v}` must not start with `_`")
    return v


ParameterName = Annotated[StrictStr, AfterValidator(_parameter_name)]
Identifier = Annotated[StrictStr, AfterValidator(lambda v: _identifier(v, "name"))]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Resources(Model):
    """Requests of a step's container; limits equal requests unless given."""

    cpu: Quantity | None = None
    """CPU request (`500m`, `2`); the limit too unless `cpuLimit` is set"""
    memory: Quantity | None = None
    """memory request (`512Mi`, `4Gi`); the limit too unless `memoryLimit` is set"""
    cpuLimit: Quantity | None = None
    """CPU limit, at least the request"""
    memoryLimit: Quantity | None = None
    """memory limit, at least the request"""
    gpu: StrictInt | None = Field(None, description="number of GPUs (a positive integer)")
    gpuType: StrictStr = Field("nvidia.com/gpu", description="the extended resource of the GPUs")

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise _fail(codes.BAD_GPU, f"gpu must be a positive integer, got {v}")
        return v

    @field_validator("gpuType")
    @classmethod
    def _gpu_type(cls, v: str) -> str:
        if not re.fullmatch(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*)", v):
            raise _fail(codes.BAD_GPU, f"gpuType `{v}` is not an extended resource name")
        return v


class Toleration(Model):
    key: LabelKey | None = None
    """the taint key to tolerate"""
    operator: Literal["Exists", "Equal"] = "Equal"
    """`Equal` (key and value match) or `Exists` (any value)"""
    value: StrictStr | None = None
    """the taint value, with `Equal`"""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """the taint effect to tolerate; all effects when unset"""
    tolerationSeconds: StrictInt | None = None
    """with `NoExecute`: how long the pod stays bound after the taint appears"""

    @field_validator("value")
    @classmethod
    def _value(cls, v: str | None) -> str | None:
        return v if v is None else _label_value(v)

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        # what the Kubernetes API server checks of a toleration (validation.go)
        if self.operator == "Exists" and self.value:
            raise _fail(codes.INVALID_VALUE, "a toleration with `operator: Exists` has no `value`")
        if not self.key and self.operator != "Exists":
            raise _fail(codes.INVALID_VALUE, "a toleration without `key` needs `operator: Exists`")
        if self.tolerationSeconds is not None and self.effect != "NoExecute":
            raise _fail(codes.INVALID_VALUE, "`tolerationSeconds` needs `effect: NoExecute`")
        return self


class Step(Model):
    description: StrictStr | None = None
    """what the step does, for people"""
    cells: Cells
    """the step's cells: `4-5`, `[6-7, 9]`, `id:<cell id>`, `tag:<cell tag>`; markdown cells in a
    range are ignored"""
    after: tuple[StrictStr, ...] = ()
    """steps this one runs after, beyond those its data flow already orders"""
    image: StrictStr | None = None
    """the step's image (default: the pipeline's `image`)"""
    requirements: tuple[StrictStr, ...] = Field(
        (),
        description="pip requirements (PEP 508: `name`, `name>=1,<2`...) added to the pipeline's",
    )
    resources: Resources | None = None
    """CPU, memory and GPUs of the step's container (default: the pipeline's `resources`)"""
    retries: StrictInt = Field(0, ge=0, le=100)
    """how many times KFP retries the step when it fails"""
    timeout: Duration | None = None
    """stop the step after this long (`90s`, `30m`, `2h`)"""
    cache: StrictBool = Field(True, description="let KFP reuse this step's outputs")
    env: EnvMap = Field(default_factory=dict)
    """environment variables of the step, added to the pipeline's `env`"""
    volumes: tuple[StrictStr, ...] | None = Field(
        None, description="names of pipeline volumes to mount (default: all)"
    )
    nodeSelector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """node labels the step's pod must run on"""
    tolerations: tuple[Toleration, ...] = ()
    """taints the step's pod tolerates"""


def _parameter_short(value: Any) -> Any:
    """`C: 1.0` is `C: {default: 1.0}`. A mapping is always the long form, so that a typo in
    it (`tpye:`) is an unknown key, not a dict default: write dict defaults as `{default: {...}}`."""
    return value if isinstance(value, dict) else {"default": value}


def not_json(value: Any) -> str | None:
    """Why `value` can't be a pipeline parameter's value, or None when it can: JSON data, with
    string keys, finite numbers and integers of 64 bits (KFP passes a protobuf Struct)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"holds `{value!r}`, which is not a finite number"
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return "holds an integer beyond 64 bits"
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return None
    if isinstance(value, list):
        return next((p for p in map(not_json, value) if p), None)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return (
                    f"has the key `{k!r}`: keys of a mapping parameter must be strings (quote it)"
                )
            problem = not_json(v)
            if problem:
                return problem
        return None
    return f"holds `{value!r}`, which is not a number, string, boolean, list or mapping"


def infer_type(value: Any) -> str | None:
    for t, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (list, "list"),
        (dict, "dict"),
    ):
        if isinstance(value, t):
            return name
    return None


def fits(value: Any, t: str) -> bool:
    """Does `value` fit parameter type `t` (an int fits a float)."""
    if t == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return infer_type(value) == t


class Parameter(Model):
    type: ParamType | None = None
    """int, float, str, bool, list or dict; inferred from `default` when unset"""
    default: Any = None
    """the pipeline's default; else the value assigned in the parameters cell"""
    description: StrictStr | None = None
    """what the parameter means, for people"""

    @model_validator(mode="after")
    def _typed(self) -> Parameter:
        problem = not_json(self.default)
        if problem:  # KFP passes parameters as JSON (protobuf Struct): nothing else travels
            raise _fail(codes.PARAMETER_DEFAULT_TYPE, f"default {problem}")
        if self.type is None:
            if self.default is None:
                raise _fail(
                    codes.PARAMETER_DEFAULT_TYPE, "a parameter needs a default value or a `type`"
                )
            object.__setattr__(self, "type", infer_type(self.default))
        elif self.default is not None and not fits(self.default, self.type):
            raise _fail(
                codes.PARAMETER_DEFAULT_TYPE,
                f"default `{self.default!r}` is not of type {self.type}",
            )
        return self


ParameterEntry = Annotated[
    Parameter,
    BeforeValidator(
        _parameter_short,
        json_schema_input_type=Parameter
        | StrictBool
        | StrictInt
        | StrictFloat
        | StrictStr
        | list[Any],
    ),
]


class Metric(Model):
    goal: Literal["maximize", "minimize"] = "maximize"
    """whether larger (`maximize`) or smaller (`minimize`) is better"""
    description: StrictStr | None = None
    """what the metric measures, for people"""


MetricEntry = Annotated[
    Metric,
    BeforeValidator(
        lambda v: {"goal": v} if isinstance(v, str) else v,
        json_schema_input_type=Metric | Literal["maximize", "minimize"],
    ),
]

Number = StrictInt | StrictFloat
Scalar = StrictInt | StrictFloat | StrictStr | StrictBool


class SearchSpace(Model):
    min: Number | None = None
    """the smallest value searched"""
    max: Number | None = None
    """the largest value searched"""
    step: Number | None = None
    """the grid step (needed by `grid` for float parameters)"""
    log: StrictBool = False
    """search on a log scale (Katib's `logUniform`); needs min > 0"""
    distribution: Literal["uniform", "logUniform", "normal", "logNormal"] | None = None
    """Katib's distribution, when not `log`"""
    values: tuple[Scalar, ...] | None = None
    """the values to choose from, instead of min/max (a list is the short form)"""

    @model_validator(mode="after")
    def _shape(self) -> SearchSpace:
        if self.values is not None:
            if (
                any(x is not None for x in (self.min, self.max, self.step, self.distribution))
                or self.log
            ):
                raise _fail(
                    codes.SEARCH_TYPE, "a search space has either `values` or `min`/`max`, not both"
                )
            if not self.values:
                raise _fail(codes.SEARCH_EMPTY, "`values` is empty")
            return self
        if self.min is None or self.max is None:
            raise _fail(
                codes.SEARCH_TYPE, "a numeric search space needs both `min` and `max` (or `values`)"
            )
        if self.min > self.max:
            raise _fail(codes.SEARCH_RANGE_ORDER, f"min {self.min} is greater than max {self.max}")
        if self.step is not None and self.step <= 0:
            raise _fail(codes.SEARCH_RANGE_ORDER, f"step must be positive, got {self.step}")
        if self.log and self.min <= 0:
            raise _fail(codes.SEARCH_RANGE_ORDER, "a log scale needs min > 0")
        return self


SearchEntry = Annotated[
    SearchSpace,
    BeforeValidator(
        lambda v: {"values": v} if isinstance(v, list) else v,
        json_schema_input_type=SearchSpace | list[StrictInt | StrictFloat | StrictStr | StrictBool],
    ),
]


class Tuning(Model):
    objective: StrictStr
    """the metric to optimise: one of `metrics`"""
    algorithm: Literal[ALGORITHMS] = "random"  # type: ignore[valid-type]
    """the search algorithm, by Katib's name; `nbflow tune` uses the matching Optuna sampler"""
    settings: dict[StrictStr, Scalar] = Field(
        default_factory=dict, description="algorithm settings, passed to Katib and Optuna"
    )
    maxTrials: StrictInt = Field(ge=1)
    """trials in all"""
    parallelTrials: StrictInt = Field(1, ge=1)
    """trials running at once"""
    maxFailedTrials: StrictInt | None = Field(None, ge=0)
    """stop the search after this many failed trials"""
    goal: Number | None = None
    """stop the search once the objective reaches this value"""
    additionalMetrics: tuple[StrictStr, ...] | None = None
    """other metrics to record per trial (default: the other declared metrics)"""
    search: dict[StrictStr, SearchEntry] = Field(min_length=1)
    """the search space: one entry per searched parameter"""


class Volume(Model):
    name: StrictStr
    """the volume's name, used by steps' `volumes`"""
    mountPath: StrictStr
    """where the volume is mounted in the step's container (absolute)"""
    claim: StrictStr | None = Field(None, description="an existing PersistentVolumeClaim")
    size: Quantity | None = Field(None, description="create a claim of this size for each run")
    storageClass: StrictStr | None = None
    """storage class of a claim created per run"""
    accessMode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"] = (
        "ReadWriteOnce"
    )
    """access mode of a claim created per run"""

    @field_validator("name", "claim")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        return v if v is None else _dns_label(v, "volume name")

    @field_validator("mountPath")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise _fail(codes.VOLUME, f"mountPath `{v}` must be an absolute path")
        if ".." in v.split("/"):
            raise _fail(codes.VOLUME, f"mountPath `{v}` must not hold `..`")
        return _path_text(v, "mountPath")

    @field_validator("storageClass")
    @classmethod
    def _storage_class(cls, v: str | None) -> str | None:
        return v if v is None else _dns_subdomain(v, "storageClass", codes.VOLUME)

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        if (self.claim is None) == (self.size is None):
            raise _fail(
                codes.VOLUME,
                f"volume `{self.name}` needs exactly one of `claim` (an existing claim) "
                "or `size` (a claim created per run)",
            )
        return self


class Deploy(Model):
    namespace: StrictStr | None = None
    """the Kubernetes namespace (the KFP profile) to apply to; `--namespace` overrides it"""
    kfp: Literal["kubernetes", "api"] = Field(
        "kubernetes",
        description="`kubernetes`: Pipeline/PipelineVersion resources; `api`: the KFP REST API",
    )
    host: StrictStr | None = Field(
        None,
        description="KFP API URL (http or https), for `kfp: api`; `NBFLOW_KFP_TOKEN` is sent to "
        "it only when the operator names the same host (`--kfp-host`)",
    )
    experiment: StrictBool = Field(
        False, description="create the Katib Experiment on apply (a tuning run costs resources)"
    )
    launcherImage: StrictStr | None = None
    """image of the Katib trial launcher (default: nbflow's published one)"""
    serviceAccount: StrictStr | None = None
    """service account of Katib trial pods (default: `default-editor`)"""

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str | None) -> str | None:
        return v if v is None else _dns_label(v, "namespace")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return v if v is None else _http_url(v, "deploy.host")

    @field_validator("serviceAccount")
    @classmethod
    def _service_account(cls, v: str | None) -> str | None:
        return v if v is None else _dns_subdomain(v, "serviceAccount")


def _http_url(value: str, what: str) -> str:
    """An http(s) URL with a host and no credentials in it (a token comes from the operator's
    environment, never from a manifest)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise _fail(
            codes.INVALID_VALUE,
            f"{what} {value!r} is not an http(s) URL (for example https://kfp.example.com, or "
            "http://localhost:8888 through a port-forward)",
        )
    if parts.username is not None or parts.password is not None:
        raise _fail(
            codes.INVALID_VALUE,
            f"{what} must not carry credentials: set NBFLOW_KFP_TOKEN where nbflow runs instead",
        )
    return value


class Manifest(Model):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        title="nbflow manifest",
        json_schema_extra={"$id": SCHEMA_URL},
    )

    apiVersion: Literal["nbflow/v1"]
    """always `nbflow/v1`"""
    name: StrictStr = Field(description="the pipeline name: a lowercase DNS-1123 label")
    description: StrictStr | None = None
    """what the pipeline does; shown in KFP"""
    notebook: StrictStr = Field(description="the notebook, relative to this file")
    image: StrictStr = Field("python:3.11-slim", description="default image of every step")
    requirements: tuple[StrictStr, ...] | StrictStr = Field(
        (),
        description="pip requirements of every step (PEP 508: `name`, `name>=1,<2`...), or the path "
        "of a requirements file (one per line, `#` comments, no pip options)",
    )
    env: EnvMap = Field(default_factory=dict)
    """environment variables of every step"""
    resources: Resources | None = Field(None, description="default resources of every step")
    setup: Cells = Field((), description="cells run at the start of every step")
    parametersCell: StrictInt | StrictStr | None = Field(
        None, description="the parameters cell; else the cell tagged `parameters`"
    )
    steps: dict[StepName, Step] = Field(min_length=1)
    """the pipeline's steps by name (lowercase DNS-1123 labels)"""
    skip: Cells = Field((), description="code cells deliberately in no step")
    parameters: dict[ParameterName, ParameterEntry] = Field(default_factory=dict)
    """pipeline parameters, assigned in the notebook's parameters cell; `C: 1.0` is the short form"""
    metrics: dict[Identifier, MetricEntry] = Field(default_factory=dict)
    """variables some step computes that the run reports; `accuracy: maximize` is the short form"""
    tuning: Tuning | None = None
    """hyperparameter search: a Katib Experiment on the cluster, Optuna with `nbflow tune`"""
    volumes: tuple[Volume, ...] = ()
    """persistent volumes: an existing claim, or one created per run"""
    deploy: Deploy = Field(default_factory=lambda: Deploy.model_validate({}))
    """where and how `nbflow apply` deploys"""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _dns_label(v, "pipeline name")

    @field_validator("notebook")
    @classmethod
    def _notebook(cls, v: str) -> str:
        return _path_text(v, "notebook")

    @field_validator("requirements")
    @classmethod
    def _requirements_file(cls, v: tuple[str, ...] | str) -> tuple[str, ...] | str:
        return _path_text(v, "requirements file") if isinstance(v, str) else v


def json_schema() -> dict[str, Any]:
    return readable(Manifest.model_json_schema(by_alias=True))


def schema_text() -> str:
    """The text of schemas/nbflow.v1.schema.json (here, not in `schema`: that module is below
    this one, which takes `readable` and the schema's URL from it)."""
    import json

    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **json_schema()}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"
