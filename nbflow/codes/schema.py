"""Diagnostic codes NBF1xx: the manifest's shape (schema)."""

from __future__ import annotations

from nbflow.codes.model import ERROR, Code, yaml

UNKNOWN_KEY = Code(
    "NBF101",
    "unknown-key",
    ERROR,
    "A key the manifest does not define.",
    "Every key of `nbflow.yaml` is listed in docs/manifest.md; anything else is an error "
    "rather than ignored, because a misspelt key would otherwise silently keep its default. "
    "The hint names the closest valid key.",
    yaml("""
        tuning:
          paralelTrials: 3
    """),
    yaml("""
        tuning:
          parallelTrials: 3
    """),
)
WRONG_TYPE = Code(
    "NBF102",
    "wrong-type",
    ERROR,
    "A value has the wrong type.",
    "Values are not coerced: a number in quotes is a string, `yes` is a string (YAML 1.2), "
    "and a list is not a mapping. Cells are a number, a range string like `4-5`, "
    "`id:<cell id>`, or a list of those.",
    yaml("""
        steps:
          train:
            cells: 7
            retries: "3"
            cache: yes
    """),
    yaml("""
        steps:
          train:
            cells: 7
            retries: 3
            cache: true
    """),
)
MISSING_KEY = Code(
    "NBF103",
    "missing-key",
    ERROR,
    "A required key is missing.",
    "Some keys have no default: `name`, `notebook` and `steps` at the top, `cells` in each "
    "step, `objective`, `maxTrials` and `search` in `tuning`, `name` and `mountPath` in a "
    "volume.",
    yaml("""
        steps:
          load:
            image: python:3.11-slim
    """),
    yaml("""
        steps:
          load:
            cells: 4
            image: python:3.11-slim
    """),
)
INVALID_VALUE = Code(
    "NBF104",
    "invalid-value",
    ERROR,
    "A value is not one of those allowed, or out of bounds.",
    "The key takes one of a fixed set of values (an algorithm, a metric goal, an access "
    "mode), or a number within bounds (`retries` from 0 to 100, `maxTrials` at least 1), or "
    "a non-empty mapping (`steps`). The message lists what is allowed.",
    yaml("""
        metrics:
          accuracy: {goal: max}
        steps:
          train: {cells: 7, retries: -1}
    """),
    yaml("""
        metrics:
          accuracy: {goal: maximize}
        steps:
          train: {cells: 7, retries: 1}
    """),
)
INVALID_NAME = Code(
    "NBF105",
    "invalid-name",
    ERROR,
    "A name is not valid where it is used.",
    "The pipeline, its steps, volumes and the namespace become Kubernetes object names, so "
    "they are DNS-1123 labels: lowercase letters, digits and `-`, starting and ending with a "
    "letter or digit, at most 63 characters. Parameters and metrics are Python variables, so "
    "they are identifiers; a parameter may not start with `_`, which generated code keeps for "
    "itself.",
    yaml("""
        name: Digits_SVM
        steps:
          Train: {cells: 7}
        parameters:
          _seed: 0
    """),
    yaml("""
        name: digits-svm
        steps:
          train: {cells: 7}
        parameters:
          seed: 0
    """),
)
