"""`nbflow build`: compile a project into its versioned folder.

    dist/<pipeline>/<version>/
      pipeline.yaml     KFP IR, compiled by the kfp compiler from nbflow's generated module
      kubernetes.yaml   Pipeline + PipelineVersion (pipelines.kubeflow.org/v2beta1), labelled
      experiment.yaml   the Katib Experiment, when the manifest has `tuning`
      nbflow.json       the record: content hash, snapshot, nbflow and kfp versions, input hashes

`<version>` is the first 8 hex digits of the SHA-256 of the cluster IR without the kfp SDK's
version (see :func:`ir_hash`), so it changes when and only when something that affects the run
changes (a step's cells, the setup cells, the data files they read, images, requirements,
resources, parameters, the nbflow step runtime), and the same inputs give the same folder,
byte for byte.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import linecache
import os
import re
import shutil
import sys
import tempfile
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow import __version__
from nbflow.check.project import Project
from nbflow.generate.labels import labels, resource_annotations, source_url
from nbflow.generate.snapshot import Snapshot, take

VERSION_LEN = 8


@dataclass(frozen=True)
class BuildResult:
    folder: Path
    pipeline: str
    version: str  # the content hash prefix: the folder name
    version_name: str  # the PipelineVersion's name: <pipeline>-<version>
    content_hash: str
    snapshot: Snapshot
    files: tuple[Path, ...]
    changed: bool  # False when the folder already held exactly these bytes
    warnings: tuple[str, ...] = ()


# etcd's default request limit: the API server refuses a larger object
OBJECT_LIMIT = 1_572_864
OBJECT_WARN = int(OBJECT_LIMIT * 0.9)


def oversized(kubernetes_yaml: str) -> list[str]:
    """Resources too large for Kubernetes to store (a PipelineVersion holds the whole pipeline:
    a few KB per step, so several hundred steps, or steps with very large cells)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for doc in yaml.load_all(kubernetes_yaml, Loader=loader):
        if not doc:
            continue
        size = len(json.dumps(doc, separators=(",", ":")).encode())
        if size > OBJECT_WARN:
            name = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
            verdict = "over" if size > OBJECT_LIMIT else "close to"
            out.append(
                f"{name} is {size / 2**20:.2f} MiB, {verdict} the {OBJECT_LIMIT / 2**20:.1f} MiB a "
                "Kubernetes object may have: the API server may refuse it; upload it through the "
                "KFP API instead (`deploy: {kfp: api}`), or merge steps"
            )
    return out


@contextlib.contextmanager
def generated_module(source: str, workdir: Path) -> Iterator[Any]:
    """Import the generated module from real files: the kfp SDK reads each component's source
    with `inspect.getsource`, so the module can't come from a string.

    The module runs in parts of about `PART_LINES` lines, each from its own file (see
    `module_parts`): `inspect` copies the lines from a function's first line to the end of its
    file before it finds where the function ends: with one file of N components, N^2 lines in
    all (600 million for 5,000 steps: seconds); with parts, each copy is short."""
    from nbflow.generate.kfp_import import import_for_compile, stack_without_source
    from nbflow.generate.kfp_source import KFP_KUBERNETES_IMPORT

    import_for_compile(kubernetes=KFP_KUBERNETES_IMPORT in source.splitlines())
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    module_name = f"nbflow_generated_{digest}"
    module = types.ModuleType(module_name)
    parts = module_parts(source)
    paths = [workdir / f"{module_name}_{i}.py" for i in range(len(parts))]
    sys.modules[module_name] = module
    try:
        with warnings.catch_warnings(), _remembered_task_names():
            warnings.simplefilter("ignore")  # kfp warns about base images and such on every compile
            with stack_without_source():
                for path, part in zip(paths, parts, strict=True):
                    path.write_text(part, encoding="utf-8")
                    # not under this file's `from __future__ import annotations`: kfp reads
                    # the components' annotations as types, not as strings
                    code = compile(part, str(path), "exec", dont_inherit=True)
                    exec(code, module.__dict__)  # the last part's @dsl.pipeline compiles it
            yield module
    finally:
        sys.modules.pop(module_name, None)
        for path in paths:
            path.unlink(missing_ok=True)
            linecache.checkcache(str(path))  # the file is gone: inspect's copy of it goes too


PART_LINES = 1_000


def module_parts(source: str) -> list[str]:
    """The generated module cut into parts of at least `PART_LINES` lines (the last may be
    shorter), each cut before a line that starts with `@dsl.`: a component's or the pipeline's
    decorator. Joined, the parts are the source. Such a line is always a decorator: the
    generated code has no multi-line string (what a user wrote reaches it as a one-line
    `repr()` or base64), so no such line is inside one."""
    lines = source.split("\n")  # Python's line breaks: splitlines() knows more
    parts: list[str] = []
    start = 0
    for i, line in enumerate(lines):
        if i - start >= PART_LINES and line.startswith("@dsl."):
            parts.append("\n".join(lines[start:i]) + "\n")
            start = i
    parts.append("\n".join(lines[start:]))
    return parts


