"""What changes between two builds of a pipeline (a pull request's and its base branch's): steps,
parameters with their defaults, images, resources, retries, caching and what each step waits
for, read from the compiled KFP IR (`pipeline.yaml`) of each.

`nbflow diff --base REF` compiles each project of this tree and of the revision REF (checked out
by :mod:`nbflow.deploy.base_tree`) and compares them with :func:`diff_projects`; `nbflow ci
validate` puts the result in a pull request's summary. Nothing is written but a temporary folder
per compilation; no cluster is asked.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.errors import EnvironmentProblem, UsageError

if TYPE_CHECKING:
    from nbflow.check.project import Project
    from nbflow.deploy.base_tree import BaseTree
    from nbflow.diagnostics import Report

__all__ = [
    "BuildChange",
    "ProjectChanges",
    "compare",
    "diff_project",
    "diff_projects",
    "facts",
    "find_build",
]


@dataclass(frozen=True)
class BuildChange:
    kind: str  # step, parameter
    name: str
    what: str  # added, removed, or the changed field
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "what": self.what, "old": self.old,
                "new": self.new}  # fmt: skip


def facts(ir_text: str) -> dict[str, Any]:
    """{"parameters": {name: default}, "steps": {step: {field: value}}} of a compiled IR."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(ir_text, Loader=loader) if d is not None]
    spec = docs[0]
    platform = (docs[1] if len(docs) > 1 else {}).get("platforms", {}).get("kubernetes", {})
    executors = platform.get("deploymentSpec", {}).get("executors", {})
    root = spec.get("root", {})
    parameters = {
        name: p.get("defaultValue")
        for name, p in root.get("inputDefinitions", {}).get("parameters", {}).items()
    }
    # the steps' tasks only: the task that carries the step runtime is no step of the user's
    tasks = {
        key: t for key, t in root.get("dag", {}).get("tasks", {}).items() if key.startswith("step-")
    }
    names = {key: t.get("taskInfo", {}).get("name", key) for key, t in tasks.items()}
    steps: dict[str, dict[str, Any]] = {}
    for key, task in tasks.items():
        component = spec.get("components", {}).get(task.get("componentRef", {}).get("name"), {})
        label = component.get("executorLabel", "")
        container = spec.get("deploymentSpec", {}).get("executors", {}).get(label, {})
        container = container.get("container", {})
        steps[names[key]] = {
            "image": container.get("image"),
            "resources": container.get("resources"),
            "after": sorted(names[d] for d in task.get("dependentTasks", []) if d in names),
            "retries": task.get("retryPolicy", {}).get("maxRetryCount", 0),
            "cache": task.get("cachingOptions", {}).get("enableCache", False),
            "kubernetes": executors.get(label),
        }
    return {"parameters": parameters, "steps": steps}


def _fields(kind: str, name: str, old: dict[str, Any], new: dict[str, Any]) -> list[BuildChange]:
    out = []
    for field in sorted(set(old) | set(new)):
        if json.dumps(old.get(field), sort_keys=True) != json.dumps(new.get(field), sort_keys=True):
            out.append(BuildChange(kind, name, field, old.get(field), new.get(field)))
    return out


def compare(base: dict[str, Any] | None, head: dict[str, Any] | None) -> list[BuildChange]:
    """The changes from `base` to `head` (facts of each; None for a pipeline that is new or
    gone), parameters first, then steps in name order."""
    base = base or {"parameters": {}, "steps": {}}
    head = head or {"parameters": {}, "steps": {}}
    out: list[BuildChange] = []
    bp, hp = base["parameters"], head["parameters"]
    for name in sorted(set(bp) | set(hp)):
        if name not in bp:
            out.append(BuildChange("parameter", name, "added", None, hp[name]))
        elif name not in hp:
            out.append(BuildChange("parameter", name, "removed", bp[name], None))
        elif bp[name] != hp[name]:
            out.append(BuildChange("parameter", name, "default", bp[name], hp[name]))
    bs, hs = base["steps"], head["steps"]
    for name in sorted(set(bs) | set(hs)):
        if name not in bs:
            out.append(BuildChange("step", name, "added"))
        elif name not in hs:
            out.append(BuildChange("step", name, "removed"))
        else:
            out += _fields("step", name, bs[name], hs[name])
    return out


