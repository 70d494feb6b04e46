"""Generate the KFP pipeline of a project as Python source for the kfp SDK to compile.

nbflow never writes pipeline IR itself: it writes a small, readable Python module of
`@dsl.component` functions (one per step) and one `@dsl.pipeline` function, then lets the kfp
compiler turn it into IR (`nbflow.generate.build`). The module is written to a real file because the
SDK reads each component's source with `inspect.getsource`.

Every name that comes from the manifest or the notebook reaches the generated code either as a
`repr()` literal or as an identifier that validation already proved to be one (parameters,
metrics and variables are Python identifiers; step names are DNS labels, mapped to
`step_<name with - as _>`). Generated names start with `_nbf_`, a prefix that validation
forbids for parameters, so nothing a user names can shadow them; those made from a step or
volume name come from `generated_name`, which keeps them apart from each other.

The component's function source ends up in the container's command, where KFP (the cluster's
launcher and kfp.local alike) substitutes placeholders such as `{{$}}` before the step runs.
So the step program (the cells' code, names, the notebook's file name) travels compressed and
encoded (`nbflow.incluster.runtime.program.encode_program`, the runtime decodes it): no text a
user wrote is in the command as text. Requirements reach pip through `sh -c`, quoted
for sh by `sh_quote` (kfp's own `packages_to_install` quotes with `repr()`, which sh reads
differently), with `{{` broken up so that no placeholder can form.

The step runtime (the package `nbflow/incluster/runtime`) is carried once: the pipeline's first
task, `nbflow-runtime` (no inputs, so cached after its first run), writes it, a zip archive
packed by `nbflow.generate.runtime`, to an artifact that every step takes as its input
`runtime`, checks and imports. Each step's component holds only its own program and the few
lines that load the runtime and call it.

Two targets share one generator:
- `cluster`: step components pip-install kfp (kfp's own script), then IPython, cloudpickle and
  the manifest's requirements at start, as KFP lightweight components do; the runtime task is a container
  component (`python3 -c`) that installs nothing; Kubernetes settings (timeouts, node selectors,
  tolerations, volumes) are applied with kfp-kubernetes.
- `local`: for kfp.local in this interpreter: nothing is installed, Kubernetes-only settings
  are left out (kfp.local ignores them), and the pipeline returns each step's report and
  metrics so that `nbflow run` can show them, cached steps included.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbflow import __version__
from nbflow.check.manifest import Volume
from nbflow.check.project import Project, StepConfig
from nbflow.generate.runtime import RUNTIME_PACKAGE, packed_runtime, unpack_runtime, unpack_script
from nbflow.incluster.runtime.program import encode_program

if TYPE_CHECKING:
    from nbflow.dataflow.plan import StepPlan

Target = Literal["cluster", "local"]
RUNTIME_PACKAGES = ("ipython", "cloudpickle")


@cache
def _packed_runtime() -> str:
    return packed_runtime()  # packed once per process


@cache
def _runtime_digest() -> str:
    """SHA-256 of the runtime's archive as the runtime task writes it: each step checks it
    before importing the runtime from it."""
    return hashlib.sha256(unpack_runtime(_packed_runtime())).hexdigest()


# The runtime task: its component function, the alias the pipeline calls it by and its task's
# variable. Step names are DNS labels (no `_`), so `_nbf__...` names can't be a step's.
RUNTIME_FUNC = "nbflow_runtime"
RUNTIME_TASK = RUNTIME_FUNC.replace("_", "-")
_RUNTIME_VAR = "_nbf__runtime"


def func_name(step: str) -> str:
    return "step_" + step.replace("-", "_")


def task_name(step: str) -> str:
    """The task name the kfp SDK derives from the component function's name."""
    return func_name(step).replace("_", "-")


GeneratedKind = Literal["task", "component"]


def generated_name(kind: GeneratedKind, name: str) -> str:
    """The generated identifier of a step's task or component alias:
    `_nbf_<kind>_<name with - as _>`. One name for one (kind, name): `name` is a DNS label
    (no `_`), so the kind is the text between `_nbf_` and the next `_`, and `-` to `_` loses
    nothing. The fixed names are none of these: `_nbf_k8s`, `_nbf_Outputs`, `_nbf_cleanup`
    have no `_` after their word, `_nbf_run_pvc` has `run`, the runtime's start `_nbf__`."""
    return f"_nbf_{kind}_{name.replace('-', '_')}"


def _var(step: str) -> str:
    return generated_name("task", step)


def _alias(step: str) -> str:
    return generated_name("component", step)


