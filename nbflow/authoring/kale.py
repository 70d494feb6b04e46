"""Import a Kale notebook: its cell tags and `kubeflow_notebook` metadata as an nbflow manifest.

Checked against kubeflow-kale 2.3.0 (`kale/processors/constants.py`, `nbprocessor.py`,
`pipeline.py`) and the 1.x notebooks still around (`block:` tags, `docker_image`).

Cells are assigned as Kale assigns them (`NotebookProcessor.parse_notebook`), in notebook order,
code cells only:

- `imports` and `functions` cells go to setup, `pipeline-parameters` to the parameters cell,
  `pipeline-metrics` to skip (Kale's metrics cell only prints variables: the printed names become
  `metrics`), `skip` to skip;
- `step:<name>` (`block:<name>` in Kale 1.x) starts or continues a step; `prev:<name>` becomes
  `after`;
- an untagged cell continues the block or step before it (a `skip` cell is transparent), so a
  step runs until the next tagged cell; untagged cells before the first tag are in no Kale step
  and go to skip;
- `limit:cpu:V` and `limit:memory:V` become resources, `limit:<vendor>/gpu:N` gpu (+ gpuType),
  `image:<image>` the step's image, `cache:disabled` `cache: false`.

Metadata: `pipeline_name`, `pipeline_description`, `base_image` (`docker_image` in 1.x),
`enable_caching`, `steps_defaults` (tags applied to every step), `volumes` (`pvc` -> `claim`,
`new_pvc` -> `size`, `expose_as_env_var` -> env), `storage_class_name`, `volume_access_mode`,
`katib_metadata` -> `tuning`, `kfp_host` -> `deploy`.

What nbflow has no place for (`annotation:`, `label:`, `secret:`, `report:`, `notebook:` tags,
other limits, `pv`/`clone` volumes, volume annotations, Katib early stopping, Kale's pipeline
timeout and security context) is reported as a `KaleNote`, with the cell it came from. Keys that
only keep the JupyterLab panel's state (`experiment`, `autosnapshot`, `snapshot_volumes`,
`abs_working_dir`, `marshal_path`, `output_path`) don't change what the pipeline does and are
ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.authoring.guesses import (
    guess_requirements,
    imported_modules,
    literal_assignments,
    metric_goal,
    slug,
    unique,
)
from nbflow.authoring.init_yaml import Draft, DraftStep
from nbflow.check.manifest import ALGORITHMS, fits, infer_type
from nbflow.check.rules import ALGORITHM_REQUIRED, ALGORITHM_SETTINGS

if TYPE_CHECKING:
    from nbflow.load.notebook import Notebook

__all__ = ["KALE_METADATA_KEY", "KaleNote", "import_kale", "is_kale_tag", "strip_kale", "uses_kale"]

KALE_METADATA_KEY = "kubeflow_notebook"
KALE_DEFAULT_IMAGE = "python:3.12"  # kale.pipeline.DEFAULT_BASE_IMAGE, used when none is set
_NAME = r"[_a-z]([_a-z0-9]*)?"
_KEY = r"[a-zA-Z0-9]+([a-zA-Z0-9-_.]*[a-zA-Z0-9])?([/][a-zA-Z0-9]+([a-zA-Z0-9-_.]*[a-zA-Z0-9])?)?"
# Kale 2.3.0's tag language, plus Kale 1.x's `block:` (the old name of `step:`)
_TAGS = [
    re.compile(p)
    for p in (
        r"^skip$",
        r"^imports$",
        r"^functions$",
        rf"^prev:{_NAME}$",
        rf"^step:({_NAME})?$",
        rf"^block:({_NAME})?$",
        rf"^notebook:({_NAME})?$",
        r"^pipeline-parameters$",
        r"^pipeline-metrics$",
        rf"^annotation:{_KEY}:(.*)$",
        rf"^label:{_KEY}:(.*)$",
        r"^limit:([_a-z-\.\/]+):([_a-zA-Z0-9\.]+)$",
        r"^secret:[^:]+:[^:]+:[^:]+$",
        r"^image:(.+)$",
        r"^cache:(enabled|disabled)$",
        r"^report:(enabled|disabled)$",
    )
]
_BLOCKS = ("imports", "functions", "pipeline-parameters", "pipeline-metrics")
_SPECIAL = ("skip", *_BLOCKS)
_ACCESS_MODES = {"rom": "ReadOnlyMany", "rwo": "ReadWriteOnce", "rwm": "ReadWriteMany"}


@dataclass(frozen=True)
class KaleNote:
    """Something of the Kale notebook that the manifest does not carry over."""

    message: str
    cell: int | None = None
    notebook: str = ""

    def __str__(self) -> str:
        where = f"{self.notebook}: " if self.notebook else ""
        return f"{where}cell {self.cell}: {self.message}" if self.cell else f"{where}{self.message}"


def is_kale_tag(tag: str) -> bool:
    return any(p.match(tag) for p in _TAGS)


def uses_kale(nb: Notebook) -> bool:
    """Whether the notebook carries Kale's metadata or a cell tag of Kale's language (a bare
    `skip`, which other tools use too, is not enough on its own)."""
    return KALE_METADATA_KEY in nb.metadata or any(
        t != "skip" and is_kale_tag(t) for c in nb.cells if c.type == "code" for t in c.tags
    )


@dataclass
class _Tags:
    """One cell's Kale tags, parsed as Kale parses them."""

    special: str | None = None
    step: str | None = None
    prev: tuple[str, ...] = ()
    limits: tuple[tuple[str, str], ...] = ()
    image: str | None = None
    cache: bool | None = None
    ignored: tuple[str, ...] = ()  # tags nbflow can't translate
    notebook: bool = False


