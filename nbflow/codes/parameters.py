"""Diagnostic codes NBF4xx: parameters and metrics."""

from __future__ import annotations

from nbflow.codes.model import EITHER, ERROR, WARNING, Code, python, yaml

PARAMETERS_CELL_MISSING = Code(
    "NBF401",
    "parameters-cell-missing",
    ERROR,
    "Parameters are declared but there is no single parameters cell.",
    "A run replaces the parameters cell with its values (papermill's convention), so "
    "declared parameters need exactly one: the code cell tagged `parameters`, or the one "
    "`parametersCell` names. No tagged cell, or several, is an error.",
    yaml("""
        # no cell of the notebook is tagged `parameters`
        parameters:
          C: 1.0
    """),
    yaml("""
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
    python("""
        # nbflow.yaml declares C and gamma; the parameters cell:
        C = 1.0
    """),
    python("""
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
    python("""
        # the parameters cell
        C = 1.0
        gamma = 1 / n_features
        print(C)
    """),
    python("""
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
    python("""
        # nbflow.yaml:  C: {type: float}
        C = "1.0"
    """),
    python("""
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
    yaml("""
        # the parameters cell: C = 1.0, kernel = "rbf"
        parameters:
          C: 1.0
    """),
    yaml("""
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
    python("""
        # nbflow.yaml declares C and epochs; no cell reads `epochs`
        model = SVC(C=C).fit(X_train, y_train)
    """),
    python("""
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
    python("""
        # the parameters cell
        %config InlineBackend.figure_format = 'retina'
        C = 1.0
    """),
    python("""
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
    python("""
        # nbflow.yaml:  metrics: {accuracy: maximize}
        acc = model.score(X_test, y_test)
    """),
    python("""
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
    yaml("""
        parameters:
          C: {type: float, default: "high"}
          kernel: {description: the SVM kernel}
    """),
    yaml("""
        parameters:
          C: {type: float, default: 1.0}
          kernel: {type: str, description: the SVM kernel}
    """),
)