def compile_pipeline(module: Any, workdir: Path, options: Any = None) -> str:
    """Compile the module's pipeline with kfp: the IR, or with `options` the Pipeline and
    PipelineVersion resources of Kubernetes-native mode."""
    from kfp import compiler

    out = workdir / ("k8s.yaml" if options is not None else "ir.yaml")
    kwargs: dict[str, Any] = {}
    if options is not None:
        kwargs = {"kubernetes_manifest_format": True, "kubernetes_manifest_options": options}
    with warnings.catch_warnings(), _libyaml_emitter():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(module.pipeline, str(out), **kwargs)
    text = out.read_text(encoding="utf-8")
    return text if options is not None else _comment_header(text)


@contextlib.contextmanager
def _libyaml_emitter() -> Iterator[None]:
    """Let kfp write its YAML with libyaml's emitter: the same documents, 25 times faster than
    PyYAML's pure-Python one, and with long strings (each step's code) on one line rather than
    folded at 80 columns, indented: 2.5% smaller. The bytes differ from the pure emitter's, so
    builds are compared between machines that have libyaml, which PyYAML's wheels include."""
    import yaml
    from kfp.compiler import pipeline_spec_builder

    dumper = getattr(yaml, "CDumper", None)
    if dumper is None or getattr(pipeline_spec_builder, "yaml", None) is not yaml:
        yield
        return
    pipeline_spec_builder.yaml = _YamlWithDumper(yaml, dumper)
    try:
        yield
    finally:
        pipeline_spec_builder.yaml = yaml