def _parse(tags: tuple[str, ...]) -> _Tags:
    out = _Tags()
    steps: list[str] = []
    prev: list[str] = []
    limits: list[tuple[str, str]] = []
    ignored: list[str] = []
    for t in tags:
        if not is_kale_tag(t):
            continue
        if t in _SPECIAL:  # Kale: the first special tag decides the cell; the rest are ignored
            out.special = t
            break
        kind, _, rest = t.partition(":")
        if kind in ("step", "block") and rest:
            steps.append(rest)
        elif kind == "prev":
            prev.append(rest)
        elif kind == "limit":
            key, _, value = rest.partition(":")
            limits.append((key, value))
        elif kind == "image":
            out.image = rest
        elif kind == "cache":
            out.cache = rest == "enabled"
        elif kind == "notebook":
            out.notebook = True
            ignored.append(t)
        elif kind in ("annotation", "label", "secret", "report"):
            ignored.append(t)
    out.step = steps[0] if steps else None
    out.prev, out.limits, out.ignored = tuple(prev), tuple(limits), tuple(ignored)
    if len(steps) > 1:
        out.ignored += tuple(f"step:{s}" for s in steps[1:])
    return out


_IGNORED_WHY = {
    "annotation": "nbflow has no pod annotations",
    "label": "nbflow has no pod labels",
    "secret": "nbflow has no secrets as env vars: set `env` or mount the secret another way",
    "report": "nbflow always writes each step's HTML report",
    "notebook": "nbflow has no sub-pipelines from other notebooks; the cell goes to skip",
    "step": "a cell belongs to one step (Kale rejects several)",
}


@dataclass
class _Step:
    kale_name: str
    cells: list[int]
    prev: list[tuple[str, int]]
    limits: dict[str, tuple[str, int | None]]
    image: str | None = None
    cache: bool | None = None


