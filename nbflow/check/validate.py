"""Validation: manifest + notebook -> diagnostics and, when they hold no error, a Project.

load YAML (positions) -> apiVersion -> pydantic model -> notebook -> structural rules
-> data-flow analysis and plan -> Project (frozen, made once) -> Katib's rules for `tuning`
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from nbflow import codes
from nbflow.check.dataflow_rules import file_rules, plan_project
from nbflow.check.manifest import Manifest, Resources
from nbflow.check.parse import manifest_model
from nbflow.check.paths import MANIFEST_NAME, find_manifests, manifest_path, shown_path
from nbflow.check.project import ParameterConfig, Project, StepConfig
from nbflow.check.rules import Checker
from nbflow.diagnostics import Diagnostic, Location, Report, error, warning
from nbflow.load.inputs import InputRefused, read_input, repository_root
from nbflow.load.notebook import NotebookError, load_notebook
from nbflow.load.yaml_positions import YamlDoc, YamlLoadError, load_file, load_text


def validate_manifest(
    path: Path,
    *,
    katib: bool = True,
    lock: bool = True,
    manifest_text: str | None = None,
    notebook_text: str | None = None,
) -> tuple[Report, Project | None]:
    """Validate one manifest with its notebook; `lock=False` skips the cell-drift check
    against nbflow.lock.json (for `nbflow lock`, which rewrites it); `katib=False` skips
    holding the `tuning` block's Experiment against Katib's rules (for tests of the Experiment
    itself). `manifest_text` and `notebook_text` stand for the files' content where an editor
    holds unsaved changes. The Project is made once, with its data-flow plan, when there is no
    error."""
    shown = shown_path(path)
    report = Report(manifests=[shown])
    try:
        doc = load_file(path, shown) if manifest_text is None else load_text(manifest_text, shown)
    except YamlLoadError as exc:
        report.extend([exc.diagnostic])
        return report, None
    report.sources[shown] = doc.text
    diags, manifest = manifest_model(doc)
    report.extend(diags)
    if manifest is None:
        return report, None
    nb_location = doc.locate(("notebook",))
    nb_path = path.parent / manifest.notebook
    repository = repository_root(path.parent)
    try:
        nb = load_notebook(
            nb_path,
            shown_path(nb_path),
            referenced_at=nb_location,
            root=repository,
            text=notebook_text,
        )
    except NotebookError as exc:
        report.extend([exc.diagnostic])
        return report, None
    checker = Checker(manifest, nb, doc)
    structural = checker.run()
    if lock:
        from nbflow.check.lock import check_lock, groups

        r = checker.resolved
        current = groups(nb, r.setup, r.skip, r.parameters_cell, r.steps or {})
        drift, explained = check_lock(
            path.parent, manifest, doc, nb, current, repository=repository
        )
        # stale numbers make the cell rules fire on cells nobody meant: the drift
        # diagnostics say what moved and how to fix it, once per part
        structural = [d for d in structural if d.code not in explained]
        structural += drift
    report.extend(structural)
    requirements, req_diags = _requirements(manifest, path.parent, doc, repository)
    report.extend(req_diags)
    if not report.ok:
        return report, None
    r = checker.resolved
    assert r.steps is not None and r.parameter_values is not None
    setup = tuple(c for c in r.setup if nb.cells[c - 1].type == "code")
    steps = tuple(
        _step_config(manifest, name, cells, requirements) for name, cells in r.steps.items()
    )
    parameters = tuple(
        ParameterConfig(
            name=name,
            type=p.type or "str",
            default=p.default if p.default is not None else r.parameter_values.get(name),
            description=p.description,
        )
        for name, p in manifest.parameters.items()
    )
    plan, plan_diags = plan_project(
        manifest,
        doc,
        nb,
        setup=setup,
        steps=steps,
        parameters=parameters,
        parameters_cell=r.parameters_cell,
    )
    report.extend(plan_diags)
    # made once, with its plan; returned only when nothing below finds an error
    project = Project(
        manifest_path=path,
        root=path.parent,
        manifest=manifest,
        doc=doc,
        notebook=nb,
        setup=setup,
        skip=r.skip,
        parameters_cell=r.parameters_cell,
        steps=steps,
        parameters=parameters,
        requirements=requirements,
        inputs=_inputs(path, manifest),
        plan=plan,
    )
    report.extend(file_rules(project))  # in the same pass as the plan's diagnostics
    if not report.ok:
        return report, None
    if katib and manifest.tuning is not None:
        report.extend(_katib(project, doc))
        if not report.ok:
            return report, None
    return report, project


def _inputs(path: Path, manifest: Manifest) -> tuple[Path, ...]:
    """The files a build of this manifest reads (nbflow.check.project.Project.inputs)."""
    from nbflow.check.lock import LOCK_NAME

    files = [path, path.parent / manifest.notebook]
    if isinstance(manifest.requirements, str):
        files.append(path.parent / manifest.requirements)
    if os.path.lexists(path.parent / LOCK_NAME):
        files.append(path.parent / LOCK_NAME)
    return tuple(files)


def _katib(project: Project, doc: YamlDoc) -> list[Diagnostic]:
    """Check the Katib Experiment this manifest generates, as Katib's webhook and suggestion
    services would, so that a bad search is an error here rather than on the cluster."""
    from nbflow.check.experiment import tuning_warnings, validate_tuning

    where = doc.locate(("tuning",), key=True)
    hint = "Katib would reject the generated Experiment"
    out = [
        error(codes.KATIB_REJECTS, problem, where, hint=hint)
        for problem in validate_tuning(project)
    ]
    out += [warning(codes.KATIB_REJECTS, problem, where) for problem in tuning_warnings(project)]
    return out


def _requirements(
    manifest: Manifest, root: Path, doc: YamlDoc, repository: Path
) -> tuple[tuple[str, ...], list[Diagnostic]]:
    """The pipeline's requirements (listed, or read from a requirements file), each checked
    against PEP 508 where it is written, as are the steps' own.

    A requirements file is read only inside the repository (nbflow.load.inputs), and no
    diagnostic quotes it: its lines are named by number, and it gets no code frame, so that a
    file that is not what it claims to be can't be published through a message."""
    in_steps = [
        (r, doc.locate(("steps", name, "requirements", i)))
        for name, step in manifest.steps.items()
        for i, r in enumerate(step.requirements)
    ]
    req = manifest.requirements
    if not isinstance(req, str):
        return tuple(req), _invalid_requirements(
            [*((r, doc.locate(("requirements", i))) for i, r in enumerate(req)), *in_steps]
        )
    path = root / req
    shown = shown_path(path)
    where = doc.locate(("requirements",))
    try:
        text = read_input(path, root=repository, kind="requirements").decode("utf-8")
    except FileNotFoundError:
        return (), [error(codes.REQUIREMENTS_FILE, f"requirements file not found: {shown}", where)]
    except InputRefused as exc:
        return (), [error(codes.FILE_REFUSED, f"requirements file {shown} {exc}", where)]
    except UnicodeDecodeError:
        return (), [
            error(codes.REQUIREMENTS_FILE, f"requirements file {shown} is not UTF-8 text", where)
        ]
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (), [
            error(
                codes.REQUIREMENTS_FILE, f"cannot read requirements file {shown}: {reason}", where
            )
        ]
    raw_lines = text.splitlines()
    lines = [ln.split(" #")[0].strip() for ln in raw_lines]
    bad = [number for number, ln in enumerate(lines, start=1) if ln.startswith("-")]
    if bad:
        return (), [
            error(
                codes.REQUIREMENTS_FILE,
                f"requirements file {shown} uses a pip option (line {bad[0]}), which a step "
                "cannot pass on",
                Location(shown, bad[0], 1),
                hint="list the packages alone; options such as --index-url belong to the image",
            )
        ]
    listed = [
        (ln, Location(shown, number, raw_lines[number - 1].find(ln) + 1))
        for number, ln in enumerate(lines, start=1)
        if ln and not ln.startswith("#")
    ]
    return tuple(ln for ln, _ in listed), _invalid_requirements(in_steps, listed)