YAML_WIDTH = 1_000_000  # lines are not folded


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Compile without Python's cyclic garbage collector. The compile builds millions of
    objects (the IR and its YAML, ~50 kB a step) that live until it ends, and each full
    collection walks all of them again: collections grow with the objects, so the time did
    with N^2 (a 1,600-step build took 114 s instead of 64). Reference counting still frees
    what the compile drops; what cycles it leaves are collected when it ends."""
    import gc

    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _remembered_task_names() -> Iterator[None]:
    """Let kfp's compiler sanitise each task name once. For every task of a DAG it sanitises
    the names of all the DAG's tasks again (two regular expressions each): N^2 calls, most of
    a build of a few hundred steps and minutes of one of 5,000 (bench/build_steps.py). The
    function is pure, so remembering its answers changes nothing but the time."""
    from kfp.dsl import utils

    original = utils.sanitize_task_name
    utils.sanitize_task_name = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        utils.sanitize_task_name = original


class _YamlWithDumper:
    """The yaml module as kfp's compiler sees it, with dump_all defaulting to a faster Dumper."""

    def __init__(self, module: Any, dumper: Any) -> None:
        self._module = module
        self._dumper = dumper

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def dump_all(self, documents: Any, stream: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("Dumper", self._dumper)
        kwargs.setdefault("width", YAML_WIDTH)
        return self._module.dump_all(documents, stream, **kwargs)


def ir_hash(ir: str) -> str:
    """SHA-256 of the IR's documents, not of its bytes: the version must not depend on how a
    YAML emitter folds long strings (libyaml's and PyYAML's differ), only on what runs. Nor on
    the kfp SDK that compiled it: its banner (`sdkVersion`) and the kfp release its executor
    installs are left out, so that a kfp patch release does not make every pipeline a new
    version; what the steps run (cells, manifest settings, data files, the step runtime,
    requirements) is all in."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents = [without_sdk(d) for d in yaml.load_all(ir, Loader=loader)]
    canonical = json.dumps(documents, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


_KFP_PIN = re.compile(r"'kfp==[^']*'")


def without_sdk(node: Any) -> Any:
    """The IR (or a resource holding it) without what depends on the kfp SDK's release only."""
    if isinstance(node, dict):
        return {k: without_sdk(v) for k, v in node.items() if k != "sdkVersion"}
    if isinstance(node, list):
        return [without_sdk(v) for v in node]
    if isinstance(node, str) and "'kfp==" in node:
        return _KFP_PIN.sub("'kfp'", node)
    return node


def compile_source(source: str, workdir: Path) -> str:
    """The IR of a generated module's pipeline."""
    with generated_module(source, workdir) as module:
        return compile_pipeline(module, workdir)


_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what YAML takes for a line break
# what a YAML reader refuses anywhere in a stream (PyYAML's NON_PRINTABLE, line breaks aside)
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _comment_header(ir: str) -> str:
    """Keep kfp's comment header a comment.

    kfp writes the pipeline's inputs above the IR as `# name: type [Default: value]`, a string
    default as it is: one with a line break would end the comment and break the YAML, and a
    control character is refused by YAML readers even in a comment. Every line of the header is
    made a comment again, such characters escaped; a valid header is left byte for byte.
    """
    start = ir.rfind("\ncomponents:\n")  # the IR's first key; the last such line is the IR's
    if start < 0:
        return ir
    header = ir[:start]
    lines = _LINE_BREAK.split(header)
    if all(line.startswith("#") for line in lines) and not _NOT_YAML.search(header):
        return ir
    fixed = [line if line.startswith("#") else "#    " + line for line in lines]
    # a character YAML forbids even in a comment (a control character) is written escaped
    escaped = [_NOT_YAML.sub(lambda m: repr(m.group())[1:-1], line) for line in fixed]
    return "\n".join(escaped) + ir[start:]


def _kubernetes_yaml(
    text: str, project: Project, version: str, content_hash: str, snapshot: Snapshot
) -> str:
    import yaml

    # libyaml's parser when there is one: 30x faster, the same data
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(text, Loader=loader) if d]
    lab = labels(project, version, content_hash, snapshot)
    ann = resource_annotations(project, snapshot)
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **lab}
        meta["annotations"] = {**(meta.get("annotations") or {}), **ann}
        if doc.get("kind") == "PipelineVersion":
            spec = doc.setdefault("spec", {})
            # the commit that first produced this content; the spec is immutable, so a later
            # commit with the same content applies as a no-op and keeps this one
            spec["description"] = f"nbflow {__version__}, snapshot {snapshot.label}"
            url = source_url(snapshot)
            if url:
                spec["codeSourceURL"] = url
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    out: str = yaml.dump_all(docs, Dumper=dumper, sort_keys=False, width=1000)
    return out


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render(
    project: Project, *, snapshot: Snapshot | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """The build folder's files as text, and the record; nothing is written."""
    from nbflow.generate.kfp_source import generate

    snapshot = snapshot or take(project.root, project.inputs)
    source = generate(project, "cluster")
    with (
        _cyclic_gc_paused(),
        tempfile.TemporaryDirectory(prefix="nbflow-build-") as tmp,
        generated_module(source, Path(tmp)) as module,
    ):
        from kfp.compiler.compiler_utils import KubernetesManifestOptions  # kfp is imported now

        ir = compile_pipeline(module, Path(tmp))
        content_hash = ir_hash(ir)
        version = content_hash[:VERSION_LEN]
        version_name = f"{project.name}-{version}"
        options = KubernetesManifestOptions(
            pipeline_name=project.name,
            pipeline_display_name=project.name,
            pipeline_version_name=version_name,
            pipeline_version_display_name=version_name,
            namespace=project.manifest.deploy.namespace,
            include_pipeline_manifest=True,
        )
        k8s = compile_pipeline(module, Path(tmp), options)
    files = {
        "pipeline.yaml": ir,
        "kubernetes.yaml": _kubernetes_yaml(k8s, project, version, content_hash, snapshot),
    }
    if project.manifest.tuning is not None:
        from nbflow.generate.katib import experiment_yaml

        files["experiment.yaml"] = experiment_yaml(
            project, version=version, content_hash=content_hash, snapshot=snapshot
        )
    import kfp

    record = {
        "pipeline": project.name,
        "version": version,
        "versionName": version_name,
        "contentHash": content_hash,
        "snapshot": snapshot.to_json(),
        "nbflow": __version__,
        "kfp": kfp.__version__,
        "inputs": {
            "manifest": _sha256_file(project.manifest_path),
            "notebook": _sha256_file(project.root / project.manifest.notebook),
        },
        "steps": [s.name for s in project.plan.steps],
        "files": sorted(files),
    }
    files["nbflow.json"] = json.dumps(record, indent=2, sort_keys=True) + "\n"
    return files, record


def build(project: Project, out: Path, *, snapshot: Snapshot | None = None) -> BuildResult:
    with _cyclic_gc_paused():  # the IR is read back twice below: the same N^2 otherwise
        files, record = render(project, snapshot=snapshot)
        too_large = tuple(oversized(files["kubernetes.yaml"]))
    folder = out / project.name / record["version"]
    changed = (
        not folder.is_dir()
        or any(
            not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
            for name, text in files.items()
        )
        or sorted(p.name for p in folder.iterdir()) != sorted(files)
    )
    if changed:
        # write beside, then swap in: a reader never sees a half-written version folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{record['version']}-", dir=folder.parent))
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    snap = snapshot or Snapshot(
        record["snapshot"]["commit"], record["snapshot"]["dirty"], record["snapshot"]["remote"]
    )
    return BuildResult(
        folder=folder,
        pipeline=project.name,
        version=record["version"],
        version_name=record["versionName"],
        content_hash=record["contentHash"],
        snapshot=snap,
        files=tuple(folder / n for n in sorted(files)),
        changed=changed,
        warnings=too_large,
    )