def import_kale(
    nb: Notebook, *, folder: Path, name: str | None = None
) -> tuple[Draft, list[KaleNote]]:
    """The manifest equivalent to a Kale notebook, and what could not be carried over."""
    from nbflow.dataflow.cell_flow import analyse_cell

    meta = nb.metadata.get(KALE_METADATA_KEY) or {}
    if not isinstance(meta, dict):
        meta = {}
    shown = Path(nb.path).name
    notes: list[KaleNote] = []

    def note(message: str, cell: int | None = None) -> None:
        notes.append(KaleNote(message, cell, shown))

    draft = Draft(name="", notebook=shown, origin="Kale tags and metadata")
    blocks: dict[str, list[int]] = {b: [] for b in _BLOCKS}
    steps: dict[str, _Step] = {}
    skip: list[int] = []
    prev: str | None = None
    pending: list[int] = []
    awaiting = False  # after a `notebook:` cell, untagged cells wait for the next step cell
    untagged_lead: list[int] = []

    for c in nb.code_cells:
        t = _parse(c.tags)
        for tag in t.ignored:
            note(f"tag `{tag}` not translated: {_IGNORED_WHY[tag.split(':')[0]]}", c.number)
        if t.notebook:
            skip.append(c.number)
            prev, awaiting = None, True
            continue
        if t.special == "skip":
            skip.append(c.number)
            continue
        if t.special in _BLOCKS:
            blocks[t.special].append(c.number)
            prev, awaiting = t.special, False
            continue
        if t.step is None:
            extras = [
                *t.prev,
                *(f"limit:{k}" for k, _ in t.limits),
                *(["image"] if t.image else []),
            ]
            if extras:
                note(
                    f"{', '.join(extras)} on a cell that names no step: ignored, as Kale rejects it",
                    c.number,
                )
            if awaiting:
                pending.append(c.number)
            elif prev in _BLOCKS:
                blocks[prev].append(c.number)
            elif prev is not None:
                steps[prev].cells.append(c.number)
            else:
                skip.append(c.number)
                if c.source.strip():
                    untagged_lead.append(c.number)
            continue
        if prev == "pipeline-metrics":
            note(
                f"step `{t.step}` comes after the pipeline-metrics cell, which Kale rejects",
                c.number,
            )
        step = steps.get(t.step)
        if step is None:
            step = steps[t.step] = _Step(t.step, [], [], {})
        step.cells.extend([*pending, c.number])
        step.prev.extend((p, c.number) for p in t.prev)
        for key, value in t.limits:
            step.limits[key] = (value, c.number)
        step.image = t.image or step.image
        step.cache = t.cache if t.cache is not None else step.cache
        pending, awaiting, prev = [], False, t.step
    if pending:
        skip.extend(pending)
        note(
            f"cells {', '.join(map(str, pending))} follow a `notebook:` cell with no step after them: skipped"
        )
    for n in untagged_lead:
        note("untagged and before any Kale tag, so in no Kale step: skipped", n)

    # -- pipeline settings ---------------------------------------------------------------------------
    pipeline_name = meta.get("pipeline_name")
    if name:
        draft.name = name
    elif isinstance(pipeline_name, str) and pipeline_name:
        draft.name = slug(pipeline_name, fallback="pipeline")
        if draft.name != pipeline_name:
            note(f"pipeline_name `{pipeline_name}` is not a DNS-1123 label: named `{draft.name}`")
    else:
        draft.name = slug(Path(nb.path).stem, fallback="pipeline")
    if meta.get("pipeline_description"):
        draft.description = str(meta["pipeline_description"])
    if meta.get("experiment_name"):
        draft.comment(("name",), f"Kale's experiment_name was {meta['experiment_name']}")
    defaults = _steps_defaults(meta.get("steps_defaults"), note)
    image = defaults.get("image") or meta.get("base_image") or meta.get("docker_image")
    if image:
        draft.image = str(image)
        if defaults.get("image"):
            draft.comment(("image",), "Kale's steps_defaults")
    else:
        draft.image = KALE_DEFAULT_IMAGE
        draft.todo(("image",), "check: Kale's default image; steps need the notebook's packages")
    default_resources = _resources(
        {k: (v, None) for k, v in defaults.get("limits", {}).items()}, note
    )
    if default_resources:
        draft.resources = default_resources
        draft.comment(("resources",), "Kale's steps_defaults limits, requested too")
    default_cache = defaults.get("cache")
    if default_cache is None and meta.get("enable_caching") is False:
        default_cache = False

    # -- steps -------------------------------------------------------------------------------------------
    taken: set[str] = set()
    names = {k: unique(slug(k), taken) for k in steps}
    for kale_name, s in steps.items():
        ds = DraftStep(name=names[kale_name], cells=sorted(s.cells))
        if ds.name != kale_name:
            draft.comment(("steps", ds.name), f"Kale step `{kale_name}`")
        for p, cell in s.prev:
            if p not in names or list(steps).index(p) >= list(steps).index(kale_name):
                note(f"prev:{p} names no step defined above step `{kale_name}`: dropped", cell)
            elif names[p] not in ds.after:
                ds.after.append(names[p])
        own = _resources(s.limits, note)
        if own:
            ds.resources = {
                **default_resources,
                **own,
            }  # nbflow's step resources replace the defaults
            if "cpu" in own or "memory" in own:
                draft.comment(("steps", ds.name, "resources"), "Kale's limits, requested too")
        if s.image and s.image != draft.image:
            ds.image = s.image
        cache = s.cache if s.cache is not None else default_cache
        if cache is False:
            ds.cache = False
        draft.steps.append(ds)
    if not draft.steps:
        draft.steps.append(DraftStep(name="main", cells=[]))
        draft.todo(("steps",), "no cell is tagged `step:<name>`: give this step the cells to run")
        note("no cell is tagged step:<name>: the manifest has one empty step to fill in")

    # -- setup, parameters, metrics ----------------------------------------------------------------------
    draft.setup = sorted(blocks["imports"] + blocks["functions"])
    params_cells = blocks["pipeline-parameters"]
    if params_cells:
        first_cell = params_cells[0]
        draft.parameters_cell = first_cell
        draft.comment(("parametersCell",), "Kale's pipeline-parameters cell")
        values, other = literal_assignments(nb.cells[first_cell - 1].source)
        if other:
            draft.todo(
                ("parametersCell",),
                f"line {other[0]} of cell {first_cell} is not `name = <literal>`",
            )
        for key, value in values.items():
            if value is None:
                note(
                    f"parameter `{key}` is None, which Kale rejects and nbflow can't type: not declared",
                    first_cell,
                )
            else:
                draft.parameters[key] = value
        draft.setup = sorted([*draft.setup, *params_cells[1:]])
        for n in params_cells[1:]:
            note(
                "continues Kale's pipeline parameters, but nbflow reads one parameters cell: it goes "
                f"to setup; merge it into cell {first_cell} to make its names parameters",
                n,
            )
    metric_names = _metric_names(nb, blocks["pipeline-metrics"], note)
    draft.skip = sorted({*skip, *blocks["pipeline-metrics"]})
    if blocks["pipeline-metrics"]:
        draft.comment(
            ("skip",), f"Kale's pipeline-metrics cell {blocks['pipeline-metrics'][0]} is `metrics`"
        )

    objective = _objective(meta, metric_names)
    for m in [m for m in metric_names if m in draft.parameters]:
        # Kale prints parameters in its metrics cell too; a parameter is an input of the run
        metric_names.remove(m)
        note(
            f"`{m}` printed in the pipeline-metrics cell is a pipeline parameter, not a metric: "
            "left out of `metrics`",
            blocks["pipeline-metrics"][0],
        )
    for m in metric_names:
        if objective and m == objective[0]:
            draft.metrics[m] = objective[1]
            continue
        goal = metric_goal(m)
        draft.metrics[m] = goal or "maximize"
        draft.todo(
            ("metrics", m),
            "check the goal (guessed from the name)"
            if goal
            else "maximize or minimize? Kale gives no goal",
        )
    _tuning(meta, draft, objective, note)
    _volumes(meta, draft, note)
    if meta.get("kfp_host"):
        draft.deploy = {"kfp": "api", "host": str(meta["kfp_host"])}
        draft.comment(("deploy",), "Kale's kfp_host")
    if meta.get("security_context"):
        note("Kale's security_context not translated: set it in the cluster's pod defaults")
    if meta.get("timeout"):
        note(
            f"Kale's pipeline timeout ({meta['timeout']} s) not translated: nbflow times out steps (`timeout:` per step)"
        )

    notes.sort(key=lambda n: (n.cell is None, n.cell or 0))
    flows = [
        analyse_cell(n, nb.cells[n - 1].source)
        for n in (*draft.setup, *(c for s in draft.steps for c in s.cells))
    ]
    draft.requirements = guess_requirements(imported_modules(flows), folder)
    if draft.requirements:
        draft.todo(
            ("requirements",), "check: guessed from the imports (Kale takes them from the image)"
        )
    return draft, notes


