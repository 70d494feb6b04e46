"""`nbflow build`: the versioned folder, its determinism, its version, its resources and record.

Golden files: tests/golden/<example>/{pipeline,kubernetes}.yaml. After a change to generation,
the runtime or kfp, regenerate them with this one command and review the diff:

    python -m tests.support.golden --update
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbflow import __version__
from nbflow.cli.main import EXIT_OK
from nbflow.generate.build import build, ir_hash, render
from nbflow.generate.snapshot import Snapshot
from tests.support import golden
from tests.support.cli import run_cli, run_subprocess
from tests.support.projects import Cell, load, md, tagged, write_project

SNAPSHOT = Snapshot(
    "fedcba9876543210fedcba9876543210fedcba98", dirty=True, remote="git@github.com:acme/models.git"
)

BASE_CELLS: list[str | Cell] = [
    "import numpy as np",  # 1 setup
    md("# Title"),  # 2
    tagged("k = 2", "parameters"),  # 3
    "a = np.arange(k)",  # 4 step one
    "# scratch\na.shape",  # 5 skipped
    "b = a * 2",  # 6 step two
]
BASE_MANIFEST = """
name: versions
description: A small pipeline.
setup: 1
steps:
  one: {cells: 4}
  two: {cells: 6, timeout: 10m, nodeSelector: {pool: cpu}}
skip: [5]
parameters: {k: 2}
deploy: {namespace: team-a}
"""


def base(tmp: Path, cells: list[str | Cell] | None = None, manifest: str = BASE_MANIFEST) -> Any:
    return load(write_project(tmp, cells or BASE_CELLS, manifest))


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_build_writes_the_versioned_folder(tmp_path: Path) -> None:
    project = base(tmp_path / "p")
    result = build(project, tmp_path / "dist", snapshot=SNAPSHOT)
    assert result.folder == tmp_path / "dist" / "versions" / result.version
    assert sorted(p.name for p in result.folder.iterdir()) == [
        "kubernetes.yaml",
        "nbflow.json",
        "pipeline.yaml",
    ]  # no experiment.yaml without `tuning`
    assert result.files == tuple(
        result.folder / n for n in ("kubernetes.yaml", "nbflow.json", "pipeline.yaml")
    )
    ir = (result.folder / "pipeline.yaml").read_text(encoding="utf-8")
    # the hash of the IR's documents, canonical JSON: independent of the YAML emitter's folding,
    # and of the kfp SDK's release (its banner and the kfp pin of the executor are left out)
    documents = list(yaml.safe_load_all(ir))
    assert documents[0].pop("sdkVersion").startswith("kfp-")
    canonical = json.dumps(documents, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    canonical = re.sub(r"'kfp==[^']*'", "'kfp'", canonical)
    assert result.content_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert result.version == result.content_hash[:8]
    assert result.version_name == f"versions-{result.version}"
    assert result.changed and result.snapshot == SNAPSHOT
    assert not list((tmp_path / "dist" / "versions").glob(".*"))  # no staging folder left


def test_build_twice_gives_the_same_bytes_wherever_it_runs(tmp_path: Path) -> None:
    first = build(base(tmp_path / "p"), tmp_path / "dist", snapshot=SNAPSHOT)
    files = folder_bytes(first.folder)
    again = build(base(tmp_path / "p"), tmp_path / "dist", snapshot=SNAPSHOT)
    assert not again.changed and again.folder == first.folder
    assert folder_bytes(again.folder) == files
    # the same project in another folder, into another output folder
    shutil.copytree(tmp_path / "p", tmp_path / "elsewhere" / "copy")
    other = build(load(tmp_path / "elsewhere" / "copy"), tmp_path / "out2", snapshot=SNAPSHOT)
    assert other.version == first.version
    assert folder_bytes(other.folder) == files


@pytest.mark.slow
def test_build_is_the_same_across_processes_and_hash_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base(tmp_path / "p")
    r = run_cli(capsys, "build", str(tmp_path / "p"), "--out", str(tmp_path / "a"))
    assert r.code == EXIT_OK, r.err
    assert r.out.startswith("built: versions ") and "(snapshot untracked)" in r.out
    r = run_cli(capsys, "build", str(tmp_path / "p"), "--out", str(tmp_path / "a"))
    assert r.code == EXIT_OK and r.out.startswith("unchanged: versions "), r.out
    sub = run_subprocess("build", "p", "--out", "b", cwd=tmp_path, env={"PYTHONHASHSEED": "12345"})
    assert sub.code == EXIT_OK, sub.err
    [a] = (tmp_path / "a" / "versions").iterdir()
    [b] = (tmp_path / "b" / "versions").iterdir()
    assert a.name == b.name and folder_bytes(a) == folder_bytes(b)


def _edit(index: int, change: Callable[[Cell], Cell]) -> list[str | Cell]:
    cells = [c if isinstance(c, Cell) else Cell(c) for c in BASE_CELLS]
    cells[index - 1] = change(cells[index - 1])
    return list(cells)


def _source(text: str) -> Callable[[Cell], Cell]:
    return lambda c: dataclasses.replace(c, source=text)


OUTPUT = {"output_type": "stream", "name": "stdout", "text": "[0 1]\n"}
SAME = {
    "markdown cell": _edit(2, _source("# Another title\nwith more words")),
    "skipped cell": _edit(5, _source("# scratch\nprint(a.shape, a.dtype)")),
    "outputs and execution counts": _edit(
        4, lambda c: dataclasses.replace(c, outputs=(OUTPUT,), execution_count=12)
    ),
    "cell metadata": _edit(6, lambda c: dataclasses.replace(c, metadata={"collapsed": True})),
}
DIFFERENT = {
    "step cell": _edit(6, _source("b = a * 3")),
    "setup cell": _edit(1, _source("import numpy as np\nimport math")),
}


@pytest.fixture(scope="module")
def base_version(tmp_path_factory: pytest.TempPathFactory) -> str:
    _, record = render(base(tmp_path_factory.mktemp("base")), snapshot=SNAPSHOT)
    return str(record["version"])


@pytest.mark.parametrize("what", sorted(SAME))
def test_version_ignores_what_does_not_run(what: str, tmp_path: Path, base_version: str) -> None:
    _, record = render(base(tmp_path, SAME[what]), snapshot=SNAPSHOT)
    assert record["version"] == base_version


@pytest.mark.parametrize("what", sorted(DIFFERENT))
def test_version_follows_the_code_that_runs(what: str, tmp_path: Path, base_version: str) -> None:
    _, record = render(base(tmp_path, DIFFERENT[what]), snapshot=SNAPSHOT)
    assert record["version"] != base_version


def test_version_follows_the_manifest_settings_that_run(tmp_path: Path, base_version: str) -> None:
    manifest = BASE_MANIFEST.replace("two: {cells: 6,", "two: {cells: 6, image: python:3.12-slim,")
    _, record = render(base(tmp_path, manifest=manifest), snapshot=SNAPSHOT)
    assert record["version"] != base_version


def test_version_does_not_follow_the_kfp_sdk(
    tmp_path: Path, base_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kfp patch release changes the IR's banner and the kfp its executor installs, not what
    the steps compute: the version stays (issue 14, item 9)."""
    import kfp

    monkeypatch.setattr(kfp, "__version__", "2.17.99")
    files, record = render(base(tmp_path), snapshot=SNAPSHOT)
    assert "sdkVersion: kfp-2.17.99" in files["pipeline.yaml"]
    assert "kfp==2.17.99" in files["pipeline.yaml"]
    assert record["version"] == base_version


