"""The generated KFP pipeline, judged by what the real kfp compiler makes of it (the IR and the
platform spec), never by the generated Python text."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbflow.generate.build import compile_source
from nbflow.generate.kfp_source import generate
from tests.support.projects import load, md, tagged, write_project

# Values that must survive every layer (YAML manifest -> Python literal -> IR YAML) unchanged.
TRICKY = 'say "hi"\n""" and \'\'\' and \\n, a tab\t, ü and {braces} %s'
TRICKY_YAML = json.dumps(TRICKY)  # a JSON string is a YAML double-quoted scalar
CELL_SOURCES = {
    "load": 'a = np.arange(n)\ntext = """triple "quoted" \\\\ back\\nslash""" + \'\'\'more\'\'\'',
    "left": "b = a * C  # ü",
    "right": "c = a + 1\nlabel = name + text",
    "join": "total = float(b.sum() + c.sum())\nprint(label)",
}

KITCHEN_CELLS = [
    "import numpy as np",
    tagged(f"C = 1.0\nn = 3\nname = {TRICKY!r}", "parameters"),
    md("## Load"),
    CELL_SOURCES["load"],
    CELL_SOURCES["left"],
    CELL_SOURCES["right"],
    CELL_SOURCES["join"],
]
KITCHEN_MANIFEST = f"""
name: kitchen
description: {TRICKY_YAML}
image: python:3.11-slim
env: {{GREETING: {TRICKY_YAML}, PLAIN: ok}}
resources: {{cpu: 250m, memory: 256Mi}}
setup: 1
volumes:
  - {{name: data, mountPath: /data, claim: my-claim}}
  - {{name: scratch, mountPath: /scratch, size: 5Gi, storageClass: fast, accessMode: ReadWriteMany}}
steps:
  load:
    cells: 4
    volumes: [data]
  left:
    cells: 5
    image: python:3.12-slim
    resources: {{cpu: 500m, memory: 1Gi, cpuLimit: "1", memoryLimit: 2Gi, gpu: 2, gpuType: amd.com/gpu}}
    retries: 3
    timeout: 90s
    nodeSelector: {{pool: gpu, zone: a}}
    tolerations:
      - {{key: gpu, operator: Equal, value: "yes", effect: NoExecute, tolerationSeconds: 60}}
      - {{key: spot, operator: Exists}}
    volumes: [scratch]
  right:
    cells: 6
    cache: false
    resources: {{gpu: 1}}
    env: {{STEP_ONLY: "1"}}
    volumes: []
  join:
    cells: 7
    volumes: []
parameters:
  C: 1.0
  n: 3
  name: {{type: str, default: {TRICKY_YAML}}}
metrics: {{total: maximize}}
"""


class Compiled:
    """The two YAML documents of a compiled pipeline: the IR and the platform spec."""

    def __init__(self, text: str) -> None:
        docs = [d for d in yaml.safe_load_all(text) if d]
        self.text = text
        self.ir: dict[str, Any] = docs[0]
        self.platform: dict[str, Any] = docs[1] if len(docs) > 1 else {}

    @property
    def tasks(self) -> dict[str, Any]:
        """The tasks of every DAG: the root's and those of groups (the exit handler's)."""
        out = dict(self.ir["root"]["dag"]["tasks"])
        for component in self.ir["components"].values():
            out.update(component.get("dag", {}).get("tasks", {}))
        return out

    def component(self, task: str) -> dict[str, Any]:
        return self.ir["components"][self.tasks[task]["componentRef"]["name"]]

    def container(self, task: str) -> dict[str, Any]:
        label = self.component(task)["executorLabel"]
        return self.ir["deploymentSpec"]["executors"][label]["container"]

    def k8s(self, task: str) -> dict[str, Any]:
        label = self.component(task)["executorLabel"]
        executors = self.platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        return executors.get(label, {})

    def artifacts(self, task: str, side: str) -> dict[str, str]:
        defs = self.component(task).get(f"{side}Definitions", {}).get("artifacts", {})
        return {name: d["artifactType"]["schemaTitle"] for name, d in defs.items()}

    def parameters(self, task: str) -> dict[str, str]:
        defs = self.component(task).get("inputDefinitions", {}).get("parameters", {})
        return {name: d["parameterType"] for name, d in defs.items()}

    def code(self, task: str) -> str:
        """The component's Python source, as the container receives it."""
        return self.container(task)["command"][-1]

    def program(self, task: str) -> dict[str, Any]:
        """The step program the component carries: the first argument of its call to the
        runtime (`run('...', inputs=..., ...)`), encoded by `encode_program`."""
        from nbflow.incluster.runtime.program import decode_program

        for node in ast.walk(ast.parse(self.code(task))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "run"
                and isinstance(node.args[0], ast.Constant)
            ):
                return decode_program(node.args[0].value)
        raise AssertionError(f"no program in {task}")