def _steps_defaults(raw: Any, note: Any) -> dict[str, Any]:
    """Kale's `steps_defaults`: a list of tags applied to every step (or, once parsed, a dict)."""
    out: dict[str, Any] = {"limits": {}}
    if isinstance(raw, dict):
        for key, value in (raw.get("limits") or {}).items():
            out["limits"][str(key)] = str(value)
        if raw.get("base_image"):
            out["image"] = str(raw["base_image"])
        if raw.get("enable_caching") is not None:
            out["cache"] = bool(raw["enable_caching"])
        for key in ("annotations", "labels", "secrets"):
            if raw.get(key):
                note(f"steps_defaults {key} not translated: {_IGNORED_WHY[key.rstrip('s')]}")
        return out
    for tag in raw or []:
        t = _parse((str(tag),))
        if t.special or t.step or t.prev or not is_kale_tag(str(tag)):
            note(f"steps_defaults entry `{tag}` is not a step setting: ignored")
        for key, value in t.limits:
            out["limits"][key] = value
        if t.image:
            out["image"] = t.image
        if t.cache is not None:
            out["cache"] = t.cache
        for ignored in t.ignored:
            note(
                f"steps_defaults `{ignored}` not translated: {_IGNORED_WHY[ignored.split(':')[0]]}"
            )
    return out


