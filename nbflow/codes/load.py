"""Diagnostic codes NBF0xx: loading the manifest and the notebook."""

from __future__ import annotations

from nbflow.codes.model import ERROR, Code, json, session, yaml

MANIFEST_NOT_FOUND = Code(
    "NBF001",
    "manifest-not-found",
    ERROR,
    "The manifest can't be read.",
    "nbflow could not read `nbflow.yaml`: the file is gone, unreadable, or not UTF-8 text "
    "(saved in a legacy encoding such as Latin-1, or a binary file under that name). "
    "Save the manifest as UTF-8.",
    session("""
        $ file nbflow.yaml
        nbflow.yaml: ISO-8859 text
    """),
    session("""
        $ iconv -f latin1 -t utf-8 nbflow.yaml > utf8.yaml && mv utf8.yaml nbflow.yaml
        $ file nbflow.yaml
        nbflow.yaml: Unicode text, UTF-8 text
    """),
)
YAML_SYNTAX = Code(
    "NBF002",
    "yaml-syntax",
    ERROR,
    "The manifest is not valid YAML.",
    "The YAML parser stopped at the position shown: an unclosed bracket or quote, a tab used "
    "for indentation, or a line indented inconsistently. Nothing else is checked until the "
    "file parses.",
    yaml("""
        name: [digits
        steps:
        \ttrain: {cells: 4}
    """),
    yaml("""
        name: digits
        steps:
          train: {cells: 4}
    """),
)
API_VERSION = Code(
    "NBF003",
    "api-version",
    ERROR,
    "`apiVersion` is missing or not one this nbflow reads.",
    "Every manifest starts with `apiVersion: nbflow/v1`, so that a later format can change "
    "without misreading old files. It is checked first: a manifest of another version is not "
    "checked further.",
    yaml("""
        name: digits
        notebook: digits.ipynb
    """),
    yaml("""
        apiVersion: nbflow/v1
        name: digits
        notebook: digits.ipynb
    """),
)
NOTEBOOK_NOT_FOUND = Code(
    "NBF004",
    "notebook-not-found",
    ERROR,
    "The notebook named by `notebook` does not exist.",
    "`notebook` is a path relative to the manifest's folder, not to where nbflow runs. "
    "Check the spelling and the folder; `nbflow init NOTEBOOK` writes a manifest beside the "
    "notebook with the right path.",
    yaml("""
        # project/nbflow.yaml, the notebook is project/notebooks/digits.ipynb
        notebook: project/notebooks/digits.ipynb
    """),
    yaml("""
        # project/nbflow.yaml, the notebook is project/notebooks/digits.ipynb
        notebook: notebooks/digits.ipynb
    """),
)
NOTEBOOK_INVALID = Code(
    "NBF005",
    "notebook-invalid",
    ERROR,
    "The notebook is not a valid Jupyter notebook.",
    "The file could not be read as a notebook: it is not JSON (often an unresolved git merge "
    "conflict), has no `nbformat` field, or does not follow the nbformat v4 schema. Resolve "
    "the conflict (nbdime's `nbdime mergetool` understands notebooks), or open and save the "
    "file with Jupyter.",
    session("""
        $ head -3 digits.ipynb
        <<<<<<< HEAD
        {
         "cells": [
    """),
    session("""
        $ head -3 digits.ipynb
        {
         "cells": [
          {
    """),
)
NOTEBOOK_VERSION = Code(
    "NBF006",
    "notebook-version",
    ERROR,
    "The notebook's format is newer than nbflow understands.",
    "nbflow reads nbformat 4 (and upgrades v3 as it reads). A notebook saved as nbformat 5 or "
    "later needs a newer nbflow, or saving as nbformat 4.",
    json("""
        {"nbformat": 5, "nbformat_minor": 0, "cells": [...]}
    """),
    json("""
        {"nbformat": 4, "nbformat_minor": 5, "cells": [...]}
    """),
)
MANIFEST_NOT_A_MAPPING = Code(
    "NBF007",
    "manifest-not-a-mapping",
    ERROR,
    "The manifest is not a mapping of keys.",
    "The top level of `nbflow.yaml` is a mapping (`apiVersion:`, `name:`, `steps:`...). A "
    "list, a plain string or an empty file is not a manifest.",
    yaml("""
        - apiVersion: nbflow/v1
        - name: digits
    """),
    yaml("""
        apiVersion: nbflow/v1
        name: digits
    """),
)
DUPLICATE_KEY = Code(
    "NBF008",
    "duplicate-key",
    ERROR,
    "A key appears twice in one mapping.",
    "YAML would keep only the last of the two values and silently drop the first, so nbflow "
    "refuses the file. Merge the two entries into one.",
    yaml("""
        steps:
          train: {cells: 7}
          train: {cells: 8}
    """),
    yaml("""
        steps:
          train: {cells: [7, 8]}
    """),
)
REQUIREMENTS_FILE = Code(
    "NBF009",
    "requirements-file",
    ERROR,
    "The requirements file is missing or uses pip options.",
    "`requirements: FILE` names a requirements file relative to the manifest's folder. Each "
    "line is a requirement (`#` comments allowed); pip options (`-r`, `-e`, `--index-url`) "
    "can't be passed on to a step's pip install, so they are refused.",
    yaml("""
        requirements: requirements.txt
        # requirements.txt:
        #   --index-url https://pypi.example.com/simple
        #   scikit-learn>=1.4
    """),
    yaml("""
        requirements: requirements.txt
        # requirements.txt:
        #   scikit-learn>=1.4
    """),
)
INPUT_TOO_LARGE = Code(
    "NBF010",
    "input-too-large",
    ERROR,
    "The manifest is too large, or its aliases repeat too much.",
    "A manifest is a regular file of at most 1 MiB and holds at most 100,000 values, a YAML "
    "alias counting as the values of its anchor each time it is used (so that a few lines of "
    'nested aliases, a "billion laughs", can\'t exhaust memory). An alias inside its own '
    "anchor, a cycle, is refused too. A real manifest is far below these limits: write the "
    "values out, or split the pipeline.",
    yaml("""
        x-a: &a [x, x, x, x, x, x, x, x, x, x]
        x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        x-e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    """),
    yaml("""
        x-resources: &gpu {cpu: "4", memory: 16Gi, gpu: 1}
        steps:
          train: {cells: 7, resources: *gpu}
    """),
)
NESTED_TOO_DEEP = Code(
    "NBF011",
    "nested-too-deep",
    ERROR,
    "The manifest or notebook is nested too deeply.",
    "A manifest nests at most 64 levels (its own keys need six), a notebook's JSON at most "
    "100. Deeper input is refused with this diagnostic rather than read recursively until "
    "the interpreter's stack runs out.",
    yaml("""
        parameters:
          layers: {default: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    """),
    yaml("""
        parameters:
          layers: {default: [64, 32, 16]}
    """),
)
NUMBER_OUT_OF_RANGE = Code(
    "NBF012",
    "number-out-of-range",
    ERROR,
    "A number does not fit 64 bits, or is not finite.",
    "KFP, Kubernetes, Katib and JSON hold integers of 64 bits and finite numbers: an integer "
    "beyond ±9223372036854775807, `.nan`, `.inf` or a float that overflows (`1e400`) could not "
    "reach a pipeline unchanged, so the manifest refuses it where it is written.",
    yaml("""
        parameters:
          threshold: .inf
          seed: 99999999999999999999
    """),
    yaml("""
        parameters:
          threshold: 1.0e300
          seed: 42
    """),
)
