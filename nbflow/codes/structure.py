"""Diagnostic codes NBF2xx and NBF3xx: cells, and the steps' order."""

from __future__ import annotations

from nbflow.codes.model import EITHER, ERROR, WARNING, Code, yaml

BAD_CELL_RANGE = Code(
    "NBF201",
    "bad-cell-range",
    ERROR,
    "A cell reference is not a number, a range or an id.",
    "Cells are 1-based numbers counting every cell (markdown too), ranges `first-last` with "
    "first <= last, or `id:<cell id>`. `0`, `7-4` and `4..6` are not cells.",
    yaml("""
        steps:
          train: {cells: "7-4"}
          evaluate: {cells: "8..9"}
    """),
    yaml("""
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
    yaml("""
        # the notebook has 9 cells
        steps:
          evaluate: {cells: "8-10"}
    """),
    yaml("""
        # the notebook has 9 cells
        steps:
          evaluate: {cells: "8-9"}
    """),
)
CELL_ID_NOT_FOUND = Code(
    "NBF203",
    "cell-id-not-found",
    ERROR,
    "No cell has the id given with `id:`, or the tag given with `tag:`.",
    "`id:<cell id>` names a cell by its nbformat id (nbformat 4.5 and later), which survives "
    "inserting cells above it. The id is not in the notebook, or the notebook is older than "
    "4.5 and has no ids (`nbflow lock` adds them, as Jupyter does). `nbflow cells` lists ids. "
    "`tag:<cell tag>` takes every cell with that tag: no cell has it.",
    yaml("""
        steps:
          train: {cells: "id:trian-model"}
    """),
    yaml("""
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
    yaml("""
        setup: 2
        steps:
          load: {cells: "2-4"}
    """),
    yaml("""
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
    "list it under `skip` to say it is deliberately left out. Several such cells are one "
    "diagnostic that counts them and lists their ranges.",
    yaml("""
        # cell 9 plots the results
        steps:
          evaluate: {cells: 8}
    """),
    yaml("""
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
    yaml("""
        # cell 1 is the title (markdown), cell 2 the imports
        setup: 1
    """),
    yaml("""
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
    yaml("""
        # cell 5 is a markdown heading, cell 6 the code
        steps:
          split: {cells: 5}
    """),
    yaml("""
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
    "`nbflow lock` records the ids (and source hashes) of the cells each step, setup, skip and "
    "the parameters cell hold. A cell inserted, deleted or moved above shifts the numbers, so "
    "a step silently runs other code; this reports it on the change that caused it, once per "
    "part, with the numbers that take its cells again (the cell rules it would set off are "
    "left out). `nbflow lock --fix` writes them into the manifest, comments kept, and locks "
    "again; or name cells with `id:` or `tag:`, which do not drift. An unreadable lock, or one "
    "for another notebook, is reported too.",
    yaml("""
        # a cell was inserted above cell 7; the lock says train is `cell-7`
        steps:
          train: {cells: 7}
    """),
    yaml("""
        # after `nbflow lock --fix`
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
    yaml("""
        steps:
          train: {cells: 7}
          evaluate: {cells: 8, after: [trian]}
    """),
    yaml("""
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
    "a variable from a later step's cells). It is reported at an `after` entry that closes the "
    "cycle, when there is one: the edge you wrote and can remove. Remove an `after`, or move "
    "cells so that each step reads only from steps before it.",
    yaml("""
        steps:
          train: {cells: 7, after: [evaluate]}
          evaluate: {cells: 8, after: [train]}
    """),
    yaml("""
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
    yaml("""
        steps:
          train: {cells: 7, after: [train]}
    """),
    yaml("""
        steps:
          train: {cells: 7, after: [split]}
    """),
)
