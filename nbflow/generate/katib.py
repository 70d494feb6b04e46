"""The Katib Experiment file of a build (`experiment.yaml`): the Experiment that
`nbflow.check.experiment` derives from the manifest's `tuning` block, with the build's labels and
annotations (`nbflow.generate.labels`), checked once more against Katib's rules and written as
deterministic YAML.
"""

from __future__ import annotations

from typing import Any

from nbflow.check.experiment import KatibError, experiment_body
from nbflow.check.katib_rules import check_experiment
from nbflow.check.project import Project
from nbflow.generate.labels import labels, resource_annotations
from nbflow.generate.snapshot import Snapshot


def experiment(
    project: Project, *, version: str, content_hash: str, snapshot: Snapshot
) -> dict[str, Any]:
    """The Katib Experiment of `project.manifest.tuning`, as plain dicts, labelled for the build.

    Raises KatibError, naming every problem, when the tuning block can't be written for Katib.
    """
    exp = experiment_body(project, version=version)
    exp["metadata"] = {
        **exp["metadata"],
        "labels": labels(project, version, content_hash, snapshot),
        "annotations": resource_annotations(project, snapshot),
    }
    return exp


def experiment_yaml(
    project: Project, *, version: str, content_hash: str, snapshot: Snapshot
) -> str:
    """`experiment(...)` as deterministic YAML; raises KatibError if Katib would refuse it."""
    import yaml

    exp = experiment(project, version=version, content_hash=content_hash, snapshot=snapshot)
    problems = check_experiment(exp)
    if problems:
        raise KatibError(problems)
    text: str = yaml.safe_dump(exp, sort_keys=False, width=1000)
    return text
