"""The registry of diagnostic codes: every problem nbflow reports, one constant each.

Call sites name a code by its constant (``error(codes.CYCLE, ...)``), never by a bare string.
Each code has a stable id (``NBF302``), a short name (``cycle``), the severities it is reported
with, a one-line summary and an explanation with a wrong and a right example. ``nbflow explain
NBF302`` prints it, ``docs/diagnostics.md`` is generated from it and SARIF rules carry it.

Ids are stable: never reuse or renumber one (``RETIRED`` lists those withdrawn). NBF0xx
loading, NBF1xx schema, NBF2xx cells, NBF3xx steps, NBF4xx parameters and metrics, NBF5xx
tuning, NBF6xx resources, images, volumes and requirements, NBF7xx data flow.

This module imports nothing of nbflow, so that every stage can use it.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

REPOSITORY_URL = "https://github.com/nbflow/nbflow"
DOCS_URL = f"{REPOSITORY_URL}/blob/main/docs/diagnostics.md"  # generated from REGISTRY

# Withdrawn ids, kept so that no new code takes them: NBF510 (goal-direction) was catalogued
# but never checked: a metric's goal is the direction itself, there is nothing to contradict.
RETIRED = frozenset({"NBF510"})


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


ERROR = (Severity.ERROR,)
WARNING = (Severity.WARNING,)
EITHER = (Severity.ERROR, Severity.WARNING)


@dataclass(frozen=True, slots=True)
class Example:
    """A snippet in a language (``yaml``, ``python``, ``json``, ``text``), indented as written."""

    lang: str
    source: str

    @property
    def text(self) -> str:
        return textwrap.dedent(self.source).strip("\n")


def _yaml(source: str) -> Example:
    return Example("yaml", source)


def _python(source: str) -> Example:
    return Example("python", source)


def _session(source: str) -> Example:
    # "text", not "console": the docs' ```console blocks are commands that tests/test_docs.py runs
    return Example("text", source)


def _json(source: str) -> Example:
    return Example("json", source)


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    name: str
    severities: tuple[Severity, ...]
    summary: str
    explanation: str
    wrong: Example
    right: Example

    @property
    def anchor(self) -> str:
        """The code's heading anchor in docs/diagnostics.md (`## NBF302 cycle`)."""
        return f"{self.id}-{self.name}".lower()

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.anchor}"

    @property
    def severity_text(self) -> str:
        return " or ".join(s.value for s in self.severities)


# -- NBF0xx: loading ------------------------------------------------------------------------------