def _resources(limits: dict[str, tuple[str, int | None]], note: Any) -> dict[str, Any]:
    """Kale limits ({resource: (value, cell)}) as nbflow resources."""
    out: dict[str, Any] = {}
    for key, (value, cell) in limits.items():
        if key in ("cpu", "memory"):
            out[key] = value
        elif key.endswith("/gpu") or key == "gpu":
            try:
                out["gpu"] = int(value)
            except ValueError:
                note(f"limit:{key}:{value} not translated: a GPU count is a whole number", cell)
                continue
            if key not in ("nvidia.com/gpu", "gpu"):
                out["gpuType"] = key
        else:
            note(f"limit:{key}:{value} not translated: nbflow sets cpu, memory and GPUs", cell)
    return out


def _metric_names(nb: Notebook, cells: list[int], note: Any) -> list[str]:
    """The variables Kale's metrics cells print: one `print(name)` per line."""
    names: list[str] = []
    for n in cells:
        for line in nb.cells[n - 1].source.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = re.fullmatch(r"print\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", s)
            if m is None:
                note(f"`{s}` in the pipeline-metrics cell is not print(<variable>): ignored", n)
            elif m.group(1) not in names:
                names.append(m.group(1))
    return names


def _objective(meta: dict[str, Any], metrics: list[str]) -> tuple[str, str] | None:
    """Katib's objective as (metric variable, goal). Kale names metrics with `-` for `_`."""
    katib = meta.get("katib_metadata")
    if not isinstance(katib, dict):
        return None
    obj = katib.get("objective") or {}
    raw = obj.get("objectiveMetricName")
    if not raw:
        return None
    goal = "minimize" if obj.get("type") == "minimize" else "maximize"
    return _metric_variable(str(raw), metrics), goal


def _metric_variable(name: str, metrics: list[str]) -> str:
    for m in metrics:
        if name in (m, m.replace("_", "-")):
            return m
    return name.replace("-", "_")


def _number(text: Any, integer: bool) -> int | float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if integer or (value.is_integer() and re.fullmatch(r"\s*-?\d+\s*", str(text))):
        return int(value)
    return value