def test_version_follows_the_data_files_a_step_reads(tmp_path: Path) -> None:
    """A file beside the notebook that a step reads by a relative path is an input of the
    version (issue 14, item 4)."""
    cells = [*BASE_CELLS[:3], "a = np.loadtxt('data.csv') * k", *BASE_CELLS[4:]]
    (tmp_path / "data.csv").write_text("1\n2\n")
    _, first = render(base(tmp_path, cells), snapshot=SNAPSHOT)
    (tmp_path / "data.csv").write_text("1\n3\n")
    files, second = render(base(tmp_path, cells), snapshot=SNAPSHOT)
    assert first["version"] != second["version"]
    from nbflow.incluster.runtime.program import decode_program

    # the file's digest is in the step's program (which travels compressed and encoded)
    digest = hashlib.sha256(b"1\n3\n").hexdigest()
    ir = next(yaml.safe_load_all(files["pipeline.yaml"]))
    executors = ir["deploymentSpec"]["executors"]
    code = "\n".join(e["container"]["command"][-1] for e in executors.values())
    programs = [decode_program(e) for e in re.findall(r"run\(\s*'([^']+)'", code)]
    assert [p["files"] for p in programs if p["step"] == "one"] == [{"data.csv": digest}]


def test_kubernetes_yaml_pipeline_then_version_labelled(tmp_path: Path) -> None:
    project = base(tmp_path / "p")
    result = build(project, tmp_path / "dist", snapshot=SNAPSHOT)
    docs = list(yaml.safe_load_all((result.folder / "kubernetes.yaml").read_text(encoding="utf-8")))
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("pipelines.kubeflow.org/v2beta1", "Pipeline"),
        ("pipelines.kubeflow.org/v2beta1", "PipelineVersion"),
    ]
    pipeline, version = docs
    labels = {
        "app.kubernetes.io/managed-by": "nbflow",
        "app.kubernetes.io/name": "versions",
        "app.kubernetes.io/version": result.version,
        "nbflow.dev/pipeline": "versions",
        "nbflow.dev/snapshot": "fedcba987654-dirty",
        "nbflow.dev/content-hash": result.content_hash[:40],
    }
    for doc in docs:
        assert doc["metadata"]["labels"] == labels
        assert doc["metadata"]["namespace"] == "team-a"
        assert doc["metadata"]["annotations"] == {
            "nbflow.dev/version": __version__,
            "nbflow.dev/manifest": "nbflow.yaml",
            "nbflow.dev/commit": SNAPSHOT.commit,
            "nbflow.dev/source": SNAPSHOT.remote,
        }
    assert pipeline["metadata"]["name"] == "versions"
    assert pipeline["spec"] == {"displayName": "versions", "description": "A small pipeline."}
    assert version["metadata"]["name"] == result.version_name
    spec = version["spec"]
    assert spec["pipelineName"] == "versions" and spec["displayName"] == result.version_name
    assert spec["description"] == f"nbflow {__version__}, snapshot fedcba987654-dirty"
    assert spec["codeSourceURL"] == f"https://github.com/acme/models/tree/{SNAPSHOT.commit}"
    # the PipelineVersion carries exactly the compiled IR and its platform spec
    ir = list(yaml.safe_load_all((result.folder / "pipeline.yaml").read_text(encoding="utf-8")))
    assert spec["pipelineSpec"] == ir[0]
    assert spec["platformSpec"] == ir[1]
    assert ir[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-step-two"] == {
        "activeDeadlineSeconds": "600",
        "nodeSelector": {"labels": {"pool": "cpu"}},
    }