def _requirement_name(req: str) -> str:
    """The normalised project name of a requirement (validated as PEP 508 already)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(req).name)


def packages(project: Project, step: StepConfig) -> list[str]:
    """pip requirements of a step on the cluster: the runtime's own needs, then the user's."""
    listed = {_requirement_name(r) for r in step.requirements}
    extra = [p for p in RUNTIME_PACKAGES if p not in listed]
    return [*extra, *step.requirements]


def sh_quote(text: str) -> str:
    """`text` as one word for POSIX sh, taken literally, and with no `{{` in it.

    Single quotes keep everything literal (`$`, backticks, `;`, `"`, newlines); a `'` closes the
    quote, is written escaped and the quote reopens. `''` (an empty quoted word, which sh joins
    away) goes between two braces, so the command holds no `{{` for KFP or Argo to expand. A
    word of only letters, digits and `@%+=:,./-_` (`numpy`, `scikit-learn==1.5`), which sh
    reads as it is, stays unquoted, as `shlex.quote` leaves it.
    """
    if _SH_PLAIN.fullmatch(text):
        return text
    return "'" + re.sub(r"\{(?=\{)", "{''", text.replace("'", "'\\''")) + "'"


_SH_PLAIN = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


PIP_INSTALL = (
    "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location"
)


ENSURE_PIP = (
    'if ! [ -x "$(command -v pip)" ]; then\n'
    "    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip\n"
    "fi\n"
)


def install_script(requirements: Sequence[str], *, ensure_pip: bool = True) -> str:
    """The `sh -c` script that pip-installs `requirements`, each one argument to pip, then runs
    the rest of the container's command (`"$0" "$@"`), as kfp's own install script does. With
    `ensure_pip`, it first installs pip where the image lacks it (as kfp's script does: not
    needed after kfp's)."""
    words = " ".join(sh_quote(r) for r in requirements)
    return (ENSURE_PIP if ensure_pip else "") + f'{PIP_INSTALL} -- {words} && "$0" "$@"\n'


def brings_kfp(requirements: Sequence[str]) -> bool:
    """Whether the user lists kfp (or a kfp-* package) themselves: then, as kfp decides for
    `packages_to_install`, kfp is not installed over their pin."""
    return any(_requirement_name(r).startswith("kfp") for r in requirements)


KFP_KUBERNETES_IMPORT = "from kfp import kubernetes as _nbf_k8s"


def written_paths(project: Project) -> set[str]:
    """The literal relative paths that a pipeline cell (setup or step) writes."""
    from nbflow.dataflow.files import literal_paths

    pipeline_cells = [*project.setup, *(c for s in project.steps for c in s.cells)]
    return {u.path for c in pipeline_cells for u in literal_paths(project.source(c)) if u.writes}


def data_files(
    project: Project, step: StepConfig, written: set[str] | None = None
) -> dict[str, str]:
    """SHA-256 of each file beside the notebook that the step's (or setup's) cells read by a
    literal relative path and no pipeline cell writes, by path as written. `written` is
    `written_paths(project)`, computed once for all steps (else per step: quadratic)."""
    import hashlib

    from nbflow.dataflow.files import literal_paths

    if written is None:
        written = written_paths(project)
    out: dict[str, str] = {}
    for cell in (*project.setup, *step.cells):
        for use in literal_paths(project.source(cell)):
            path = project.notebook_dir / use.path
            if use.writes or use.path in written or use.path in out or not path.is_file():
                continue
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            out[use.path] = digest.hexdigest()
    return dict(sorted(out.items()))


def generate(project: Project, target: Target, *, cache: bool = True) -> str:
    """The generated module's source. `cache=False` turns the cache off for every step (not for
    the runtime task, whose output depends on nothing but its own code): `nbflow run
    --no-cache`."""
    plan = project.plan
    local = target == "local"
    out: list[str] = [
        f"# Generated by nbflow {__version__} from {project.manifest_path.name} ({target} target): do not edit.",
        "from typing import NamedTuple",
        "",
        "from kfp import dsl",
    ]
    uses_k8s = not local and (
        any(_k8s_settings(s) for s in project.steps) or any(sp.metrics for sp in plan.steps)
    )
    if uses_k8s:
        out.append(KFP_KUBERNETES_IMPORT)
    out.append("")
    param_types = {p.name: p.type for p in project.parameters}
    out += _runtime_component(project, local)
    written = written_paths(project)
    for sp in plan.steps:
        step = project.step(sp.name)
        out += _component(project, step, sp, param_types, local, written)
    out += _pipeline(project, param_types, local, cache)
    return "\n".join(out) + "\n"


def _runtime_component(project: Project, local: bool) -> list[str]:
    """The component of the pipeline's first task: it writes the step runtime, carried here
    once, packed, into an artifact that every step loads. It has no inputs, so KFP serves it
    from the cache after its first run. It runs in the first step's image.

    On a cluster it is a container component, `python3 -c` and the artifact's path: it needs
    nothing but Python, neither pip nor kfp. kfp.local runs lightweight components only, so
    locally it is one, installing nothing either."""
    plan = project.plan
    assert plan is not None
    image = project.step(plan.steps[0].name).image
    doc = '    """The nbflow step runtime (nbflow/incluster/runtime, zipped) for every step to load."""'
    packed = f"packed = {_packed_runtime()!r}"
    if local:
        lines = [
            "@dsl.component(",
            f"    base_image={image!r},",
            "    install_kfp_package=False,",
            ")",
            f"def {RUNTIME_FUNC}(runtime: dsl.Output[dsl.Artifact]):",
            doc,
            "    import base64",
            "    import lzma",
            "",
            f"    {packed}",
            '    with open(runtime.path, "wb") as f:',
            f"        f.write({unpack_script()})",
        ]
    else:
        script = (
            "import base64, lzma, os, sys\n"
            f"{packed}\n"
            "os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)\n"
            'with open(sys.argv[1], "wb") as f:\n'
            f"    f.write({unpack_script()})\n"
        )
        lines = [
            "@dsl.container_component",
            f"def {RUNTIME_FUNC}(runtime: dsl.Output[dsl.Artifact]):",
            doc,
            "    return dsl.ContainerSpec(",
            f"        image={image!r},",
            f"        command=['python3', '-c', {script!r}],",
            "        args=[runtime.path],",
            "    )",
        ]
    return [*lines, "", "", f"_nbf__{RUNTIME_FUNC} = {RUNTIME_FUNC}", "", ""]


def _component(
    project: Project,
    step: StepConfig,
    sp: StepPlan,
    param_types: dict[str, str],
    local: bool,
    written: set[str],
) -> list[str]:
    nb = project.notebook
    cells = [{"number": c, "source": nb.cells[c - 1].source, "setup": True} for c in project.setup]
    cells += [{"number": c, "source": nb.cells[c - 1].source, "setup": False} for c in step.cells]
    program: dict[str, object] = {
        "pipeline": project.name,
        "step": step.name,
        "notebook": Path(project.notebook.path).name,
        "cells": cells,
        "inputs": [v for v, _ in sp.inputs],
        "outputs": list(sp.outputs),
        "parameters": list(sp.parameters),
        "metrics": list(sp.metrics),
        "imports": list(sp.imports),
    }
    files = data_files(project, step, written)
    if files:
        # their content is in the component: a changed file is a new cache key and version
        program["files"] = files
    if local:
        # Jupyter runs a notebook in its folder: so does a local run (relative paths, modules
        # beside the notebook); on a cluster the step runs in its image's working directory
        program["workdir"] = str(project.notebook_dir.resolve())
    args = ["    runtime: dsl.Input[dsl.Artifact],"]
    args += [f"    in_{v}: dsl.Input[dsl.Artifact]," for v, _ in sp.inputs]
    args += [f"    param_{p}: {param_types[p]}," for p in sp.parameters]
    args += [f"    out_{v}: dsl.Output[dsl.Artifact]," for v in sp.outputs]
    args.append("    report: dsl.Output[dsl.HTML],")
    if sp.metrics:
        args.append("    metrics: dsl.Output[dsl.Metrics],")
    decorator = [
        "@dsl.component(",
        f"    base_image={step.image!r},",
    ]
    if local or brings_kfp(step.requirements):
        decorator.append("    install_kfp_package=False,")
    decorator.append(")")
    body = [
        f"def {func_name(step.name)}(",
        *args,
        "):",
        # ''' rather than """: YAML writes each `"` of the command as two characters (a step's
        # name, a DNS label, holds no quote)
        f"    '''nbflow step {step.name}: notebook cells {', '.join(map(str, step.cells))}.'''",
        # the modules the step uses to load the runtime; only the function's body travels
        # into the container
        "    import hashlib, pathlib, sys, tempfile",
        # The step runtime, from the pipeline's first task: imported only if its archive is the
        # one this pipeline was built with (whoever can write the artifact store could swap
        # it), and from a private copy of the bytes checked, not from the artifact's path.
        # Single quotes, for YAML as above.
        "    archive = pathlib.Path(runtime.path).read_bytes()",
        f"    if hashlib.sha256(archive).hexdigest() != {_runtime_digest()!r}:",
        "        raise RuntimeError('the nbflow runtime artifact is not the one this pipeline was "
        "built with: refusing to run it (docs/security.md)')",
        f"    path = pathlib.Path(tempfile.mkdtemp(), '{RUNTIME_PACKAGE}.zip')",
        "    path.write_bytes(archive)",
        "    sys.path.insert(0, str(path))",
        f"    from {RUNTIME_PACKAGE} import run",
        # the program travels encoded (`encode_program`): no text a user wrote is in the
        # command as text, no KFP placeholder can form there
        "    run(",
        f"        {encode_program(program)!r},",
        "        inputs={" + ", ".join(f"{v!r}: in_{v}" for v, _ in sp.inputs) + "},",
        "        outputs={" + ", ".join(f"{v!r}: out_{v}" for v in sp.outputs) + "},",
        "        parameters={" + ", ".join(f"{p!r}: param_{p}" for p in sp.parameters) + "},",
        "        report=report,",
        *(["        metrics=metrics,"] if sp.metrics else []),
        "    )",
    ]
    install: list[str] = []
    if not local:
        # pip gets the requirements through this script rather than `packages_to_install`.
        # It runs after kfp's own install script (`sh -c SCRIPT` at the command's start, which
        # makes sure of pip first) when kfp installs itself, else first, making sure of pip.
        after_kfp = not brings_kfp(step.requirements)
        script = install_script(packages(project, step), ensure_pip=not after_kfp)
        at = "3:3" if after_kfp else ":0"
        install = [
            "",
            "# requirements quoted for sh by nbflow, not by kfp's repr(): see `sh_quote`",
            f"{func_name(step.name)}.component_spec.implementation.container.command[{at}] = "
            f"['sh', '-c', {script!r}]",
        ]
    # the pipeline body calls the component through an `_nbf_` alias that no parameter can shadow
    alias = f"{_alias(step.name)} = {func_name(step.name)}"
    return [*decorator, *body, *install, "", alias, "", ""]


def _k8s_settings(step: StepConfig) -> bool:
    s = step.spec
    return bool(s.timeout or s.nodeSelector or s.tolerations or step.volumes)


def _pipeline(
    project: Project, param_types: dict[str, str], local: bool, cache: bool = True
) -> list[str]:
    plan = project.plan
    m = project.manifest
    out: list[str] = []
    outputs: list[tuple[str, str, str]] = []  # (name, type, expression)
    if local:
        for sp in plan.steps:
            key = sp.name.replace("-", "_")
            outputs.append((f"report_{key}", "dsl.HTML", f"{_var(sp.name)}.outputs['report']"))
            if sp.metrics:
                outputs.append(
                    (f"metrics_{key}", "dsl.Metrics", f"{_var(sp.name)}.outputs['metrics']")
                )
        out.append(
            "_nbf_Outputs = NamedTuple('_nbf_Outputs', ["
            + ", ".join(f"({n!r}, {t})" for n, t, _ in outputs)
            + "])"
        )
        out.append("")
    out.append(f"@dsl.pipeline(name={m.name!r}, description={(m.description or '')!r})")
    params = [f"{p.name}: {p.type} = {p.default!r}" for p in project.parameters]
    sig = ", ".join(params)
    out.append(f"def pipeline({sig})" + (" -> _nbf_Outputs:" if local else ":"))
    body: list[str] = []
    per_run_volumes = [v for v in m.volumes if v.size is not None] if not local else []
    if per_run_volumes:
        # One claim per run, named by the run's id, a folder (subPath) per volume: the exit
        # handler deletes it when the run ends, failed or not. An exit task may depend on no
        # task, so it cannot take the claim's name from CreatePVC's output; KFP resolves a
        # placeholder that is a whole input value, so both take the run id.
        first = per_run_volumes[0]
        args = [
            "pvc_name=dsl.PIPELINE_JOB_ID_PLACEHOLDER",
            f"access_modes=[{first.accessMode!r}]",
            f"size={_total_size(per_run_volumes)!r}",
        ]
        if first.storageClass:
            args.append(f"storage_class_name={first.storageClass!r}")
        body.append("_nbf_cleanup = _nbf_k8s.DeletePVC(pvc_name=dsl.PIPELINE_JOB_ID_PLACEHOLDER)")
        body.append("with dsl.ExitHandler(_nbf_cleanup, name='nbflow-run'):")
        body.append(f"    _nbf_run_pvc = _nbf_k8s.CreatePVC({', '.join(args)})")
    start = len(body)
    body.append(f"{_RUNTIME_VAR} = _nbf__{RUNTIME_FUNC}()")
    if not local:
        body.append(f"{_RUNTIME_VAR}.set_display_name('nbflow runtime')")
    for sp in plan.steps:
        step = project.step(sp.name)
        var = _var(sp.name)
        call_args = [f"runtime={_RUNTIME_VAR}.outputs['runtime']"]
        call_args += [f"in_{v}={_var(src)}.outputs['out_{v}']" for v, src in sp.inputs]
        call_args += [f"param_{p}={p}" for p in sp.parameters]
        body.append(f"{var} = {_alias(sp.name)}({', '.join(call_args)})")
        if not local:  # kfp.local ignores display names and resources, and warns about them
            body.append(f"{var}.set_display_name({sp.name!r})")
        data_upstream = {src for _, src in sp.inputs}
        for up in sp.upstream:
            if up not in data_upstream:
                body.append(f"{var}.after({_var(up)})")
        body += _task_settings(step, var, local, cache)
        if sp.metrics and not local:
            # the Katib trial launcher reads the metric lines from this pod's log
            # (docs/launcher.md): label the pod, and when the pipeline is tuned never let the
            # step be served from the cache, which runs no pod and leaves no log to read
            body.append(f"_nbf_k8s.add_pod_label({var}, 'nbflow.dev/metrics', 'true')")
            if m.tuning is not None and step.spec.cache:
                body.append(f"{var}.set_caching_options(False)")
    if per_run_volumes:
        body[start:] = ["    " + line for line in body[start:]]
    if local:
        body.append("return _nbf_Outputs(" + ", ".join(f"{n}={e}" for n, _, e in outputs) + ")")
    out += ["    " + line for line in body]
    return out


def _task_settings(step: StepConfig, var: str, local: bool, cache: bool = True) -> list[str]:
    s = step.spec
    lines: list[str] = []
    if not s.cache or not cache:
        lines.append(f"{var}.set_caching_options(False)")
    if s.retries:
        lines.append(f"{var}.set_retry(num_retries={s.retries})")
    r = step.resources
    if r is not None and not local:
        if r.cpu:
            lines.append(f"{var}.set_cpu_request({r.cpu!r})")
        if r.cpuLimit or r.cpu:
            lines.append(f"{var}.set_cpu_limit({(r.cpuLimit or r.cpu)!r})")
        if r.memory:
            lines.append(f"{var}.set_memory_request({r.memory!r})")
        if r.memoryLimit or r.memory:
            lines.append(f"{var}.set_memory_limit({(r.memoryLimit or r.memory)!r})")
        if r.gpu:
            lines.append(f"{var}.set_accelerator_type({r.gpuType!r})")
            lines.append(f"{var}.set_accelerator_limit({r.gpu})")
    for name, value in sorted(step.env.items()):
        lines.append(f"{var}.set_env_variable(name={name!r}, value={value!r})")
    if local:
        return lines
    if s.timeout:
        lines.append(f"_nbf_k8s.set_timeout({var}, {s.timeout})")
    for key, value in sorted(s.nodeSelector.items()):
        lines.append(f"_nbf_k8s.add_node_selector({var}, label_key={key!r}, label_value={value!r})")
    for t in s.tolerations:
        args = [
            f"{k}={getattr(t, f)!r}"
            for k, f in (
                ("key", "key"),
                ("operator", "operator"),
                ("value", "value"),
                ("effect", "effect"),
                ("toleration_seconds", "tolerationSeconds"),
            )
            if getattr(t, f) is not None
        ]
        lines.append(f"_nbf_k8s.add_toleration({var}, {', '.join(args)})")
    for v in step.volumes:
        if v.claim:
            lines.append(
                f"_nbf_k8s.mount_pvc({var}, pvc_name={v.claim!r}, mount_path={v.mountPath!r})"
            )
        else:
            lines.append(
                f"_nbf_k8s.mount_pvc({var}, pvc_name=_nbf_run_pvc.outputs['name'], "
                f"mount_path={v.mountPath!r}, sub_path={v.name!r})"
            )
    return lines


def _total_size(volumes: list[Volume]) -> str:
    """The sizes of the volumes a run creates, added up, as a Kubernetes quantity."""
    from nbflow.check.quantities import quantity_value

    total = sum((quantity_value(v.size or "0") or Decimal(0) for v in volumes), Decimal(0))
    for suffix, unit in (("Gi", 2**30), ("Mi", 2**20)):
        if total % unit == 0:
            return f"{total // unit}{suffix}"
    return str(int(total.to_integral_value(rounding="ROUND_CEILING")))