def find_build(folder: Path, pipeline: str) -> Path | None:
    """The pipeline.yaml of `pipeline` under a build output folder (`<out>/<pipeline>/<v>/`)."""
    found = sorted((folder / pipeline).glob("*/pipeline.yaml"))
    return found[-1] if found else None


@dataclass(frozen=True)
class ProjectChanges:
    """One project compared with its build at the base revision.

    status: `changed`, `unchanged`, `new` (no such manifest at the base), `untouched` (nothing
    in its folder differs from the base: not built, with `only_changed`), `invalid` (this
    tree's manifest has errors: `report` says which) or `failed` (a build failed: `error` says
    why, the base's included)."""

    manifest: str  # as the user would write it
    status: str
    pipeline: str | None = None
    changes: tuple[BuildChange, ...] = ()
    error: str | None = None
    report: Report | None = dataclasses.field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.status not in ("invalid", "failed")

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "pipeline": self.pipeline,
            "status": self.status,
            "changes": [c.to_json() for c in self.changes],
            "error": self.error,
        }


def compiled_facts(
    manifest: Path, validated: tuple[Report, Project | None] | None = None
) -> tuple[Report, dict[str, Any] | None, str | None]:
    """(report, IR facts, pipeline name) of the manifest's project, compiled in memory; the
    facts are None when the manifest has errors. `validated`: the manifest's report and project
    when the caller has them already."""
    from nbflow.check.validate import validate_manifest
    from nbflow.generate.build import compile_source
    from nbflow.generate.kfp_source import generate

    report, project = validated or validate_manifest(manifest)
    if project is None:
        return report, None, None
    try:
        with tempfile.TemporaryDirectory(prefix="nbflow-diff-") as tmp:
            ir = compile_source(generate(project, "cluster"), Path(tmp))
    except ModuleNotFoundError as exc:  # an install without the compiler (kfp)
        package = (exc.name or "kfp").partition(".")[0]  # `kfp`, not the submodule that failed
        raise EnvironmentProblem(
            f"compiling the pipeline needs `{package}`, which is not installed"
        ) from None
    return report, facts(ir), project.name


def diff_project(
    manifest: Path,
    base: BaseTree,
    *,
    only_changed: bool = False,
    validated: tuple[Report, Project | None] | None = None,
) -> ProjectChanges:
    """This tree's project of `manifest` against the same manifest at the base revision
    (`validated`: this tree's report and project of it, when the caller has them already)."""
    from nbflow.check.validate import shown_path

    shown = shown_path(manifest)
    try:
        if only_changed and not base.changed(manifest.parent):
            return ProjectChanges(shown, "untouched")
        report, head, name = compiled_facts(manifest, validated)
        if head is None:
            return ProjectChanges(shown, "invalid", report=report, error=_errors(report))
        old_manifest = base.path_of(manifest)
        if not old_manifest.is_file():
            return ProjectChanges(shown, "new", name, tuple(compare(None, head)), report=report)
        old_report, old, _ = compiled_facts(old_manifest)
    except (UsageError, EnvironmentProblem) as exc:
        return ProjectChanges(shown, "failed", error=str(exc))
    if old is None:
        why = f"at {base.ref}: {_errors(old_report)}"
        return ProjectChanges(shown, "failed", name, error=why, report=report)
    changes = tuple(compare(old, head))
    return ProjectChanges(
        shown, "changed" if changes else "unchanged", name, changes, report=report
    )


def diff_projects(
    manifests: Iterable[Path], base: BaseTree, *, only_changed: bool = False
) -> list[ProjectChanges]:
    """:func:`diff_project` of each manifest, in order."""
    return [diff_project(m, base, only_changed=only_changed) for m in manifests]


def _errors(report: Report) -> str:
    first = report.errors[0].message if report.errors else "invalid"
    count = len(report.errors)
    return f"{count} error{'s' if count != 1 else ''} in the manifest (first: {first})"