def _typed_list(items: list[Any], like: Any) -> list[Any]:
    """Katib's list items (strings) as values of the parameter's type: the default's type when
    the pipeline-parameters cell assigns one, else what every item reads as (ints, numbers,
    booleans), else strings."""
    if like is not None:
        if isinstance(like, int) and not isinstance(like, bool):
            numbers = [_number(v, False) for v in items]
            if any(isinstance(n, float) and not n.is_integer() for n in numbers):
                return [n if n is not None else str(v) for n, v in zip(numbers, items, strict=True)]
        return [_typed(v, like) for v in items]
    texts = [str(v).strip() for v in items]
    if texts and all(t.lower() in ("true", "false") for t in texts):
        return [t.lower() == "true" for t in texts]
    numbers = [_number(t, False) for t in texts]
    if texts and all(n is not None for n in numbers):
        if all(isinstance(n, int) for n in numbers):
            return numbers
        return [float(n) for n in numbers if n is not None]
    return texts


def _typed(text: Any, like: Any) -> Any:
    """A Katib list item (a string) as the type of the parameter's default."""
    if isinstance(like, bool):
        return str(text).strip().lower() in ("true", "1", "yes")
    if isinstance(like, int | float):
        number = _number(text, isinstance(like, int))
        return number if number is not None else text
    return str(text)