MANIFEST_NOT_FOUND = Code(
    "NBF001",
    "manifest-not-found",
    ERROR,
    "The manifest can't be read.",
    "nbflow could not read `nbflow.yaml`: the file is gone, unreadable, or not UTF-8 text "
    "(saved in a legacy encoding such as Latin-1, or a binary file under that name). "
    "Save the manifest as UTF-8.",
    _session("""
        $ file nbflow.yaml
        nbflow.yaml: ISO-8859 text
    """),
    _session("""
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
    _yaml("""
        name: [digits
        steps:
        \ttrain: {cells: 4}
    """),
    _yaml("""
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
    _yaml("""
        name: digits
        notebook: digits.ipynb
    """),
    _yaml("""
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
    _yaml("""
        # project/nbflow.yaml, the notebook is project/notebooks/digits.ipynb
        notebook: project/notebooks/digits.ipynb
    """),
    _yaml("""
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
    _session("""
        $ head -3 digits.ipynb
        <<<<<<< HEAD
        {
         "cells": [
    """),
    _session("""
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
    _json("""
        {"nbformat": 5, "nbformat_minor": 0, "cells": [...]}
    """),
    _json("""
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
    _yaml("""
        - apiVersion: nbflow/v1
        - name: digits
    """),
    _yaml("""
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
    _yaml("""
        steps:
          train: {cells: 7}
          train: {cells: 8}
    """),
    _yaml("""
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
    _yaml("""
        requirements: requirements.txt
        # requirements.txt:
        #   --index-url https://pypi.example.com/simple
        #   scikit-learn>=1.4
    """),
    _yaml("""
        requirements: requirements.txt
        # requirements.txt:
        #   scikit-learn>=1.4
    """),
)

# -- NBF1xx: schema -------------------------------------------------------------------------------

UNKNOWN_KEY = Code(
    "NBF101",
    "unknown-key",
    ERROR,
    "A key the manifest does not define.",
    "Every key of `nbflow.yaml` is listed in docs/manifest.md; anything else is an error "
    "rather than ignored, because a misspelt key would otherwise silently keep its default. "
    "The hint names the closest valid key.",
    _yaml("""
        tuning:
          paralelTrials: 3
    """),
    _yaml("""
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
    _yaml("""
        steps:
          train:
            cells: 7
            retries: "3"
            cache: yes
    """),
    _yaml("""
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
    _yaml("""
        steps:
          load:
            image: python:3.11-slim
    """),
    _yaml("""
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
    _yaml("""
        metrics:
          accuracy: {goal: max}
        steps:
          train: {cells: 7, retries: -1}
    """),
    _yaml("""
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
    _yaml("""
        name: Digits_SVM
        steps:
          Train: {cells: 7}
        parameters:
          _seed: 0
    """),
    _yaml("""
        name: digits-svm
        steps:
          train: {cells: 7}
        parameters:
          seed: 0
    """),
)

# -- NBF2xx: cells --------------------------------------------------------------------------------

BAD_CELL_RANGE = Code(
    "NBF201",
    "bad-cell-range",
    ERROR,
    "A cell reference is not a number, a range or an id.",
    "Cells are 1-based numbers counting every cell (markdown too), ranges `first-last` with "
    "first <= last, or `id:<cell id>`. `0`, `7-4` and `4..6` are not cells.",
    _yaml("""
        steps:
          train: {cells: "7-4"}
          evaluate: {cells: "8..9"}
    """),
    _yaml("""
        steps:
          train: {cells: "4-7"}
          evaluate: {cells: "8-9"}
    """),
)
CELL_OUT_OF_RANGE = Code(
    "NBF202",
    "cell-out-of-range",
    ERROR,
    "A cell number is beyond the notebook's last cell.",
    "The notebook has fewer cells than the number given, often because cells were deleted, "
    "or because the count skipped markdown cells. `nbflow cells NOTEBOOK` lists every cell "
    "with its number.",
    _yaml("""
        # the notebook has 9 cells
        steps:
          evaluate: {cells: "8-10"}
    """),
    _yaml("""
        # the notebook has 9 cells
        steps:
          evaluate: {cells: "8-9"}
    """),
)
CELL_ID_NOT_FOUND = Code(
    "NBF203",
    "cell-id-not-found",
    ERROR,
    "No cell has the id given with `id:`.",
    "`id:<cell id>` names a cell by its nbformat id (nbformat 4.5 and later), which survives "
    "inserting cells above it. The id is not in the notebook, or the notebook is older than "
    "4.5 and has no ids (save it with a recent Jupyter to add them). `nbflow cells` lists ids.",
    _yaml("""
        steps:
          train: {cells: "id:trian-model"}
    """),
    _yaml("""
        steps:
          train: {cells: "id:train-model"}
    """),
)
CELL_OWNED_TWICE = Code(
    "NBF204",
    "cell-owned-twice",
    ERROR,
    "A cell is claimed by two owners.",
    "Each cell belongs to at most one of: a step, `setup`, `skip`, or the parameters cell. "
    "Code that every step needs goes in `setup`; otherwise choose one step.",
    _yaml("""
        setup: 2
        steps:
          load: {cells: "2-4"}
    """),
    _yaml("""
        setup: 2
        steps:
          load: {cells: "3-4"}
    """),
)
FORGOTTEN_CELL = Code(
    "NBF205",
    "forgotten-cell",
    WARNING,
    "A code cell is in no step, setup or skip.",
    "A non-empty code cell that the manifest does not mention would not run in the pipeline, "
    "which is usually a mistake (a cell added to the notebook later). Add it to a step, or "
    "list it under `skip` to say it is deliberately left out.",
    _yaml("""
        # cell 9 plots the results
        steps:
          evaluate: {cells: 8}
    """),
    _yaml("""
        # cell 9 plots the results
        steps:
          evaluate: {cells: 8}
        skip: [9]
    """),
)
NOT_A_CODE_CELL = Code(
    "NBF206",
    "not-a-code-cell",
    EITHER,
    "`setup` or `parametersCell` names a markdown or raw cell.",
    "Setup and the parameters cell run code. `parametersCell` pointing at a markdown cell is "
    "an error; a markdown cell listed in `setup` is a warning (it is ignored). The numbers "
    "count every cell, markdown too: check them with `nbflow cells`.",
    _yaml("""
        # cell 1 is the title (markdown), cell 2 the imports
        setup: 1
    """),
    _yaml("""
        # cell 1 is the title (markdown), cell 2 the imports
        setup: 2
    """),
)
EMPTY_STEP = Code(
    "NBF207",
    "empty-step",
    ERROR,
    "A step has no code cells.",
    "Every cell the step lists is markdown or raw, so it would run nothing. Point it at the "
    "code cells it means.",
    _yaml("""
        # cell 5 is a markdown heading, cell 6 the code
        steps:
          split: {cells: 5}
    """),
    _yaml("""
        # cell 5 is a markdown heading, cell 6 the code
        steps:
          split: {cells: 6}
    """),
)
CELL_DRIFT = Code(
    "NBF208",
    "cell-drift",
    ERROR,
    "A step no longer holds the cells recorded in nbflow.lock.json.",
    "`nbflow lock` records the ids of the cells each step, setup, skip and the parameters cell "
    "hold. A cell inserted, deleted or moved above shifts the numbers, so a step silently "
    "runs other code; this reports it on the change that caused it. Fix the numbers (or use "
    "`id:`), then run `nbflow lock` again. An unreadable lock, or one for another notebook, "
    "is reported too.",
    _yaml("""
        # a cell was inserted above cell 7; the lock says train is `cell-7`
        steps:
          train: {cells: 7}
    """),
    _yaml("""
        # fixed, then `nbflow lock` rerun
        steps:
          train: {cells: 8}
    """),
)

# -- NBF3xx: steps --------------------------------------------------------------------------------

AFTER_UNKNOWN_STEP = Code(
    "NBF301",
    "after-unknown-step",
    ERROR,
    "`after` names a step that does not exist.",
    "`after` lists other steps of the same manifest by name. The hint names the closest one.",
    _yaml("""
        steps:
          train: {cells: 7}
          evaluate: {cells: 8, after: [trian]}
    """),
    _yaml("""
        steps:
          train: {cells: 7}
          evaluate: {cells: 8, after: [train]}
    """),
)
CYCLE = Code(
    "NBF302",
    "cycle",
    ERROR,
    "Steps wait for each other in a cycle.",
    "A pipeline is a DAG: no step can run after itself, even through other steps. The cycle "
    "comes from `after` alone, or from `after` pointing against the data flow (a step reading "
    "a variable from a later step's cells). Remove an `after`, or move cells so that each step "
    "reads only from steps before it.",
    _yaml("""
        steps:
          train: {cells: 7, after: [evaluate]}
          evaluate: {cells: 8, after: [train]}
    """),
    _yaml("""
        steps:
          train: {cells: 7}
          evaluate: {cells: 8, after: [train]}
    """),
)
AFTER_SELF = Code(
    "NBF303",
    "after-self",
    ERROR,
    "A step lists itself in `after`.",
    "A step cannot wait for itself to finish. Remove its own name from its `after`.",
    _yaml("""
        steps:
          train: {cells: 7, after: [train]}
    """),
    _yaml("""
        steps:
          train: {cells: 7, after: [split]}
    """),
)

# -- NBF4xx: parameters and metrics ---------------------------------------------------------------

PARAMETERS_CELL_MISSING = Code(
    "NBF401",
    "parameters-cell-missing",
    ERROR,
    "Parameters are declared but there is no single parameters cell.",
    "A run replaces the parameters cell with its values (papermill's convention), so "
    "declared parameters need exactly one: the code cell tagged `parameters`, or the one "
    "`parametersCell` names. No tagged cell, or several, is an error.",
    _yaml("""
        # no cell of the notebook is tagged `parameters`
        parameters:
          C: 1.0
    """),
    _yaml("""
        parametersCell: 3  # or tag cell 3 `parameters` in Jupyter
        parameters:
          C: 1.0
    """),
)
PARAMETER_NOT_ASSIGNED = Code(
    "NBF402",
    "parameter-not-assigned",
    ERROR,
    "A declared parameter is not assigned in the parameters cell.",
    "The notebook must run top to bottom on its own, so every parameter has its default "
    "assigned in the parameters cell.",
    _python("""
        # nbflow.yaml declares C and gamma; the parameters cell:
        C = 1.0
    """),
    _python("""
        # nbflow.yaml declares C and gamma; the parameters cell:
        C = 1.0
        gamma = 0.001
    """),
)
PARAMETER_NOT_LITERAL = Code(
    "NBF403",
    "parameter-not-literal",
    ERROR,
    "The parameters cell does more than assign literals.",
    "A run replaces the parameters cell with its values, so anything else in it would be "
    "lost: only `name = literal` lines (numbers, strings, booleans, None, lists, dicts, "
    "tuples) and comments belong there. Move computed values to setup or a step.",
    _python("""
        # the parameters cell
        C = 1.0
        gamma = 1 / n_features
        print(C)
    """),
    _python("""
        # the parameters cell
        C = 1.0
        gamma = 0.001
    """),
)
PARAMETER_TYPE_MISMATCH = Code(
    "NBF404",
    "parameter-type-mismatch",
    ERROR,
    "The parameters cell assigns a value of another type than declared.",
    "The declared type (or the type of the manifest's default) is what KFP and Katib pass; "
    "the notebook's value must fit it. An int fits a float.",
    _python("""
        # nbflow.yaml:  C: {type: float}
        C = "1.0"
    """),
    _python("""
        # nbflow.yaml:  C: {type: float}
        C = 1.0
    """),
)
PARAMETER_NOT_DECLARED = Code(
    "NBF405",
    "parameter-not-declared",
    EITHER,
    "The parameters cell and `parameters` disagree.",
    "An error when the parameters cell assigns a name that `parameters` does not declare: a "
    "run would replace the cell and lose it. A warning when `parametersCell` is set but no "
    "parameters are declared.",
    _yaml("""
        # the parameters cell: C = 1.0, kernel = "rbf"
        parameters:
          C: 1.0
    """),
    _yaml("""
        # the parameters cell: C = 1.0, kernel = "rbf"
        parameters:
          C: 1.0
          kernel: rbf
    """),
)
PARAMETER_UNUSED = Code(
    "NBF406",
    "parameter-unused",
    WARNING,
    "A declared parameter is read by no step.",
    "No step's cells (nor setup, nor a function they call) read the parameter, so changing it "
    "changes nothing. Use it, or remove it from `parameters` and the parameters cell.",
    _python("""
        # nbflow.yaml declares C and epochs; no cell reads `epochs`
        model = SVC(C=C).fit(X_train, y_train)
    """),
    _python("""
        # nbflow.yaml declares C only
        model = SVC(C=C).fit(X_train, y_train)
    """),
)
PARAMETERS_CELL_SYNTAX = Code(
    "NBF407",
    "parameters-cell-syntax",
    ERROR,
    "The parameters cell is not plain Python.",
    "The parameters cell is read without running it, as plain Python: IPython magics and "
    "syntax errors are not allowed there.",
    _python("""
        # the parameters cell
        %config InlineBackend.figure_format = 'retina'
        C = 1.0
    """),
    _python("""
        # the parameters cell (the %config line moved to a setup cell)
        C = 1.0
    """),
)
METRIC_NOT_ASSIGNED = Code(
    "NBF408",
    "metric-not-assigned",
    ERROR,
    "A declared metric is assigned by no step.",
    "A metric is a variable the run reports: some step's cell must assign it. It is missing, "
    "misspelt, or assigned only in a skipped cell or setup.",
    _python("""
        # nbflow.yaml:  metrics: {accuracy: maximize}
        acc = model.score(X_test, y_test)
    """),
    _python("""
        # nbflow.yaml:  metrics: {accuracy: maximize}
        accuracy = model.score(X_test, y_test)
    """),
)
PARAMETER_DEFAULT_TYPE = Code(
    "NBF409",
    "parameter-default-type",
    ERROR,
    "A parameter has neither default nor type, or its default does not fit its type.",
    "A parameter's type comes from `type`, else from its `default`. With neither, nbflow "
    "cannot type it; with both, the default must be of that type.",
    _yaml("""
        parameters:
          C: {type: float, default: "high"}
          kernel: {description: the SVM kernel}
    """),
    _yaml("""
        parameters:
          C: {type: float, default: 1.0}
          kernel: {type: str, description: the SVM kernel}
    """),
)

# -- NBF5xx: tuning -------------------------------------------------------------------------------

OBJECTIVE_NOT_METRIC = Code(
    "NBF501",
    "objective-not-metric",
    ERROR,
    "The tuning objective, or an additional metric, is not a declared metric.",
    "`tuning.objective` and `tuning.additionalMetrics` name entries of `metrics`, whose goal "
    "gives the direction of the search.",
    _yaml("""
        metrics: {accuracy: maximize}
        tuning:
          objective: acc
    """),
    _yaml("""
        metrics: {accuracy: maximize}
        tuning:
          objective: accuracy
    """),
)
SEARCH_NOT_PARAMETER = Code(
    "NBF502",
    "search-not-parameter",
    ERROR,
    "A searched name is not a declared parameter.",
    "`tuning.search` has one entry per parameter to search; each must be declared under "
    "`parameters` so that a trial can pass it.",
    _yaml("""
        parameters: {C: 1.0}
        tuning:
          search:
            c: {min: 0.1, max: 10}
    """),
    _yaml("""
        parameters: {C: 1.0}
        tuning:
          search:
            C: {min: 0.1, max: 10}
    """),
)
SEARCH_RANGE_ORDER = Code(
    "NBF503",
    "search-range-order",
    ERROR,
    "A numeric search range is empty or impossible.",
    "`min` must not be above `max`, a `step` must be positive, and a log scale needs `min` "
    "above 0 (the log of 0 is undefined).",
    _yaml("""
        search:
          C: {min: 0, max: 100, log: true}
          gamma: {min: 0.1, max: 0.001}
    """),
    _yaml("""
        search:
          C: {min: 0.01, max: 100, log: true}
          gamma: {min: 0.001, max: 0.1}
    """),
)
SEARCH_TYPE = Code(
    "NBF504",
    "search-type",
    ERROR,
    "A search space does not fit its parameter's type or mixes forms.",
    "A search space is either `values` (a list) or `min`/`max` (with optional `step`, `log`, "
    "`distribution`), not both. `min`/`max` are for int and float parameters only (bounds of "
    "an int parameter are integers); `values` must fit the parameter's type and not repeat.",
    _yaml("""
        parameters: {kernel: rbf, epochs: 10}
        tuning:
          search:
            kernel: {min: 0, max: 2}
            epochs: {min: 5, max: 20.5}
    """),
    _yaml("""
        parameters: {kernel: rbf, epochs: 10}
        tuning:
          search:
            kernel: [rbf, linear, poly]
            epochs: {min: 5, max: 20}
    """),
)
ALGORITHM_SETTINGS = Code(
    "NBF505",
    "algorithm-settings",
    ERROR,
    "The algorithm's settings or search space don't suit it.",
    "Katib checks an algorithm's settings only once its suggestion service starts, after the "
    "Experiment was accepted, so nbflow checks them first: unknown settings, settings of the "
    "wrong type, required settings (hyperband's `r_l` and `resource_name`, which must be a "
    "searched parameter), grid search over a float without `step`, cmaes with fewer than two "
    "numeric parameters.",
    _yaml("""
        tuning:
          algorithm: grid
          search:
            C: {min: 0.1, max: 1.0}
    """),
    _yaml("""
        tuning:
          algorithm: grid
          search:
            C: {min: 0.1, max: 1.0, step: 0.1}
    """),
)
TRIAL_COUNTS = Code(
    "NBF506",
    "trial-counts",
    ERROR,
    "Trial counts contradict each other.",
    "`parallelTrials` and `maxFailedTrials` can't exceed `maxTrials`, the number of trials in all.",
    _yaml("""
        tuning:
          maxTrials: 4
          parallelTrials: 8
    """),
    _yaml("""
        tuning:
          maxTrials: 16
          parallelTrials: 8
    """),
)
EXPERIMENT_NAME = Code(
    "NBF507",
    "experiment-name",
    ERROR,
    "The pipeline name is too long for its Katib Experiment.",
    "The Experiment is named `<pipeline>-<8-character hash>` and Katib allows 40 characters, "
    "so a pipeline with `tuning` has a name of at most 31 characters.",
    _yaml("""
        name: customer-churn-gradient-boosting-model
        tuning: {objective: auc, maxTrials: 20, search: {lr: {min: 0.01, max: 0.3}}}
    """),
    _yaml("""
        name: churn-gbm
        tuning: {objective: auc, maxTrials: 20, search: {lr: {min: 0.01, max: 0.3}}}
    """),
)
GRID_TOO_SMALL = Code(
    "NBF508",
    "grid-too-small",
    ERROR,
    "A grid search has fewer combinations than `maxTrials`.",
    "Katib's grid algorithm requires `maxTrials` to be at most the number of points in the "
    "grid (the product of each parameter's count of values); the hint gives that number.",
    _yaml("""
        tuning:
          algorithm: grid
          maxTrials: 10
          search:
            kernel: [rbf, linear]
            C: [0.1, 1, 10]
    """),
    _yaml("""
        tuning:
          algorithm: grid
          maxTrials: 6
          search:
            kernel: [rbf, linear]
            C: [0.1, 1, 10]
    """),
)
SEARCH_EMPTY = Code(
    "NBF509",
    "search-empty",
    ERROR,
    "A search space lists no values.",
    "`values: []` gives a trial nothing to choose. List the values, or remove the parameter "
    "from `search` to keep it at its default.",
    _yaml("""
        search:
          kernel: {values: []}
    """),
    _yaml("""
        search:
          kernel: {values: [rbf, linear]}
    """),
)
KATIB_REJECTS = Code(
    "NBF511",
    "katib-rejects",
    EITHER,
    "Katib would refuse the generated Experiment, or run it differently than asked.",
    "nbflow builds the Katib Experiment offline and checks it as Katib's webhook and "
    "suggestion services would. An error where Katib would refuse it: a setting only "
    "`nbflow tune` understands, `log: true` with a non-log `distribution`, a value that is "
    "not a finite number, a categorical value with characters Katib would pass unquoted to "
    "`sh -c`. A warning where Katib accepts it but searches differently (an algorithm that "
    "ignores the distribution).",
    _yaml("""
        search:
          C: {min: 0.01, max: 100, log: true, distribution: normal}
    """),
    _yaml("""
        search:
          C: {min: 0.01, max: 100, log: true}
    """),
)

# -- NBF6xx: resources, images, volumes, requirements ---------------------------------------------

BAD_QUANTITY = Code(
    "NBF601",
    "bad-quantity",
    ERROR,
    "A CPU or memory value is not a Kubernetes quantity, or a limit is below its request.",
    "CPU and memory are Kubernetes quantities: `500m` or `2` CPUs, `512Mi` or `4Gi` of "
    "memory (`4GB` and `4 Gi` are not quantities). A `cpuLimit` or `memoryLimit` must be at "
    "least the request.",
    _yaml("""
        resources:
          cpu: 2
          memory: 4GB
          cpuLimit: 1
    """),
    _yaml("""
        resources:
          cpu: 2
          memory: 4Gi
          cpuLimit: 4
    """),
)
BAD_GPU = Code(
    "NBF602",
    "bad-gpu",
    ERROR,
    "`gpu` is not a positive whole number, or `gpuType` is not a resource name.",
    "Kubernetes schedules whole GPUs: `gpu` is 1 or more (leave it out for none; `0.5` is not "
    "an integer at all, NBF102). `gpuType` "
    "is an extended resource name such as `nvidia.com/gpu` or `amd.com/gpu`.",
    _yaml("""
        resources:
          gpu: 0
          gpuType: NVIDIA A100
    """),
    _yaml("""
        resources:
          gpu: 1
          gpuType: nvidia.com/gpu
    """),
)
IMAGE_TAG = Code(
    "NBF603",
    "image-tag",
    EITHER,
    "An image reference is invalid, or not pinned.",
    "An error when the text is not an image reference at all. A warning when it has no tag "
    "or uses `:latest`: a rebuild of the same pipeline may then run different code. Pin a tag "
    "or, better, a digest.",
    _yaml("""
        image: python
        steps:
          train: {cells: 7, image: "ghcr.io/acme/trainer:latest"}
    """),
    _yaml("""
        image: python:3.11-slim
        steps:
          train: {cells: 7, image: "ghcr.io/acme/trainer@sha256:4f0c..."}
    """),
)
VOLUME = Code(
    "NBF604",
    "volume",
    ERROR,
    "A volume is declared or mounted inconsistently.",
    "A volume has exactly one source, `claim` (an existing PersistentVolumeClaim) or `size` "
    "(a claim created per run), and an absolute `mountPath`. Names and mount paths are "
    "unique, and a step's `volumes` lists declared volumes only.",
    _yaml("""
        volumes:
          - {name: data, mountPath: data, claim: shared, size: 10Gi}
        steps:
          train: {cells: 7, volumes: [dataset]}
    """),
    _yaml("""
        volumes:
          - {name: data, mountPath: /data, claim: shared}
        steps:
          train: {cells: 7, volumes: [data]}
    """),
)
TIMEOUT = Code(
    "NBF605",
    "timeout",
    ERROR,
    "A timeout is not a positive duration.",
    "A step's `timeout` is a number of seconds or a duration made of `s`, `m`, `h` and `d` "
    "parts: `90s`, `30m`, `2h`, `1h30m`.",
    _yaml("""
        steps:
          train: {cells: 7, timeout: 2 hours}
    """),
    _yaml("""
        steps:
          train: {cells: 7, timeout: 2h}
    """),
)
ENV_NAME = Code(
    "NBF606",
    "env-name",
    ERROR,
    "An environment variable name is not valid.",
    "Kubernetes accepts environment variable names made of letters, digits, `_`, `-` and "
    "`.`, not starting with a digit; no spaces or `=`.",
    _yaml("""
        env:
          OMP NUM THREADS: 1
    """),
    _yaml("""
        env:
          OMP_NUM_THREADS: 1
    """),
)
BAD_LABEL = Code(
    "NBF607",
    "bad-label",
    ERROR,
    "A `nodeSelector` key or value is not a Kubernetes label.",
    "`nodeSelector` matches node labels, and Kubernetes refuses a pod whose selector is not "
    "label syntax: a key is an optional DNS subdomain prefix and `/`, then a name of at most "
    "63 letters, digits, `-`, `_` and `.` that starts and ends with a letter or digit; a "
    "value is empty or such a name.",
    _yaml("""
        steps:
          train:
            cells: 7
            nodeSelector:
              gpu type: NVIDIA A100
    """),
    _yaml("""
        steps:
          train:
            cells: 7
            nodeSelector:
              nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB
    """),
)
REQUIREMENT_INVALID = Code(
    "NBF608",
    "requirement-invalid",
    ERROR,
    "A requirement is not one pip can read.",
    "Requirements, listed or in a requirements file, are PEP 508 requirements as pip reads "
    "them: `name`, `name==1.2`, `name[extra]>=1,<2`, `name @ https://...`. A step would "
    "otherwise fail at pip install time, on the cluster.",
    _yaml("""
        requirements:
          - scikit-learn => 1.4
          - pandas 2.2
    """),
    _yaml("""
        requirements:
          - scikit-learn>=1.4
          - pandas==2.2
    """),
)

# -- NBF7xx: data flow ----------------------------------------------------------------------------

UNDEFINED_NAME = Code(
    "NBF701",
    "undefined-name",
    ERROR,
    "A step reads a name that no earlier cell of the pipeline defines.",
    "nbflow reads the notebook as if it ran top to bottom through the pipeline's cells: the "
    "name is defined nowhere, only in a later cell (the notebook works only out of order), "
    "only in a cell in no step or skipped, or only in the parameters cell without being "
    "declared. Define it earlier, or add its cell to a step or setup.",
    _python("""
        # cell 4 (step split)
        X_train, X_test = train_test_split(X)
        # cell 6 (step load)
        X = load_digits().data
    """),
    _python("""
        # cell 4 (step load)
        X = load_digits().data
        # cell 6 (step split)
        X_train, X_test = train_test_split(X)
    """),
)
AMBIGUOUS_DEFINITION = Code(
    "NBF702",
    "ambiguous-definition",
    ERROR,
    "A step would get a variable from one of several steps, and which one is unclear.",
    "Two steps with no order between them both assign a variable a later step reads; or a "
    "step reads a variable from two different steps; or another step assigns a variable "
    "between a step's own assignment and its read. The notebook (top to bottom) and the "
    "pipeline (in parallel) would then disagree. Rename one of them, or order the steps with "
    "`after`.",
    _python("""
        # cell 5 (step clean-a)
        df = raw_a.dropna()
        # cell 6 (step clean-b)
        df = raw_b.dropna()
        # cell 7 (step report) reads df: clean-a's or clean-b's?
        summary = df.describe()
    """),
    _python("""
        # cell 5 (step clean-a)
        df_a = raw_a.dropna()
        # cell 6 (step clean-b)
        df_b = raw_b.dropna()
        # cell 7 (step report)
        summary = pd.concat([df_a, df_b]).describe()
    """),
)
PARAMETER_REASSIGNED = Code(
    "NBF703",
    "parameter-reassigned",
    ERROR,
    "A step or setup cell assigns a parameter.",
    "A run injects each parameter's value into every step that reads it; a cell that changes "
    "it would make steps see different values than the run's. Assign the changed value to a "
    "new name.",
    _python("""
        # cell 7 (step train); `epochs` is a parameter
        epochs = epochs * 2
        model.fit(X, y, epochs=epochs)
    """),
    _python("""
        # cell 7 (step train); `epochs` is a parameter
        epochs_used = epochs * 2
        model.fit(X, y, epochs=epochs_used)
    """),
)
STAR_IMPORT = Code(
    "NBF704",
    "star-import",
    WARNING,
    "A star import or `%run` hides which names a cell defines.",
    "After `from module import *` or `%run script.py`, nbflow cannot know which names exist, "
    "so reads after it are not checked and a step may miss a value it needs. Import the "
    "names you use.",
    _python("""
        from sklearn.metrics import *
        print(accuracy_score(y_test, y_pred))
    """),
    _python("""
        from sklearn.metrics import accuracy_score
        print(accuracy_score(y_test, y_pred))
    """),
)
UNMOVABLE_VALUE = Code(
    "NBF705",
    "unmovable-value",
    WARNING,
    "A step passes a value that can't be saved and loaded in another step.",
    "Variables that cross a step boundary are serialised. Open files, generators, sockets, "
    "database connections, locks and threads can't be; the next step would fail. Pass the "
    "data instead (read the file, `list()` the generator), or create the object in the step "
    "that uses it.",
    _python("""
        # cell 4 (step load)
        f = open("data.csv")
        # cell 6 (step parse)
        rows = f.readlines()
    """),
    _python("""
        # cell 4 (step load)
        with open("data.csv") as f:
            rows = f.readlines()
        # cell 6 (step parse) reads rows
    """),
)
CELL_SYNTAX = Code(
    "NBF706",
    "cell-syntax",
    ERROR,
    "A pipeline cell is not Python, even read as IPython.",
    "A cell that runs in the pipeline must be valid Python (IPython magics and `!` shell "
    "lines are understood). A syntax error would fail the step; fix the cell so that it runs "
    "in Jupyter.",
    _python("""
        # cell 7 (step train)
        model = SVC(C=C
    """),
    _python("""
        # cell 7 (step train)
        model = SVC(C=C)
    """),
)
SETUP_READS_STEP_VALUE = Code(
    "NBF707",
    "setup-reads-step-value",
    ERROR,
    "A setup cell reads a value that a step defines.",
    "Setup cells run at the start of every step, before any step's values exist, so setup "
    "can't read a variable a step computes. Move that code into a step, or define the value "
    "in setup.",
    _python("""
        # cell 2 (setup)
        n_classes = len(set(y))
        # cell 4 (step load)
        X, y = load_digits(return_X_y=True)
    """),
    _python("""
        # cell 2 (setup)
        N_CLASSES = 10
        # cell 4 (step load)
        X, y = load_digits(return_X_y=True)
    """),
)


def _collect() -> Mapping[str, Code]:
    found = sorted((v for v in globals().values() if isinstance(v, Code)), key=lambda c: c.id)
    return MappingProxyType({c.id: c for c in found})


REGISTRY: Mapping[str, Code] = _collect()
"""Every code by id, in id order."""


def lookup(text: str) -> Code | None:
    """The code named by `text`: an id (`NBF302`, `nbf302`, `302`) or a name (`cycle`)."""
    key = text.strip()
    if key.isdigit():
        key = f"NBF{key.zfill(3)}"
    found = REGISTRY.get(key.upper())
    if found is not None:
        return found
    return next((c for c in REGISTRY.values() if c.name == key.lower()), None)


def closest(text: str) -> Code | None:
    """The code whose id or name is nearest to `text`, for a "did you mean" hint."""
    key = text.strip()
    names = {c.name: c for c in REGISTRY.values()}
    match = difflib.get_close_matches(key.upper(), list(REGISTRY), n=1, cutoff=0.6)
    if match:
        return REGISTRY[match[0]]
    match = difflib.get_close_matches(key.lower(), list(names), n=1, cutoff=0.6)
    return names[match[0]] if match else None
