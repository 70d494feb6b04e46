"""The registry of diagnostic codes: every problem nbflow reports, one constant each.

Call sites name a code by its constant (``error(codes.CYCLE, ...)``), never by a bare string.
Each code has a stable id (``NBF302``), a short name (``cycle``), the severities it is reported
with, a one-line summary and an explanation with a wrong and a right example. ``nbflow explain
NBF302`` prints it, ``docs/diagnostics.md`` is generated from it and SARIF rules carry it.

Ids are stable: never reuse or renumber one (``RETIRED`` lists those withdrawn). NBF0xx
loading, NBF1xx schema, NBF2xx cells, NBF3xx steps, NBF4xx parameters and metrics, NBF5xx
tuning, NBF6xx resources, images, volumes and requirements, NBF7xx data flow.

The codes are defined by stage in the modules of this package and registered here, one import
each; this package imports nothing else of nbflow, so that every stage can use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from nbflow.codes.dataflow import (
    AMBIGUOUS_DEFINITION,
    CELL_SYNTAX,
    PACKAGE_INSTALL_IN_CELL,
    PARAMETER_REASSIGNED,
    RELATIVE_PATH,
    SETUP_READS_STEP_VALUE,
    STAR_IMPORT,
    UNDEFINED_NAME,
    UNMOVABLE_VALUE,
)
from nbflow.codes.load import (
    API_VERSION,
    DUPLICATE_KEY,
    INPUT_TOO_LARGE,
    MANIFEST_NOT_A_MAPPING,
    MANIFEST_NOT_FOUND,
    NESTED_TOO_DEEP,
    NOTEBOOK_INVALID,
    NOTEBOOK_NOT_FOUND,
    NOTEBOOK_VERSION,
    NUMBER_OUT_OF_RANGE,
    REQUIREMENTS_FILE,
    YAML_SYNTAX,
)
from nbflow.codes.model import DOCS_URL, REPOSITORY_URL, Code, Example, Severity
from nbflow.codes.parameters import (
    METRIC_NOT_ASSIGNED,
    PARAMETER_DEFAULT_TYPE,
    PARAMETER_NOT_ASSIGNED,
    PARAMETER_NOT_DECLARED,
    PARAMETER_NOT_LITERAL,
    PARAMETER_TYPE_MISMATCH,
    PARAMETER_UNUSED,
    PARAMETERS_CELL_MISSING,
    PARAMETERS_CELL_SYNTAX,
)
from nbflow.codes.resources import (
    BAD_GPU,
    BAD_LABEL,
    BAD_QUANTITY,
    ENV_NAME,
    IMAGE_TAG,
    REQUIREMENT_INVALID,
    TIMEOUT,
    VOLUME,
)
from nbflow.codes.schema import (
    INVALID_NAME,
    INVALID_VALUE,
    MISSING_KEY,
    UNKNOWN_KEY,
    WRONG_TYPE,
)
from nbflow.codes.structure import (
    AFTER_SELF,
    AFTER_UNKNOWN_STEP,
    BAD_CELL_RANGE,
    CELL_DRIFT,
    CELL_ID_NOT_FOUND,
    CELL_OUT_OF_RANGE,
    CELL_OWNED_TWICE,
    CYCLE,
    EMPTY_STEP,
    FORGOTTEN_CELL,
    NOT_A_CODE_CELL,
)
from nbflow.codes.tuning import (
    ALGORITHM_SETTINGS,
    EXPERIMENT_NAME,
    GRID_TOO_LARGE,
    GRID_TOO_SMALL,
    KATIB_REJECTS,
    OBJECTIVE_NOT_METRIC,
    SEARCH_EMPTY,
    SEARCH_NOT_PARAMETER,
    SEARCH_RANGE_ORDER,
    SEARCH_TYPE,
    TRIAL_COUNTS,
)

# Withdrawn ids, kept so that no new code takes them: NBF510 (goal-direction) was catalogued
# but never checked: a metric's goal is the direction itself, there is nothing to contradict.
RETIRED = frozenset({"NBF510"})


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


__all__ = [
    "AFTER_SELF",
    "AFTER_UNKNOWN_STEP",
    "ALGORITHM_SETTINGS",
    "AMBIGUOUS_DEFINITION",
    "API_VERSION",
    "BAD_CELL_RANGE",
    "BAD_GPU",
    "BAD_LABEL",
    "BAD_QUANTITY",
    "CELL_DRIFT",
    "CELL_ID_NOT_FOUND",
    "CELL_OUT_OF_RANGE",
    "CELL_OWNED_TWICE",
    "CELL_SYNTAX",
    "CYCLE",
    "DOCS_URL",
    "DUPLICATE_KEY",
    "EMPTY_STEP",
    "ENV_NAME",
    "EXPERIMENT_NAME",
    "FORGOTTEN_CELL",
    "GRID_TOO_LARGE",
    "GRID_TOO_SMALL",
    "IMAGE_TAG",
    "INPUT_TOO_LARGE",
    "INVALID_NAME",
    "INVALID_VALUE",
    "KATIB_REJECTS",
    "MANIFEST_NOT_A_MAPPING",
    "MANIFEST_NOT_FOUND",
    "METRIC_NOT_ASSIGNED",
    "MISSING_KEY",
    "NESTED_TOO_DEEP",
    "NOTEBOOK_INVALID",
    "NOTEBOOK_NOT_FOUND",
    "NOTEBOOK_VERSION",
    "NOT_A_CODE_CELL",
    "NUMBER_OUT_OF_RANGE",
    "OBJECTIVE_NOT_METRIC",
    "PACKAGE_INSTALL_IN_CELL",
    "PARAMETERS_CELL_MISSING",
    "PARAMETERS_CELL_SYNTAX",
    "PARAMETER_DEFAULT_TYPE",
    "PARAMETER_NOT_ASSIGNED",
    "PARAMETER_NOT_DECLARED",
    "PARAMETER_NOT_LITERAL",
    "PARAMETER_REASSIGNED",
    "PARAMETER_TYPE_MISMATCH",
    "PARAMETER_UNUSED",
    "REGISTRY",
    "RELATIVE_PATH",
    "REPOSITORY_URL",
    "REQUIREMENTS_FILE",
    "REQUIREMENT_INVALID",
    "RETIRED",
    "SEARCH_EMPTY",
    "SEARCH_NOT_PARAMETER",
    "SEARCH_RANGE_ORDER",
    "SEARCH_TYPE",
    "SETUP_READS_STEP_VALUE",
    "STAR_IMPORT",
    "TIMEOUT",
    "TRIAL_COUNTS",
    "UNDEFINED_NAME",
    "UNKNOWN_KEY",
    "UNMOVABLE_VALUE",
    "VOLUME",
    "WRONG_TYPE",
    "YAML_SYNTAX",
    "Code",
    "Example",
    "Severity",
    "closest",
    "lookup",
]