def test_untracked_snapshot_has_no_source(tmp_path: Path) -> None:
    files, _ = render(base(tmp_path), snapshot=Snapshot(None, False))
    _, version = yaml.safe_load_all(files["kubernetes.yaml"])
    assert version["metadata"]["labels"]["nbflow.dev/snapshot"] == "untracked"
    assert "codeSourceURL" not in version["spec"]
    assert set(version["metadata"]["annotations"]) == {"nbflow.dev/version", "nbflow.dev/manifest"}


def test_record(tmp_path: Path) -> None:
    root = tmp_path / "p"
    result = build(base(root), tmp_path / "dist", snapshot=SNAPSHOT)
    record = json.loads((result.folder / "nbflow.json").read_text(encoding="utf-8"))
    import kfp

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert record == {
        "pipeline": "versions",
        "version": result.version,
        "versionName": result.version_name,
        "contentHash": ir_hash((result.folder / "pipeline.yaml").read_text(encoding="utf-8")),
        "snapshot": {**dataclasses.asdict(SNAPSHOT), "label": "fedcba987654-dirty"},
        "nbflow": __version__,
        "kfp": kfp.__version__,
        "inputs": {"manifest": sha(root / "nbflow.yaml"), "notebook": sha(root / "nb.ipynb")},
        "steps": ["one", "two"],
        "files": ["kubernetes.yaml", "pipeline.yaml"],
    }


def test_nothing_from_this_machine_leaks_into_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-4f9a1c-token"
    monkeypatch.setenv("NBFLOW_TEST_TOKEN", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret + "-aws")
    manifest = BASE_MANIFEST + "env: {FROM_MANIFEST: visible-value}\n"
    result = build(base(tmp_path / "p", manifest=manifest), tmp_path / "dist", snapshot=SNAPSHOT)
    text = "\n".join(p.read_text(encoding="utf-8") for p in result.files)
    assert secret not in text and "NBFLOW_TEST_TOKEN" not in text and "AWS_SECRET" not in text
    assert str(tmp_path) not in text and str(Path.home()) + "/" not in text
    assert "visible-value" in text  # what the manifest says does go in