def _encoded(program: dict[str, Any]) -> str:
    """The program as the component's source carries it."""
    from nbflow.incluster.runtime.program import encode_program

    return encode_program(program)


def compile_project(project: Any, target: str, tmp: Path) -> Compiled:
    tmp.mkdir(parents=True, exist_ok=True)
    return Compiled(compile_source(generate(project, target), tmp))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = write_project(tmp_path_factory.mktemp("kitchen"), KITCHEN_CELLS, KITCHEN_MANIFEST)
    return load(root)


@pytest.fixture(scope="module")
def cluster(kitchen: Any, tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_project(kitchen, "cluster", tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def local(kitchen: Any, tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_project(kitchen, "local", tmp_path_factory.mktemp("local"))


STEPS = ("load", "left", "right", "join")


def test_one_task_per_step_named_as_the_step(cluster: Compiled) -> None:
    steps = {t: v for t, v in cluster.tasks.items() if t.startswith("step-")}
    assert sorted(steps) == sorted(f"step-{s}" for s in STEPS)
    assert {v["taskInfo"]["name"] for v in steps.values()} == set(STEPS)
    # plus the task that provides the step runtime, the claim created for this run, its
    # deletion and the exit handler that runs it
    assert set(cluster.tasks) - set(steps) == {
        "nbflow-runtime",
        "createpvc",
        "deletepvc",
        "exit-handler-1",
    }


def test_one_artifact_per_variable_on_an_edge(cluster: Compiled) -> None:
    # `a` is read by two steps: still one output of `load`, consumed twice
    assert cluster.artifacts("step-load", "output") == {
        "out_a": "system.Artifact",
        "out_text": "system.Artifact",
        "report": "system.HTML",
    }
    for reader in ("step-left", "step-right"):
        src = cluster.tasks[reader]["inputs"]["artifacts"]["in_a"]["taskOutputArtifact"]
        assert src == {"outputArtifactKey": "out_a", "producerTask": "step-load"}
    assert cluster.artifacts("step-left", "input") == {
        "runtime": "system.Artifact",
        "in_a": "system.Artifact",
    }
    assert cluster.artifacts("step-right", "input") == {
        "runtime": "system.Artifact",
        "in_a": "system.Artifact",
        "in_text": "system.Artifact",
    }
    assert cluster.artifacts("step-join", "input") == {
        "runtime": "system.Artifact",
        "in_b": "system.Artifact",
        "in_c": "system.Artifact",
        "in_label": "system.Artifact",
    }
    # the metric step logs a Metrics artifact
    assert cluster.artifacts("step-join", "output") == {
        "out_total": "system.Artifact",
        "metrics": "system.Metrics",
        "report": "system.HTML",
    }


def test_parallel_branches_depend_only_on_their_data(cluster: Compiled) -> None:
    # every step also reads the step runtime, written by the first task
    runtime = "nbflow-runtime"
    assert cluster.tasks["step-load"]["dependentTasks"] == [runtime]
    assert cluster.tasks["step-left"]["dependentTasks"] == ["createpvc", runtime, "step-load"]
    assert cluster.tasks["step-right"]["dependentTasks"] == [runtime, "step-load"]
    assert cluster.tasks["step-join"]["dependentTasks"] == [runtime, "step-left", "step-right"]


def test_each_step_receives_only_the_parameters_it_reads(cluster: Compiled) -> None:
    assert cluster.parameters("step-load") == {"param_n": "NUMBER_INTEGER"}
    assert cluster.parameters("step-left") == {"param_C": "NUMBER_DOUBLE"}
    assert cluster.parameters("step-right") == {"param_name": "STRING"}
    assert cluster.parameters("step-join") == {}
    for task, param in (("step-load", "n"), ("step-left", "C"), ("step-right", "name")):
        wired = cluster.tasks[task]["inputs"]["parameters"][f"param_{param}"]
        # inside the exit handler's group, a pipeline parameter reaches a task as a channel
        assert wired == {"componentInputParameter": f"pipelinechannel--{param}"}
    root = cluster.ir["root"]["inputDefinitions"]["parameters"]
    assert {k: (v["parameterType"], v["defaultValue"]) for k, v in root.items()} == {
        "C": ("NUMBER_DOUBLE", 1.0),
        "n": ("NUMBER_INTEGER", 3),
        "name": ("STRING", TRICKY),
    }


def test_resources_requests_limits_and_gpus(cluster: Compiled) -> None:
    left = cluster.container("step-left")["resources"]
    assert left["resourceCpuRequest"] == "500m" and left["resourceCpuLimit"] == "1"
    assert left["resourceMemoryRequest"] == "1Gi" and left["resourceMemoryLimit"] == "2Gi"
    assert left["accelerator"]["resourceType"] == "amd.com/gpu"
    assert left["accelerator"]["resourceCount"] == "2"
    # the manifest's default resources; limits equal requests when not given
    load_ = cluster.container("step-load")["resources"]
    assert (load_["resourceCpuRequest"], load_["resourceCpuLimit"]) == ("250m", "250m")
    assert (load_["resourceMemoryRequest"], load_["resourceMemoryLimit"]) == ("256Mi", "256Mi")
    assert "accelerator" not in load_
    right = cluster.container("step-right")["resources"]
    assert right["accelerator"] == {
        "count": "1",
        "resourceCount": "1",
        "resourceType": "nvidia.com/gpu",
        "type": "nvidia.com/gpu",
    }


def test_images_env_retries_and_caching(cluster: Compiled) -> None:
    assert cluster.container("step-left")["image"] == "python:3.12-slim"
    assert cluster.container("step-load")["image"] == "python:3.11-slim"
    shared = [{"name": "GREETING", "value": TRICKY}, {"name": "PLAIN", "value": "ok"}]
    assert cluster.container("step-load")["env"] == shared
    assert cluster.container("step-right")["env"] == [*shared, {"name": "STEP_ONLY", "value": "1"}]
    assert cluster.tasks["step-left"]["retryPolicy"]["maxRetryCount"] == 3
    assert "retryPolicy" not in cluster.tasks["step-load"]
    assert cluster.tasks["step-right"]["cachingOptions"] == {}  # enableCache: false
    assert cluster.tasks["step-left"]["cachingOptions"] == {"enableCache": True}


def test_kubernetes_settings_in_the_platform_spec(cluster: Compiled) -> None:
    left = cluster.k8s("step-left")
    assert left["activeDeadlineSeconds"] == "90"
    assert left["nodeSelector"] == {"labels": {"pool": "gpu", "zone": "a"}}
    assert left["tolerations"] == [
        {
            "key": "gpu",
            "operator": "Equal",
            "value": "yes",
            "effect": "NoExecute",
            "tolerationSeconds": "60",
        },
        {"key": "spot", "operator": "Exists"},
    ]
    for task in ("step-load", "step-right", "step-join"):
        assert "activeDeadlineSeconds" not in cluster.k8s(task)
        assert "nodeSelector" not in cluster.k8s(task)


def test_volumes_existing_claim_and_claim_per_run(cluster: Compiled) -> None:
    [mount] = cluster.k8s("step-load")["pvcMount"]
    assert mount["mountPath"] == "/data" and mount["constant"] == "my-claim"
    [mount] = cluster.k8s("step-left")["pvcMount"]
    assert mount["mountPath"] == "/scratch"
    assert mount["taskOutputParameter"] == {
        "outputParameterKey": "name",
        "producerTask": "createpvc",
    }
    for task in ("step-right", "step-join"):  # `volumes: []`
        assert "pvcMount" not in cluster.k8s(task)
    assert mount["subPath"] == "scratch"
    create = cluster.tasks["createpvc"]["inputs"]["parameters"]
    assert {k: v["runtimeValue"]["constant"] for k, v in create.items()} == {
        "access_modes": ["ReadWriteMany"],
        "pvc_name": "{{$.pipeline_job_uuid}}",
        "size": "5Gi",
        "storage_class_name": "fast",
    }


def test_claim_per_run_is_deleted_by_an_exit_handler(cluster: Compiled) -> None:
    """The run's claim is deleted when the run ends, failed or not (issue 14)."""
    root = cluster.ir["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", "deletepvc"}  # every step runs inside the handler
    delete = root["deletepvc"]
    assert delete["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert delete["dependentTasks"] == ["exit-handler-1"]
    # an exit task may depend on no task: the claim is named by the run's id, which KFP
    # resolves in both tasks
    pvc_name = delete["inputs"]["parameters"]["pvc_name"]["runtimeValue"]["constant"]
    assert pvc_name == "{{$.pipeline_job_uuid}}"


def test_volumes_created_per_run_share_one_claim(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        ["x = 1", "y = x"],
        """
        name: vols
        volumes:
          - {name: a, mountPath: /a, size: 1Gi}
          - {name: b, mountPath: /b, size: 512Mi}
        steps:
          one: {cells: 1, volumes: [a, b]}
          two: {cells: 2, volumes: [b]}
        """,
    )
    ir = compile_project(load(root), "cluster", tmp_path / "c")
    create = ir.tasks["createpvc"]["inputs"]["parameters"]
    assert create["size"]["runtimeValue"]["constant"] == "1536Mi"
    mounts = {m["mountPath"]: m["subPath"] for m in ir.k8s("step-one")["pvcMount"]}
    assert mounts == {"/a": "a", "/b": "b"}
    assert [m["subPath"] for m in ir.k8s("step-two")["pvcMount"]] == ["b"]


def test_names_and_text_round_trip_exactly(cluster: Compiled, kitchen: Any) -> None:
    assert cluster.ir["pipelineInfo"] == {"name": "kitchen", "description": TRICKY}
    for step in STEPS:
        program = cluster.program(f"step-{step}")
        assert program["step"] == step and program["pipeline"] == "kitchen"
        sources = [(c["number"], c["source"], c["setup"]) for c in program["cells"]]
        assert sources == [
            (1, "import numpy as np", True),
            (kitchen.step(step).cells[0], CELL_SOURCES[step], False),
        ]


def test_an_image_with_quotes_and_newlines_compiles_and_round_trips(
    kitchen: Any, tmp_path: Path
) -> None:
    # validation rejects such an image; the generator must still never break on one
    weird = 'reg.example/a"b\n"""c\'\'\'d\\:1'
    steps = tuple(
        dataclasses.replace(s, image=weird) if s.name == "join" else s for s in kitchen.steps
    )
    compiled = compile_project(dataclasses.replace(kitchen, steps=steps), "cluster", tmp_path)
    assert compiled.container("step-join")["image"] == weird


def test_the_local_target_runs_the_same_code_without_installing(
    cluster: Compiled, local: Compiled, kitchen: Any
) -> None:
    assert local.platform == {}  # no Kubernetes-only settings
    for step in STEPS:
        task = f"step-{step}"
        # the same code; the program adds the notebook's folder to run in (Jupyter's cwd)
        workdir = str(kitchen.notebook_dir.resolve())
        assert local.program(task) == {**cluster.program(task), "workdir": workdir}
        program, same = (_encoded(c.program(task)) for c in (local, cluster))
        assert local.code(task).replace(program, same) == cluster.code(task)
        command = " ".join(local.container(task)["command"])
        assert "pip install" not in command
        assert "pip install" in " ".join(cluster.container(task)["command"])
        assert "resources" not in local.container(task)
    # settings kfp.local honours are kept
    assert local.tasks["step-left"]["retryPolicy"]["maxRetryCount"] == 3
    assert local.tasks["step-right"]["cachingOptions"] == {}
    assert local.container("step-right")["env"] == cluster.container("step-right")["env"]
    # and the pipeline returns every report and the metrics, so that `nbflow run` shows them
    outputs = local.ir["root"]["outputDefinitions"]["artifacts"]
    assert sorted(outputs) == ["metrics_join", *(f"report_{s}" for s in sorted(STEPS))]


def test_cluster_requirements_are_installed_in_the_step(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        ["import numpy as np", "x = np.ones(2)", "y = x * 2"],
        """
        name: reqs
        requirements: [numpy>=1.20, "pandas[parquet]"]
        setup: 1
        steps:
          one: {cells: 2, requirements: [ipython==8.30.0]}
          two: {cells: 3}
        """,
    )
    compiled = compile_project(load(root), "cluster", tmp_path / "out")
    one = " ".join(compiled.container("step-one")["command"])
    two = " ".join(compiled.container("step-two")["command"])
    # the runtime's own needs come first and are not repeated when a step pins them
    # (quoted for sh where sh would read a character of it: `>`, `[`)
    assert "-- cloudpickle 'numpy>=1.20' 'pandas[parquet]' ipython==8.30.0 " in one
    assert "-- ipython cloudpickle 'numpy>=1.20' 'pandas[parquet]' " in two


def test_metric_step_is_labelled_for_the_launcher_and_uncached_when_tuned(tmp_path: Path) -> None:
    cells = [
        "import math",
        tagged("x = 1.0", "parameters"),
        "base = 2.0",
        "score = -(x - base) ** 2",
    ]
    manifest = """
name: tuned
setup: 1
steps:
  prepare: {cells: 3}
  score: {cells: 4}
parameters: {x: 1.0}
metrics: {score: maximize}
tuning:
  objective: score
  maxTrials: 4
  search: {x: {min: 0.0, max: 4.0}}
"""
    project = load(write_project(tmp_path / "p", cells, manifest))
    docs = list(yaml.safe_load_all(compile_source(generate(project, "cluster"), tmp_path)))
    tasks = docs[0]["root"]["dag"]["tasks"]
    assert tasks["step-score"]["cachingOptions"] == {}  # caching off: a cached step has no pod log
    assert tasks["step-prepare"]["cachingOptions"] == {"enableCache": True}
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-step-score"]["podMetadata"]["labels"] == {"nbflow.dev/metrics": "true"}
    assert "exec-step-prepare" not in executors


def test_serializers_travel_in_the_pipelines_record_not_in_the_artifacts(cluster: Compiled) -> None:
    """Each step hands the runtime its KFP artifacts themselves, not their paths: the runtime
    sets each output's record (serializer, digest) in its artifact's metadata, kept by KFP in
    ML Metadata apart from the artifact's files, and loads each input as its producer's record
    in the input artifact's metadata says, never as the artifact's own nbflow.json says
    (issue 12, item 5; the runtime's side: test_runtime's test_run_takes_records_from_kfps_artifacts)."""
    for step in STEPS:
        task = f"step-{step}"
        tree = ast.parse(cluster.code(task))
        (call,) = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "run"
        ]
        keywords = {k.arg: k.value for k in call.keywords}
        for side, prefix in (("inputs", "in_"), ("outputs", "out_")):
            given = keywords[side]
            assert isinstance(given, ast.Dict)
            kind = "input" if side == "inputs" else "output"
            names = sorted(a for a in cluster.artifacts(task, kind) if a.startswith(prefix))
            assert {
                ast.literal_eval(k): ast.unparse(v)
                for k, v in zip(given.keys, given.values, strict=True)
                if k is not None
            } == {name[len(prefix) :]: name for name in names}
        assert ast.unparse(keywords["report"]) == "report"


def test_step_and_volume_names_never_collide_in_the_generated_module(tmp_path: Path) -> None:
    """Steps `x` and `step-x`, a step `k8s` beside a timeout, a volume `x` beside a step
    `pvc-x`: each once broke the build (UnboundLocalError, AttributeError, KeyError), their
    generated names being the same identifier."""
    names = ["x", "step-x", "k8s", "pvc-x", "task-x", "component-x", "outputs"]
    cells = ["import math", "v0 = 1"] + [f"v{i + 1} = v{i} + 1" for i in range(len(names) - 1)]
    steps = "\n".join(f"  {name}: {{cells: {i + 2}}}" for i, name in enumerate(names))
    root = write_project(
        tmp_path,
        cells,
        f"""
name: names
setup: 1
volumes:
  - {{name: x, mountPath: /x, size: 1Gi}}
  - {{name: k8s, mountPath: /k8s, claim: k8s}}
steps:
{steps}
""".replace("{cells: 3}", "{cells: 3, timeout: 1h}"),
    )
    project = load(root)
    for target in ("cluster", "local"):
        compiled = compile_project(project, target, tmp_path / target)
        tasks = {t for t in compiled.tasks if t.startswith("step-")}
        assert tasks == {"step-" + n for n in names}
        for before, after in itertools.pairwise(names):
            deps = compiled.tasks["step-" + after]["dependentTasks"]
            assert [d for d in deps if d.startswith("step-")] == ["step-" + before]
    cluster = compile_project(project, "cluster", tmp_path / "again")
    assert cluster.k8s("step-step-x")["activeDeadlineSeconds"] == "3600"
    assert {p["mountPath"] for p in cluster.k8s("step-pvc-x")["pvcMount"]} == {"/x", "/k8s"}


# Valid PEP 508 requirements that sh would read as code or split were they not quoted for sh
# (kfp quotes `packages_to_install` with repr(): `'` made it double-quote, `$(...)` then ran).
SHELL_REQUIREMENTS = [
    "numpy; python_version >= '3' and os_name != \"x\"",
    'pandas; os_name == "$(touch MARKER)"',
    'attrs; os_name == "`touch MARKER`;{{$}}{{{x"',
    "six; os_name != 'a\tb' and os_name != \"it's\"",
    "idna @ https://example.com/idna.whl#sha256=0;rm",
]
FAKE_TOOL = """#!{python}
import json, os, sys
with open(os.environ["NBF_ARGV_LOG"], "a", encoding="utf-8") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""


def test_requirements_reach_pip_word_for_word_through_a_real_sh(tmp_path: Path) -> None:
    import subprocess
    import sys

    manifest = "name: shelly\nsetup: 1\nrequirements: " + json.dumps(SHELL_REQUIREMENTS)
    manifest += "\nsteps:\n  one: {cells: 2}\n"
    root = write_project(tmp_path / "p", ["import os", "x = 1"], manifest)
    compiled = compile_project(load(root), "cluster", tmp_path / "out")
    container = compiled.container("step-one")
    assert "{{" not in "".join(container["command"])  # no placeholder for KFP to expand
    # run the container's command under sh, with pip and python3 recording their arguments
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pip", "python3"):
        (bin_dir / tool).write_text(FAKE_TOOL.format(python=sys.executable), encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "argv.jsonl"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "NBF_ARGV_LOG": str(log)}
    subprocess.run(
        [*container["command"], *container["args"]], cwd=work, env=env, check=True, timeout=60
    )
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    # kfp's own install first (it makes sure of pip), then the step's requirements
    assert calls[0][:4] == ["python3", "-m", "pip", "install"] and "--no-deps" in calls[0]
    assert calls[1] == [
        "python3",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-warn-script-location",
        "--",
        "ipython",
        "cloudpickle",
        *SHELL_REQUIREMENTS,
    ]
    assert calls[2][:3] == ["python3", "-m", "kfp.dsl.executor_main"]  # then the step runs
    assert list(work.iterdir()) == []  # and nothing in a requirement ran


def test_a_user_who_lists_kfp_keeps_their_pin(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        ["import os", "x = 1"],
        'name: pinned\nsetup: 1\nrequirements: ["kfp==2.14.0"]\nsteps:\n  one: {cells: 2}\n',
    )
    command = compile_project(load(root), "cluster", tmp_path / "out").container("step-one")
    text = " ".join(command["command"])
    assert "-- ipython cloudpickle kfp==2.14.0 " in text and "--no-deps" not in text
    # nbflow's script comes first then, making sure of pip itself
    assert command["command"][:2] == ["sh", "-c"] and "ensurepip" in command["command"][2]


def test_no_placeholder_from_cells_or_names_reaches_a_command(tmp_path: Path) -> None:
    cell = 'print("{{$}}", "{{$.outputs.artifacts[\'report\'].path}}", "/kfp-workspace")'
    root = write_project(
        tmp_path / "p", ["import os", cell], "name: ph\nsetup: 1\nsteps:\n  one: {cells: 2}\n"
    )
    for target in ("cluster", "local"):
        compiled = compile_project(load(root), target, tmp_path / target)
        command = "".join(compiled.container("step-one")["command"])
        assert "{{" not in command and "/kfp-workspace" not in command
        assert compiled.program("step-one")["cells"][1]["source"] == cell


def test_the_runtime_task_writes_the_runtime_with_python_alone(
    cluster: Compiled, local: Compiled, kitchen: Any, tmp_path: Path
) -> None:
    """On a cluster the runtime task is `python3 -c SCRIPT PATH`: run as the pod would (an
    isolated interpreter, no site-packages, the artifact's folder not there yet), it writes
    the runtime that every step then loads."""
    import subprocess
    import sys

    from nbflow.generate.runtime import runtime_archive

    container = cluster.container("nbflow-runtime")
    assert container["image"] == kitchen.step(kitchen.plan.steps[0].name).image
    assert container["command"][:2] == ["python3", "-c"]
    assert container["args"] == ["{{$.outputs.artifacts['runtime'].path}}"]
    path = tmp_path / "minio" / "runtime"
    subprocess.run([sys.executable, "-I", "-c", container["command"][2], str(path)], check=True)
    assert path.read_bytes() == runtime_archive()
    # and a step's interpreter, isolated too, imports the runtime from it (a copy of it)
    copy = tmp_path / "nbflow_runtime.zip"
    copy.write_bytes(path.read_bytes())
    check = "import sys; sys.path.insert(0, sys.argv[1]); from nbflow_runtime import run, main"
    subprocess.run([sys.executable, "-I", "-c", check, str(copy)], check=True)
    # kfp.local runs lightweight components only: there it is one, installing nothing
    # (not "pip" anywhere: the packed runtime's base64 text may well hold those three letters)
    command = local.container("nbflow-runtime")["command"]
    assert not any("pip install" in part or "ensurepip" in part for part in command)
    assert "inputs" not in local.tasks["nbflow-runtime"]


def test_each_step_runs_the_runtime_only_if_it_is_the_one_built_in(cluster: Compiled) -> None:
    """The runtime travels as an artifact of the first task: whoever can write the artifact
    store could swap it, so each step checks its SHA-256 against the one generated into it."""
    import hashlib
    import re

    from nbflow.generate.runtime import runtime_archive

    expected = hashlib.sha256(runtime_archive()).hexdigest()
    for step in STEPS:
        code = cluster.code(f"step-{step}")
        (digest,) = re.findall(
            r"hashlib\.sha256\(archive\)\.hexdigest\(\) != '([0-9a-f]{64})'", code
        )
        assert digest == expected
        # checked before anything of it is on sys.path, let alone imported
        assert code.index("!= '" + digest) < code.index("sys.path.insert(0, str(path))")
        assert code.index("sys.path.insert") < code.index("from nbflow_runtime import run")