def _tuning(
    meta: dict[str, Any], draft: Draft, objective: tuple[str, str] | None, note: Any
) -> None:
    katib = meta.get("katib_metadata")
    if not isinstance(katib, dict) or not katib.get("parameters"):
        if meta.get("katib_run"):
            note("katib_run is on but katib_metadata has no parameters: no tuning written")
        return
    tuning: dict[str, Any] = {}
    path = ("tuning",)
    if objective is None:
        tuning["objective"] = next(iter(draft.metrics), "metric")
        draft.todo((*path, "objective"), "Kale's Katib settings name no objective metric")
    else:
        var, goal = objective
        tuning["objective"] = var
        if var not in draft.metrics:
            draft.metrics[var] = goal
            draft.todo(
                ("metrics", var), "Katib's objective, not printed in Kale's pipeline-metrics cell"
            )
    if not meta.get("katib_run"):
        draft.comment(path, "Kale's katib_run was off")
    algo = katib.get("algorithm") or {}
    name = str(algo.get("algorithmName") or "random")
    if name in ALGORITHMS:
        tuning["algorithm"] = name
    else:
        tuning["algorithm"] = "random"
        draft.todo((*path, "algorithm"), f"Kale's algorithm `{name}` has no nbflow equivalent")
        note(
            f"Katib algorithm `{name}` not translated: nbflow tunes with {', '.join(sorted(ALGORITHMS))}"
        )
    settings, dropped = _settings(tuning["algorithm"], algo.get("algorithmSettings") or [])
    if dropped:
        # Kale's panel keeps the settings of an algorithm chosen before: Katib would reject them
        draft.comment(
            (*path, "algorithm"),
            f"Kale's settings {', '.join(dropped)} are not {tuning['algorithm']}'s: left out",
        )
        note(
            f"Katib settings {', '.join(dropped)} do not apply to the {tuning['algorithm']} "
            "algorithm: not translated"
        )
    if settings:
        tuning["settings"] = settings
    for key in ALGORITHM_REQUIRED.get(tuning["algorithm"], ()):
        if key not in settings:
            draft.todo((*path, "algorithm"), f"{tuning['algorithm']} needs the setting `{key}`")
    if algo.get("earlyStopping") or katib.get("earlyStopping"):
        note("Katib early stopping not translated")
    tuning["maxTrials"] = int(katib.get("maxTrialCount") or 12)  # Kale's defaults
    tuning["parallelTrials"] = int(katib.get("parallelTrialCount") or 3)
    tuning["maxFailedTrials"] = int(katib.get("maxFailedTrialCount") or 3)
    target = (katib.get("objective") or {}).get("goal")
    if isinstance(target, int | float) and not isinstance(target, bool):
        tuning["goal"] = target
    extra = (katib.get("objective") or {}).get("additionalMetricNames") or []
    if extra:
        tuning["additionalMetrics"] = [_metric_variable(str(m), list(draft.metrics)) for m in extra]
    search: dict[str, Any] = {}
    unknown: list[str] = []
    for p in katib["parameters"]:
        if not isinstance(p, dict) or not p.get("name"):
            continue
        pname = str(p["name"])
        kind = p.get("parameterType")
        space = p.get("feasibleSpace") or {}
        if pname not in draft.parameters:
            # Kale does not check that Katib's parameters are the notebook's: a search over a
            # name no cell assigns changes nothing, and Katib's count of trials goes wrong
            match = _parameter_like(pname, list(draft.parameters))
            if match is None or match in search:
                unknown.append(pname)
                continue
            draft.todo(
                (*path, "search", match),
                f"check: Kale's Katib parameter `{pname}` is not a pipeline parameter; "
                f"taken as `{match}`",
            )
            pname = match
        default = draft.parameters.get(pname)
        if kind in ("int", "double"):
            integer = kind == "int"
            entry: dict[str, Any] = {
                k: _number(space.get(k), integer)
                for k in ("min", "max", "step")
                if space.get(k) not in (None, "")
            }
            if space.get("distribution"):
                entry["distribution"] = str(space["distribution"])
            search[pname] = entry
        elif kind in ("categorical", "discrete"):
            items = [v for v in space.get("list") or [] if v is not None]
            values = _typed_list(items, default)
            numeric = all(fits(v, "float") for v in values)
            if (
                isinstance(default, int)
                and fits(default, "int")
                and numeric
                and not all(fits(v, "int") for v in values)
            ):
                # `lr = 0` with values 0.001, 0.01: the parameter is a float
                draft.parameters[pname] = float(default)
                draft.comment(("parameters", pname), "a float: Katib searches fractions")
            elif default is not None and not all(
                fits(v, infer_type(default) or "") for v in values
            ):
                draft.todo(
                    (*path, "search", pname),
                    f"Katib's values {items!r} do not all fit the {infer_type(default)} default "
                    f"`{default!r}` of the pipeline-parameters cell: change one of them",
                )
            search[pname] = list(dict.fromkeys(values))
        else:
            note(f"Katib parameter `{pname}` has type `{kind}`: not translated")
    if unknown:
        names = ", ".join(f"`{u}`" for u in unknown)
        note(
            f"Katib parameter{'s' * (len(unknown) > 1)} {names} assigned in no "
            "pipeline-parameters cell: not searched"
        )
        draft.todo(
            (*path, "search"),
            f"Kale's Katib searched {names} too, which the pipeline-parameters cell does not "
            "assign: left out",
        )
    if not search:
        note("no Katib parameter is a pipeline parameter: no tuning written")
        draft.comments = {k: v for k, v in draft.comments.items() if k[:1] != ("tuning",)}
        return
    tuning["search"] = search
    if tuning["algorithm"] == "grid":
        _grid_trials(tuning, draft)
    draft.tuning = tuning


def _parameter_like(name: str, parameters: list[str]) -> str | None:
    """The one pipeline parameter a Katib parameter's name most likely means: the same name
    in another case or with `-` for `_`, the initials of its words (`lr`, `learning_rate`),
    or a close spelling."""
    import difflib

    def norm(n: str) -> str:
        return n.lower().replace("-", "_")

    same = [p for p in parameters if norm(p) == norm(name)]
    if len(same) == 1:
        return same[0]
    initials = [
        p
        for p in parameters
        if "_" in p and "".join(w[:1] for w in norm(p).split("_") if w) == norm(name)
    ]
    if len(initials) == 1:
        return initials[0]
    close = difflib.get_close_matches(norm(name), [norm(p) for p in parameters], n=2, cutoff=0.8)
    if len(close) == 1:
        return next(p for p in parameters if norm(p) == close[0])
    return None


