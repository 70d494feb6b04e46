"""Diagnostic codes NBF5xx: tuning (the search space, Katib)."""

from __future__ import annotations

from nbflow.codes.model import EITHER, ERROR, Code, yaml

OBJECTIVE_NOT_METRIC = Code(
    "NBF501",
    "objective-not-metric",
    ERROR,
    "The tuning objective, or an additional metric, is not a declared metric.",
    "`tuning.objective` and `tuning.additionalMetrics` name entries of `metrics`, whose goal "
    "gives the direction of the search.",
    yaml("""
        metrics: {accuracy: maximize}
        tuning:
          objective: acc
    """),
    yaml("""
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
    yaml("""
        parameters: {C: 1.0}
        tuning:
          search:
            c: {min: 0.1, max: 10}
    """),
    yaml("""
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
    yaml("""
        search:
          C: {min: 0, max: 100, log: true}
          gamma: {min: 0.1, max: 0.001}
    """),
    yaml("""
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
    yaml("""
        parameters: {kernel: rbf, epochs: 10}
        tuning:
          search:
            kernel: {min: 0, max: 2}
            epochs: {min: 5, max: 20.5}
    """),
    yaml("""
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
    yaml("""
        tuning:
          algorithm: grid
          search:
            C: {min: 0.1, max: 1.0}
    """),
    yaml("""
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
    yaml("""
        tuning:
          maxTrials: 4
          parallelTrials: 8
    """),
    yaml("""
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
    yaml("""
        name: customer-churn-gradient-boosting-model
        tuning: {objective: auc, maxTrials: 20, search: {lr: {min: 0.01, max: 0.3}}}
    """),
    yaml("""
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
    yaml("""
        tuning:
          algorithm: grid
          maxTrials: 10
          search:
            kernel: [rbf, linear]
            C: [0.1, 1, 10]
    """),
    yaml("""
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
    yaml("""
        search:
          kernel: {values: []}
    """),
    yaml("""
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
    yaml("""
        search:
          C: {min: 0.01, max: 100, log: true, distribution: normal}
    """),
    yaml("""
        search:
          C: {min: 0.01, max: 100, log: true}
    """),
)
GRID_TOO_LARGE = Code(
    "NBF512",
    "grid-too-large",
    ERROR,
    "A grid search has more than 1,000,000 points.",
    "A grid search runs every combination of its parameters' values: each is a trial, and "
    "`nbflow tune` lists them all. More than 10^6 is no search anyone can run; use larger "
    "steps or fewer values, or a sampling algorithm (`random`, `tpe`).",
    yaml("""
        tuning:
          algorithm: grid
          maxTrials: 20
          search:
            C: {min: 0, max: 1000, step: 0.0001}
    """),
    yaml("""
        tuning:
          algorithm: grid
          maxTrials: 20
          search:
            C: {min: 0, max: 1000, step: 50}
    """),
)