# -- golden files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", golden.examples(), ids=lambda p: p.name)
def test_examples_match_their_golden_files(example: Path) -> None:
    fresh = golden.render_example(example)
    for name, text in fresh.items():
        path = golden.GOLDEN / example.name / name
        assert path.exists(), f"no golden file {path}: run `{golden.UPDATE_COMMAND}`"
        if path.read_bytes() != text.encode("utf-8"):
            old = path.read_text(encoding="utf-8").splitlines()
            diff = difflib.unified_diff(
                old, text.splitlines(), "golden", "fresh build", n=1, lineterm=""
            )
            pytest.fail(
                f"{example.name}/{name} differs from {path.relative_to(golden.REPO)}; if the change "
                f"is intended, run `{golden.UPDATE_COMMAND}` and review the diff\n"
                + "\n".join(line[:160] for line in list(diff)[:30]),
                pytrace=False,
            )


def test_every_golden_folder_has_an_example() -> None:
    assert sorted(p.name for p in golden.GOLDEN.iterdir() if p.is_dir()) == [
        e.name for e in golden.examples()
    ], f"stale golden files: run `{golden.UPDATE_COMMAND}`"


def test_oversized_resources_are_reported() -> None:
    from nbflow.generate.build import OBJECT_LIMIT, oversized

    small = yaml.safe_dump({"kind": "Pipeline", "metadata": {"name": "p"}, "spec": {}})
    big = yaml.safe_dump(
        {"kind": "PipelineVersion", "metadata": {"name": "p-1"}, "spec": {"x": "a" * OBJECT_LIMIT}}
    )
    assert oversized(small) == []
    [problem] = oversized(small + "---\n" + big)
    assert problem.startswith("PipelineVersion p-1 is 1.50 MiB, over the 1.5 MiB")
    assert "deploy: {kfp: api}" in problem


# -- a build's work grows linearly with the steps (issue 12, item 12) ---------------------------


def test_kfp_reads_each_component_from_a_short_file(tmp_path: Path) -> None:
    """kfp reads each component's source with `inspect.getsource`, which copies the lines from
    the function's first line to the end of its file: from one file of the whole module that
    was N^2 lines for N steps. The module runs from parts, so each copy is bounded."""
    import linecache

    from nbflow.generate.build import PART_LINES, generated_module, module_parts
    from nbflow.generate.kfp_source import generate
    from tests.support.projects import chain

    cells, manifest = chain(100)
    source = generate(load(write_project(tmp_path / "chain", cells, manifest)), "cluster")
    parts = module_parts(source)
    assert "".join(parts) == source
    assert len(parts) > 1 and all(p.startswith("@dsl.") for p in parts[1:])
    work = tmp_path / "work"
    work.mkdir()
    with generated_module(source, work) as module:
        funcs = {id(c): c.python_func for c in vars(module).values() if hasattr(c, "python_func")}
        assert {f"step_s{i}" for i in range(100)} <= {f.__name__ for f in funcs.values()}
        for func in funcs.values():
            code = func.__code__
            copied = len(linecache.getlines(code.co_filename)) - code.co_firstlineno
            assert copied < 2 * PART_LINES, func.__name__
    # the parts' files are gone, and so are inspect's copies of them
    assert list(work.iterdir()) == []
    assert not [name for name in linecache.cache if name.startswith(str(work))]


# -- the step runtime, carried once per pipeline (issue 14, item 7) ---------------------------

STEP_CODE_LIMIT = 3_000  # bytes of a one-cell step's component code; the runtime alone is ~20 KB


@pytest.fixture(scope="module")
def hundred_steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.support.projects import chain

    cells, manifest = chain(100)
    root = write_project(tmp_path_factory.mktemp("chain"), cells, manifest)
    files, _ = render(load(root), snapshot=SNAPSHOT)
    return files


def test_a_hundred_step_pipeline_fits_in_one_kubernetes_object(
    hundred_steps: dict[str, str],
) -> None:
    from nbflow.generate.build import oversized

    assert len(hundred_steps["kubernetes.yaml"].encode()) <= 2**20
    assert oversized(hundred_steps["kubernetes.yaml"]) == []


def test_the_runtime_is_carried_once_and_every_step_loads_it(
    hundred_steps: dict[str, str],
) -> None:
    from nbflow.generate.runtime import packed_runtime

    ir = next(yaml.safe_load_all(hundred_steps["pipeline.yaml"]))
    executors = ir["deploymentSpec"]["executors"]
    code = {name: e["container"]["command"][-1] for name, e in executors.items()}
    packed = packed_runtime()
    assert [name for name, c in code.items() if packed in c] == ["exec-nbflow-runtime"]
    steps = {name: c for name, c in code.items() if name.startswith("exec-s")}
    assert len(steps) == 100
    for name, c in steps.items():
        assert len(c.encode()) <= STEP_CODE_LIMIT, name
        assert "def step_" in c and "from nbflow_runtime import run" in c
    tasks = ir["root"]["dag"]["tasks"]
    for name, task in tasks.items():
        if name.startswith("s"):
            source = task["inputs"]["artifacts"]["runtime"]["taskOutputArtifact"]
            assert source == {"outputArtifactKey": "runtime", "producerTask": "nbflow-runtime"}
    # no inputs: one cache key for every run, so KFP runs it once and serves it after
    runtime = tasks["nbflow-runtime"]
    assert "inputs" not in runtime and runtime["cachingOptions"] == {"enableCache": True}