def _settings(algorithm: str, raw: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """Kale's algorithmSettings that `algorithm` takes, typed; and the names of the others."""
    allowed = ALGORITHM_SETTINGS.get(algorithm, {})
    settings: dict[str, Any] = {}
    dropped: list[str] = []
    for s in raw:
        if not isinstance(s, dict) or not s.get("name"):
            continue
        key, value = str(s["name"]), s.get("value")
        if key not in allowed:
            dropped.append(key)
            continue
        kind = allowed[key]
        number = _number(value, kind == "int") if kind in ("int", "float") else None
        settings[key] = number if number is not None else str(value)
    return settings, dropped


def _grid_trials(tuning: dict[str, Any], draft: Draft) -> None:
    """Katib's grid runs each combination once and rejects more trials than combinations:
    maxTrials (and parallelTrials) come down to their number, with a comment."""
    combinations = 1
    for name, space in tuning["search"].items():
        if isinstance(space, list):
            combinations *= max(len(space), 1)
        elif space.get("step") and isinstance(space.get("min"), int | float):
            lo, hi, step = space["min"], space["max"], space["step"]
            combinations *= int((hi - lo) / step + 1e-9) + 1
        else:
            draft.todo(
                ("tuning", "search", name),
                "grid search needs a `step` here: add one, or choose another algorithm",
            )
            return
    if tuning["maxTrials"] > combinations:
        draft.comment(
            ("tuning", "maxTrials"),
            f"Kale's maxTrialCount was {tuning['maxTrials']}; the grid has {combinations} "
            "combinations",
        )
        tuning["maxTrials"] = combinations
    if tuning["parallelTrials"] > tuning["maxTrials"]:
        tuning["parallelTrials"] = tuning["maxTrials"]
    if tuning["maxFailedTrials"] > tuning["maxTrials"]:
        tuning["maxFailedTrials"] = tuning["maxTrials"]


def _volumes(meta: dict[str, Any], draft: Draft, note: Any) -> None:
    taken: set[str] = set()
    storage_default = meta.get("storage_class_name")
    mode_default = meta.get("volume_access_mode")
    for v in meta.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        kind = v.get("type")
        raw_name = str(v.get("name") or "")
        mount = v.get("mount_point")
        if kind not in ("pvc", "new_pvc"):
            note(
                f"volume `{raw_name}` of type `{kind}` not translated: nbflow mounts claims (pvc) or creates them (new_pvc)"
            )
            continue
        name = unique(slug(raw_name, fallback="volume"), taken)
        vol: dict[str, Any] = {"name": name, "mountPath": mount}
        if kind == "pvc":
            vol["claim"] = raw_name
        else:
            size, unit = v.get("size"), v.get("size_type") or "Gi"
            vol["size"] = f"{size}{unit}" if size else "1Gi"
            if not size:
                draft.todo(("volumes", str(len(draft.volumes))), "Kale gave no size")
            storage = v.get("storage_class_name") or storage_default
            if storage:
                vol["storageClass"] = str(storage)
            mode = _ACCESS_MODES.get(str(v.get("volume_access_mode") or mode_default or ""))
            if mode:
                vol["accessMode"] = mode
        if v.get("annotations"):
            note(
                f"annotations of volume `{raw_name}` not translated: nbflow has no claim annotations"
            )
        if v.get("expose_as_env_var") and isinstance(mount, str):
            draft.env["KALE_VOLUME_" + re.sub(r"[^A-Z0-9]", "_", raw_name.upper())] = mount
        draft.volumes.append(vol)


def strip_kale(path: Path) -> bool:
    """Remove Kale's tags from every cell and its metadata from the notebook; True if changed."""
    import warnings

    import nbformat

    with warnings.catch_warnings():  # nbformat warns about what it fixes (missing cell ids)
        warnings.simplefilter("ignore")
        nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    changed = nb.metadata.pop(KALE_METADATA_KEY, None) is not None
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        if not tags:
            continue
        kept = [t for t in tags if not (isinstance(t, str) and is_kale_tag(t))]
        if len(kept) != len(tags):
            changed = True
            if kept:
                cell.metadata["tags"] = kept
            else:
                del cell.metadata["tags"]
    if changed:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.write(nb, str(path))
    return changed
