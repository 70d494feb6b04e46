"""Diagnostic codes NBF7xx: data flow between steps."""

from __future__ import annotations

from nbflow.codes.model import EITHER, ERROR, WARNING, Code, python

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
    EITHER,
    "A step would get a variable from one of several steps, and which one is unclear.",
    "A warning when two steps with no order between them both assign a variable a later step "
    "reads: the step gets the value the notebook run top to bottom gives it (the later "
    "assignment), and the two steps stay parallel; rename one if the other value was meant. "
    "An error when a step reads a variable from two different steps, or another step assigns "
    "a variable between a step's own assignment and its read: the notebook and the pipeline "
    "would disagree. Rename one of them, or move the cells.",
    python("""
        # cell 5 (step clean-a)
        df = raw_a.dropna()
        # cell 6 (step clean-b)
        df = raw_b.dropna()
        # cell 7 (step report) reads df: clean-b's, as the notebook gives it (a warning)
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
PACKAGE_INSTALL_IN_CELL = Code(
    "NBF708",
    "package-install-in-cell",
    WARNING,
    "A pipeline cell installs packages (`!pip install`, `%pip install`, `!conda install`).",
    "In a notebook such a line installs into the kernel's environment; in a local run it "
    "would install into your own Python, and on a cluster into a pod that is gone after the "
    "step. Steps skip these lines (their log says so): a step's packages come from its image "
    "and the manifest's `requirements:`.",
    python("""
        # cell 3 (step train)
        !pip install xgboost
        import xgboost as xgb
    """),
    python("""
        # nbflow.yaml
        #   requirements: [xgboost]
        # cell 3 (step train)
        import xgboost as xgb
    """),
)
RELATIVE_PATH = Code(
    "NBF709",
    "relative-path",
    WARNING,
    "A step reads or writes a file by a path relative to the notebook's folder.",
    "`nbflow run` runs each step in the notebook's folder, as Jupyter does, and a file a step "
    "reads there is part of its cache key and of the pipeline version. On a cluster the step "
    "runs in its image's working directory, where the file is not, and a file a step writes "
    "stays in its pod. Put data on a volume (`volumes:`) and use its absolute path, put it in "
    "the image, or read it from a URL; pass values between steps as variables.",
    python("""
        # cell 4 (step load)
        df = pd.read_csv("data.csv")
    """),
    python("""
        # nbflow.yaml
        #   volumes: [{name: data, mountPath: /data, claim: datasets}]
        #   steps: {load: {cells: 4, volumes: [data]}}
        # cell 4 (step load)
        df = pd.read_csv("/data/data.csv")
    """),
)