def _invalid_requirements(
    written: Sequence[tuple[str, Location]], in_file: Sequence[tuple[str, Location]] = ()
) -> list[Diagnostic]:
    """NBF608 for each entry that is not a PEP 508 requirement: those `written` in the manifest
    are quoted, those of a requirements file are named by their line alone."""
    if not written and not in_file:
        return []
    from packaging.requirements import InvalidRequirement, Requirement

    hint = (
        "write it as pip reads a requirement (PEP 508): `name`, `name==1.2`, "
        "`name[extra]>=1,<2`, `name @ https://...`"
    )
    out = []
    for text, where, quote in [
        *((t, w, True) for t, w in written),
        *((t, w, False) for t, w in in_file),
    ]:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            if quote:
                message = f"`{text}` is not a valid requirement: {reason}"
            else:  # packaging's reason alone, unless it quotes the line
                why = "" if text in reason else f": {reason}"
                message = f"line {where.line} of {where.file} is not a valid requirement{why}"
            out.append(error(codes.REQUIREMENT_INVALID, message, where, hint=hint))
    return out


def _step_config(
    manifest: Manifest, name: str, cells: tuple[int, ...], requirements: tuple[str, ...]
) -> StepConfig:
    step = manifest.steps[name]
    volumes = (
        manifest.volumes
        if step.volumes is None
        else tuple(v for v in manifest.volumes if v.name in step.volumes)
    )
    return StepConfig(
        name=name,
        cells=cells,
        spec=step,
        image=step.image or manifest.image,
        requirements=tuple(dict.fromkeys((*requirements, *step.requirements))),
        resources=_resources(manifest.resources, step.resources),
        env={k: str(v) for k, v in {**manifest.env, **step.env}.items()},  # already strings
        volumes=volumes,
    )


def _resources(default: Resources | None, step: Resources | None) -> Resources | None:
    """A step's resources override the pipeline's key by key: `{gpu: 1}` keeps the default CPU."""
    if default is None or step is None:
        return step or default
    return Resources.model_validate(
        {**default.model_dump(exclude_unset=True), **step.model_dump(exclude_unset=True)}
    )


def validate(paths: Iterable[str | Path]) -> Report:
    """Validate every manifest at or below `paths`; one report for all."""
    manifests = find_manifests(paths)
    report = Report()
    for m in manifests:
        sub, _ = validate_manifest(m)
        report.merge(sub)
    return report


def load_project(path: str | Path) -> tuple[Report, Project | None]:
    """Validate the manifest of one project (its folder or its nbflow.yaml)."""
    return validate_manifest(manifest_path(path))


# found and shown by `nbflow.check.paths`, made into the model by `nbflow.check.parse`; named
# here too, where callers have always found them
__all__ = [
    "MANIFEST_NAME",
    "find_manifests",
    "load_project",
    "manifest_model",
    "manifest_path",
    "shown_path",
    "validate",
    "validate_manifest",
]
