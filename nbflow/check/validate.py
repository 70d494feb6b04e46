"""Validation: manifest + notebook -> diagnostics and, when they hold no error, a Project.

load YAML (positions) -> apiVersion -> pydantic model -> notebook -> structural rules
-> data-flow analysis and plan -> Project (frozen, made once) -> Katib's rules for `tuning`
"""

from __future__ import annotations

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
    try:
        nb = load_notebook(
            nb_path, shown_path(nb_path), referenced_at=nb_location, text=notebook_text
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
        drift, explained = check_lock(path.parent, manifest, doc, nb, current)
        # stale numbers make the cell rules fire on cells nobody meant: the drift
        # diagnostics say what moved and how to fix it, once per part
        structural = [d for d in structural if d.code not in explained]
        structural += drift
    report.extend(structural)
    requirements, req_diags = _requirements(manifest, path.parent, doc, report.sources)
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
    manifest: Manifest, root: Path, doc: YamlDoc, sources: dict[str, str]
) -> tuple[tuple[str, ...], list[Diagnostic]]:
    """The pipeline's requirements (listed, or read from a requirements file, whose text goes
    to `sources` for code frames), each checked against PEP 508 where it is written, as are the
    steps' own."""
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return (), [
            error(
                codes.REQUIREMENTS_FILE,
                f"requirements file not found: {shown_path(path)}",
                doc.locate(("requirements",)),
            )
        ]
    raw_lines = text.splitlines()
    lines = [ln.split(" #")[0].strip() for ln in raw_lines]
    bad = [ln for ln in lines if ln.startswith("-")]
    if bad:
        return (), [
            error(
                codes.REQUIREMENTS_FILE,
                f"requirements file {shown_path(path)} uses pip options ({bad[0]}), which a step cannot pass on",
                doc.locate(("requirements",)),
            )
        ]
    shown = shown_path(path)
    sources[shown] = text
    listed = [
        (ln, Location(shown, number, raw_lines[number - 1].find(ln) + 1))
        for number, ln in enumerate(lines, start=1)
        if ln and not ln.startswith("#")
    ]
    return tuple(ln for ln, _ in listed), _invalid_requirements([*listed, *in_steps])


def _invalid_requirements(entries: Sequence[tuple[str, Location]]) -> list[Diagnostic]:
    if not entries:
        return []
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for text, where in entries:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            out.append(
                error(
                    codes.REQUIREMENT_INVALID,
                    f"`{text}` is not a valid requirement: {reason}",
                    where,
                    hint="write it as pip reads a requirement (PEP 508): `name`, `name==1.2`, "
                    "`name[extra]>=1,<2`, `name @ https://...`",
                )
            )
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
