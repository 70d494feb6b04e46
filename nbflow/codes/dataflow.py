"""Diagnostic codes NBF7xx: data flow between steps."""

from __future__ import annotations

from nbflow.codes.model import ERROR, WARNING, Code, python

UNDEFINED_NAME = Code(
    "NBF701",
    "undefined-name",
    ERROR,
    "A step reads a name that no earlier cell of the pipeline defines.",
    "nbflow reads the notebook as if it ran top to bottom through the pipeline's cells: the "
    "name is defined nowhere, only in a later cell (the notebook works only out of order), "
    "only in a cell in no step or skipped, or only in the parameters cell without being "
    "declared. Define it earlier, or add its cell to a step or setup.",
    python("""
        # cell 4 (step split)
        X_train, X_test = train_test_split(X)
        # cell 6 (step load)
        X = load_digits().data
    """),
    python("""
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
    python("""
        # cell 5 (step clean-a)
        df = raw_a.dropna()
        # cell 6 (step clean-b)
        df = raw_b.dropna()
        # cell 7 (step report) reads df: clean-a's or clean-b's?
        summary = df.describe()
    """),
    python("""
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
    python("""
        # cell 7 (step train); `epochs` is a parameter
        epochs = epochs * 2
        model.fit(X, y, epochs=epochs)
    """),
    python("""
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
    python("""
        from sklearn.metrics import *
        print(accuracy_score(y_test, y_pred))
    """),
    python("""
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
    python("""
        # cell 4 (step load)
        f = open("data.csv")
        # cell 6 (step parse)
        rows = f.readlines()
    """),
    python("""
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
    python("""
        # cell 7 (step train)
        model = SVC(C=C
    """),
    python("""
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
    python("""
        # cell 2 (setup)
        n_classes = len(set(y))
        # cell 4 (step load)
        X, y = load_digits(return_X_y=True)
    """),
    python("""
        # cell 2 (setup)
        N_CLASSES = 10
        # cell 4 (step load)
        X, y = load_digits(return_X_y=True)
    """),
)
