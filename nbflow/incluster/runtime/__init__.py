"""The step runtime: what runs inside one pipeline step (load inputs, run cells, save outputs).

A generated pipeline carries this package once, as a zip archive packed into its first task
(``nbflow-runtime``), which writes it to an artifact; every step checks the archive's SHA-256,
imports the package from it as ``nbflow_runtime`` and calls :func:`run` exactly once
(docs/runtime.md). So a step image needs no nbflow install, hence: standard library only at
import time (numpy, pandas, pyarrow, joblib, torch, xgboost, lightgbm, keras, cloudpickle and
IPython are imported inside the functions that need them, each of them optional), and the
modules import each other relatively, never from ``nbflow``.

One concern a module: ``program`` decodes the program a step carries; ``values`` (what crosses
steps) over ``serializers``; ``cells`` runs a cell in a session of ``sessions``, recording what
it shows (``capture``); ``failures`` words what went wrong; ``report`` writes the HTML page,
``metrics`` the Katib lines, ``events`` the JSON lines nbflow's local engine reads; ``util``
names types. This module ties them together.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Protocol

from .capture import Recorder, notebook_logging
from .cells import run_cell
from .events import emit_event
from .failures import CellSources, StepFailure, disk_hint
from .metrics import collect_metrics, print_metrics
from .program import decode_program
from .report import render_report
from .sessions import Session, new_session
from .values import load_inputs, save_outputs, value_record


def _run_step(
    program: dict[str, Any],
    session: Session,
    recorder: Recorder,
    sources: CellSources,
    *,
    inputs: dict[str, str],
    records: dict[str, object],
    outputs: dict[str, str],
    parameters: dict[str, object],
    saved: dict[str, str],
) -> dict[str, float]:
    step = str(program["step"])
    notebook = str(program.get("notebook", "the notebook"))
    missing = [p for p in program.get("parameters", []) if p not in parameters]
    if missing:
        raise StepFailure(f"step '{step}': no value for parameter(s) {', '.join(missing)}")
    session.push(dict(parameters))

    loaded = load_inputs(program.get("inputs", []) or list(inputs), inputs, records, step=step)
    # Order: parameters, setup cells, imports replayed from other steps' cells, then the
    # inputs, then the step's cells: an input that is a new value of a setup-defined name
    # (a config a step changed) must win over the setup cell's original.
    setup = [c for c in program["cells"] if c.get("setup")]
    own = [c for c in program["cells"] if not c.get("setup")]
    for cell in setup:
        run_cell(cell, session, recorder, sources, step=step, notebook=notebook)
    replayed = "\n".join(program.get("imports", []))
    if replayed:
        run_cell(
            {"number": 0, "source": replayed, "setup": True},
            session,
            recorder,
            sources,
            step=step,
            notebook=notebook,
        )
    session.push(loaded)
    for cell in own:
        run_cell(cell, session, recorder, sources, step=step, notebook=notebook)

    values: dict[str, object] = {}
    for name in program.get("outputs", []) or list(outputs):
        if name not in outputs:
            raise StepFailure(f"step '{step}': no artifact path for output variable '{name}'")
        found, value = session.get(name)
        if not found:
            raise StepFailure(
                f"step '{step}': output variable '{name}' was never assigned "
                f"(the step's cells of {notebook} ran without defining it)"
            )
        values[name] = value
    save_outputs(values, outputs, saved, step=step)

    return collect_metrics(session, program.get("metrics", []), step=step)


def _enter_workdir(program: dict[str, Any]) -> None:
    """Run in the notebook's folder, as Jupyter does (relative paths, modules beside it), when
    the program names one that exists here (a local run); on a cluster it stays in the image's
    working directory."""
    workdir = program.get("workdir")
    if isinstance(workdir, str) and os.path.isdir(workdir):
        os.chdir(workdir)
        sys.path.insert(0, workdir)


class Artifact(Protocol):
    """What a step gets from KFP for each of its artifacts (`dsl.Input[dsl.Artifact]` and
    `dsl.Output[...]`): the runtime reads its path and metadata, never imports kfp."""

    path: str
    metadata: dict[str, Any]


class MetricsArtifact(Artifact, Protocol):
    def log_metric(self, metric: str, value: float) -> None: ...


def run(
    program: str,
    *,
    inputs: dict[str, Artifact],
    outputs: dict[str, Artifact],
    parameters: dict[str, object],
    report: Artifact,
    metrics: MetricsArtifact | None = None,
) -> dict[str, Any]:
    """What a generated step calls: :func:`main` on KFP's artifacts. ``program`` is the step's
    program as :func:`~.program.encode_program` carries it. Each input is loaded as its
    producer recorded it in the pipeline's metadata store (the input artifact's metadata), never
    as the artifact's own files say (docs/security.md); each output's record goes into its
    artifact's metadata, and the metrics into ``metrics`` (logged, and as JSON at its path, so
    that caches and launchers can read the values)."""
    values = main(
        decode_program(program),
        inputs={name: a.path for name, a in inputs.items()},
        records={name: dict(a.metadata) for name, a in inputs.items()},
        outputs={name: a.path for name, a in outputs.items()},
        parameters=parameters,
        report_path=report.path,
    )
    for name, record in values["records"].items():
        outputs[name].metadata.update(record)
    if metrics is not None:
        for name, value in sorted(values["metrics"].items()):
            metrics.log_metric(name, value)
        with open(metrics.path, "w", encoding="utf-8") as f:
            json.dump(values["metrics"], f, sort_keys=True)
    return values


def main(
    program: dict[str, Any],
    *,
    inputs: dict[str, str],
    records: dict[str, object] | None = None,
    outputs: dict[str, str],
    parameters: dict[str, object],
    report_path: str | None,
) -> dict[str, Any]:
    """Run one step: parameters and inputs in, cells run as in a notebook, outputs saved.

    ``records`` holds, per input, what the pipeline recorded when the producing step saved it
    (its artifact's metadata: :func:`value_record`); an input is loaded only as it says.
    Prints ``name=value`` for each metric on stdout (the line Katib's StdOut collector reads).
    Returns ``{"metrics": {name: value}, "records": {output: record}}``, the records for the
    caller to put in each output artifact's metadata. Any failure is printed to stderr (and
    put in the report) and ends the step with ``SystemExit(1)``.
    """
    # absolute: a cell may change directory (%cd, os.chdir); it is changed back at the end
    cwd = os.getcwd()
    inputs = {k: os.path.abspath(v) for k, v in inputs.items()}
    outputs = {k: os.path.abspath(v) for k, v in outputs.items()}
    report_path = os.path.abspath(report_path) if report_path else None
    saved_path = list(sys.path)
    _enter_workdir(program)
    recorder = Recorder(sys.stdout)
    sources = CellSources()
    saved: dict[str, str] = {}
    metrics: dict[str, float] = {}
    error: str | None = None
    emit_event("started", step=program["step"])
    session = new_session(recorder, sources)
    try:
        with notebook_logging():
            metrics = _run_step(
                program,
                session,
                recorder,
                sources,
                inputs=inputs,
                records=dict(records or {}),
                outputs=outputs,
                parameters=parameters,
                saved=saved,
            )
    except StepFailure as failure:
        error = str(failure)
    finally:
        session.close()
        os.chdir(cwd)
        sys.path[:] = saved_path
    if error is not None:
        sys.stderr.write(error + "\n")
        sys.stderr.flush()
    if report_path:
        paths = {v: f"<input {k}>" for k, v in inputs.items()}
        paths.update({v: f"<output {k}>" for k, v in outputs.items()})
        page = render_report(
            program,
            recorder.cells,
            error=error,
            parameters=parameters,
            saved=saved,
            metrics=metrics,
            paths=dict(sorted(paths.items(), key=lambda item: -len(item[0]))),
        )
        report_path = os.path.abspath(report_path)
        try:
            os.makedirs(os.path.dirname(report_path), exist_ok=True)
            with open(report_path, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as exc:
            hint = disk_hint(exc)
            sys.stderr.write(
                f"step '{program['step']}': cannot write its report: {exc}\n"
                + (f"hint: {hint}\n" if hint else "")
            )
            sys.stderr.flush()
            raise SystemExit(1) from None
    if error is not None:
        emit_event("failed", step=program["step"], error=error)
        raise SystemExit(1)
    emit_event("finished", step=program["step"], metrics=metrics)
    print_metrics(metrics)
    records = {name: value_record(outputs[name], serializer) for name, serializer in saved.items()}
    return {"metrics": metrics, "records": records}