def _docstrings(text: str) -> list[str]:
    import ast

    return [
        doc
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and (doc := ast.get_docstring(node, clean=False)) is not None
    ]


def _normalized(text: str) -> tuple[str, list[tuple[str, int]]]:
    """A module's program less what the carried code leaves out (string statements: the
    docstrings; annotations of parameters and results; `x: T = v` as `x = v`), and each
    statement's line."""
    import ast

    class Normalize(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST:
            super().generic_visit(node)
            if isinstance(node, ast.arg):
                node.annotation = None
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                node.returns = None
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                strings = [
                    s
                    for s in body
                    if isinstance(s, ast.Expr)
                    and isinstance(s.value, ast.Constant)
                    and isinstance(s.value.value, str)
                ]
                node.body = [s for s in body if s not in strings] or [ast.Pass()]
            return node

        def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
            if node.value is None:
                return node
            return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)

    tree = Normalize().visit(ast.parse(text))
    lines = [
        (type(n).__name__, n.lineno)
        for n in ast.walk(tree)
        if isinstance(n, ast.stmt) and hasattr(n, "lineno")
    ]
    return ast.dump(tree), lines


def test_the_archive_holds_the_runtimes_modules_line_for_line() -> None:
    """The archive a pipeline carries: one entry per module of nbflow/incluster/runtime, each the
    same program as its source, line for line (a traceback of the runtime points at its source),
    without comments, docstrings and the functions' annotations."""
    import io
    import zipfile

    from nbflow.generate.runtime import runtime_archive, runtime_sources

    sources = runtime_sources()
    assert {"__init__.py", "values.py", "cells.py", "report.py"} <= set(sources)
    archive = zipfile.ZipFile(io.BytesIO(runtime_archive()))
    assert archive.namelist() == [f"nbflow_runtime/{name}" for name in sorted(sources)]
    carried = 0
    for name, source in sources.items():
        code = archive.read(f"nbflow_runtime/{name}").decode("utf-8")
        carried += len(code)
        assert "# " not in code and " -> " not in code, name  # no comment, no result type
        assert not [d for d in _docstrings(code) if d], name
        assert code.count("\n") == source.count("\n"), name
        assert _normalized(code) == _normalized(source), name
    assert carried < sum(len(s) for s in sources.values()) * 0.75


def test_the_archive_is_byte_for_byte_reproducible() -> None:
    """Built twice (and in a fresh interpreter), the same bytes: builds stay reproducible, the
    pipeline version's hash stable. Fixed entry times and modes, whatever the files' own."""
    import io
    import subprocess
    import sys
    import zipfile

    from nbflow.generate.runtime import packed_runtime, runtime_archive, unpack_runtime

    first = runtime_archive()
    script = "import sys; from nbflow.generate import runtime; sys.stdout.buffer.write(runtime.runtime_archive())"
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert again.stdout == first == unpack_runtime(packed_runtime())
    for entry in zipfile.ZipFile(io.BytesIO(first)).infolist():
        assert entry.date_time == (1980, 1, 1, 0, 0, 0) and entry.external_attr >> 16 == 0o100644
        assert entry.compress_type == zipfile.ZIP_STORED  # compressed whole, once


def test_the_packed_runtime_holds_nothing_kfp_kubernetes_or_yaml_would_read() -> None:
    from nbflow.generate.runtime import packed_runtime

    packed = packed_runtime()
    assert not set(packed) & set("{}$\"'\\ \n")  # no placeholder, no $(VAR), nothing to escape


# The digits example's pipeline.yaml (issue 14): the runtime carried once, packed as the
# archive, and four steps' components. Bytes, not time: a size the build decides alone.
DIGITS_PIPELINE_LIMIT = 40_000


def test_the_digits_pipeline_is_at_most_40_000_bytes() -> None:
    files = golden.render_example(golden.EXAMPLES / "digits")
    size = len(files["pipeline.yaml"].encode("utf-8"))
    assert size <= DIGITS_PIPELINE_LIMIT, size
