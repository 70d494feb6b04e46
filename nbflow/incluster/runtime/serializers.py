"""The code that runs inside one pipeline step: load inputs, run cells, save outputs.

A generated pipeline carries this file once, packed into its first task (``nbflow-runtime``),
which writes it to an artifact; every step reads that artifact and exec's it, so that a step
image needs no nbflow install (docs/runtime.md). Hence: standard library only at import time;
numpy, pandas, pyarrow, joblib, torch, xgboost, lightgbm, keras, cloudpickle and IPython are
imported inside the functions that need them, and each of them is optional. No relative or
``nbflow`` imports, no ``__file__``, no dataclasses (they look the class's module up in
``sys.modules``, which an exec'd namespace is not in).

The generator calls :func:`main` exactly once per step.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import errno
import html
import importlib.util
import io
import json
import linecache
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Iterator
from typing import Any, Protocol

META_FILE = "nbflow.json"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# Stream text kept per cell in the report; the step log still gets all of it.
MAX_REPORT_STREAM_CHARS = 1_000_000
_CELL_FILE = re.compile(r"^<cell (\d+)>$")
_TIMED_FILES = ("<timed exec>", "<timed eval>")


class StepFailure(Exception):
    """A failure of the user's step: its message is the whole diagnostic."""


# --------------------------------------------------------------------------------------------
# Serializers: one KFP artifact per variable; the artifact path becomes a directory holding the
# data file and nbflow.json, which describes it. How to load it is not taken from those files
# (whoever can write to the artifact store could name pickle there, or swap the bytes), but
# from the pipeline's own record: the producing step puts the serializer and a digest of the
# files in its output artifact's metadata (RECORD_SERIALIZER, RECORD_DIGEST), which KFP keeps
# in ML Metadata apart from the bytes and hands the consuming step with its input artifact.
# See docs/security.md.
# --------------------------------------------------------------------------------------------

RECORD_SERIALIZER = "nbflow.serializer"
RECORD_DIGEST = "nbflow.sha256"


class Serializer(Protocol):
    name: str

    def matches(self, value: object) -> bool: ...

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None: ...

    def load(self, dirpath: str) -> object: ...


class Unsuitable(Exception):
    """A serializer matched a value but cannot store it faithfully: the next one is tried."""


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _short_type_name(value: object) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else _type_name(value)


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _options(dirpath: str) -> dict[str, Any]:
    with open(os.path.join(dirpath, META_FILE), encoding="utf-8") as f:
        options = json.load(f).get("options") or {}
    return options if isinstance(options, dict) else {}


class NumpySerializer:
    """Plain ndarrays (no object dtype) as .npy, written and read without pickling."""

    name = "numpy"
    file = "data.npy"

    def matches(self, value: Any) -> bool:
        np = sys.modules.get("numpy")
        # exact type: subclasses (masked arrays, matrices, memmaps) lose state in .npy
        return np is not None and type(value) is np.ndarray and not value.dtype.hasobject

    def save(self, value: Any, dirpath: str) -> dict[str, Any] | None:
        import numpy as np

        np.save(os.path.join(dirpath, self.file), value, allow_pickle=False)
        return None

    def load(self, dirpath: str) -> object:
        import numpy as np

        return np.load(os.path.join(dirpath, self.file), allow_pickle=False)


class ParquetSerializer:
    """pandas DataFrames and Series as parquet (pyarrow), when the frame survives the trip."""

    name = "parquet"
    file = "data.parquet"
    series_column = "__nbflow_series__"

    def matches(self, value: object) -> bool:
        pd = sys.modules.get("pandas")
        if pd is None or type(value) not in (pd.DataFrame, pd.Series):
            return False
        return _importable("pyarrow")

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        options: dict[str, Any] = {}
        if isinstance(value, pd.Series):
            if value.name is not None and not isinstance(value.name, str):
                raise Unsuitable("the series name is not a string")
            options["series_name"] = value.name
            frame = value.to_frame(name=self.series_column)
        else:
            frame = value
        _check_parquet_frame(frame)
        try:  # what DataFrame.to_parquet does, with a look at the arrow types in between
            table = pa.Table.from_pandas(frame)
        except Exception as exc:  # pyarrow raises many types for values it cannot represent
            raise Unsuitable(f"{type(exc).__name__}: {exc}") from exc
        # Object columns come back as pandas' string dtype; only text (or all-missing) ones can
        # be turned back into what they were: lists would come back as arrays, and so on.
        object_columns = [str(c) for c, dt in frame.dtypes.items() if _is_object(dt)]
        if frame.index.nlevels == 1 and _is_object(frame.index.dtype):
            index_fields = table.schema.pandas_metadata.get("index_columns", [])
            object_columns += [f for f in index_fields if isinstance(f, str)]
            options["object_index"] = True
        for column in object_columns:
            kind = table.schema.field(column).type
            t = pa.types
            if not (
                t.is_string(kind)
                or t.is_large_string(kind)
                or t.is_binary(kind)
                or t.is_large_binary(kind)
                or t.is_null(kind)
            ):
                raise Unsuitable(f"column {column!r} holds {kind} values")
        if object_columns:
            options["object_columns"] = [c for c in object_columns if c in frame.columns]
        if getattr(frame.index, "freqstr", None):
            options["index_freq"] = frame.index.freqstr
        pq.write_table(table, os.path.join(dirpath, self.file))
        return options or None

    def load(self, dirpath: str) -> object:
        import pandas as pd

        options = _options(dirpath)
        frame = pd.read_parquet(os.path.join(dirpath, self.file))
        for column in options.get("object_columns", ()):
            frame[column] = _as_object(frame[column])
        if options.get("object_index"):
            frame.index = pd.Index(
                _as_object(frame.index.to_series()), dtype=object, name=frame.index.name
            )
        if options.get("index_freq"):
            with contextlib.suppress(Exception):
                frame.index = type(frame.index)(frame.index, freq=options["index_freq"])
        if "series_name" in options:
            series = frame[self.series_column]
            series.name = options["series_name"]
            return series
        return frame


def _as_object(column: Any) -> Any:
    """A text column back to object dtype, its missing values None as they were written."""
    if _is_object(column.dtype):
        return column
    missing = column.isna()
    column = column.astype(object)
    if missing.any():
        column[missing] = None
    return column


def _is_object(dtype: Any) -> bool:
    # numpy's object dtype, not pandas' string dtype (whose kind is also "O")
    return str(dtype) == "object"


def _check_parquet_frame(frame: Any) -> None:
    import pandas as pd

    columns = frame.columns
    if isinstance(columns, pd.MultiIndex):
        raise Unsuitable("the columns are a MultiIndex")
    if not all(type(c) is str for c in columns):
        raise Unsuitable("not all column names are strings")
    if not columns.is_unique:
        raise Unsuitable("column names repeat")
    if not all(n is None or type(n) is str for n in frame.index.names):
        raise Unsuitable("an index name is not a string")
    if frame.attrs:
        raise Unsuitable("the frame has attrs")


def _defined_in_main(obj: object) -> bool:
    return isinstance(obj, type | types.FunctionType) and obj.__module__ == "__main__"


class XGBoostSerializer:
    """xgboost's DMatrix (which holds a C pointer pickle cannot save) and Booster, in xgboost's
    own formats."""

    name = "xgboost"

    def matches(self, value: object) -> bool:
        xgb = sys.modules.get("xgboost")
        return xgb is not None and type(value) in (xgb.DMatrix, xgb.Booster)

    def save(self, value: Any, dirpath: str) -> dict[str, Any] | None:
        import xgboost as xgb

        if type(value) is xgb.Booster:
            value.save_model(os.path.join(dirpath, "model.ubj"))
            return {"kind": "booster"}
        value.save_binary(os.path.join(dirpath, "data.buffer"))
        return {"kind": "dmatrix"}

    def load(self, dirpath: str) -> object:
        import xgboost as xgb

        if _options(dirpath).get("kind") == "booster":
            return xgb.Booster(model_file=os.path.join(dirpath, "model.ubj"))
        return xgb.DMatrix(os.path.join(dirpath, "data.buffer"))


class LightGBMSerializer:
    """lightgbm's Booster as its model text, and a constructed Dataset as its binary file."""

    name = "lightgbm"

    def matches(self, value: object) -> bool:
        lgb = sys.modules.get("lightgbm")
        return lgb is not None and type(value) in (lgb.Booster, lgb.Dataset)

    def save(self, value: Any, dirpath: str) -> dict[str, Any] | None:
        import lightgbm as lgb

        if type(value) is lgb.Booster:
            value.save_model(os.path.join(dirpath, "model.txt"))
            return {"kind": "booster"}
        if getattr(value, "_handle", None) is None:
            raise Unsuitable("the Dataset is not constructed yet")  # then it pickles as data
        value.save_binary(os.path.join(dirpath, "data.bin"))
        return {"kind": "dataset"}

    def load(self, dirpath: str) -> object:
        import lightgbm as lgb

        if _options(dirpath).get("kind") == "booster":
            return lgb.Booster(model_file=os.path.join(dirpath, "model.txt"))
        return lgb.Dataset(os.path.join(dirpath, "data.bin")).construct()


class KerasSerializer:
    """Keras (and tf.keras) models in the .keras format."""

    name = "keras"
    file = "model.keras"

    def matches(self, value: object) -> bool:
        return any(
            c.__module__.partition(".")[0] in ("keras", "tf_keras", "tensorflow")
            and c.__name__ in ("Model", "Sequential", "Functional")
            for c in type(value).__mro__
        )

    def save(self, value: Any, dirpath: str) -> dict[str, Any] | None:
        try:
            value.save(os.path.join(dirpath, self.file))
        except Exception as exc:  # a subclassed model without get_config: cloudpickle's turn
            raise Unsuitable(f"{type(exc).__name__}: {exc}") from exc
        return {"module": type(value).__module__.partition(".")[0]}

    def load(self, dirpath: str) -> object:
        if _options(dirpath).get("module") == "tensorflow" or not _importable("keras"):
            from tensorflow import keras
        else:
            import keras
        return keras.models.load_model(os.path.join(dirpath, self.file))


class JoblibSerializer:
    """scikit-learn style estimators (and xgboost, lightgbm, ...) with joblib."""

    name = "joblib"
    file = "data.joblib"
    roots = frozenset({"sklearn", "xgboost", "lightgbm", "catboost", "imblearn"})

    def matches(self, value: object) -> bool:
        if not any(c.__module__.partition(".")[0] in self.roots for c in type(value).__mro__):
            return False
        return _importable("joblib")

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None:
        path = os.path.join(dirpath, self.file)
        try:
            from joblib.numpy_pickle import NumpyPickler
        except ImportError:
            import joblib

            try:
                joblib.dump(value, path)
            except Exception as exc:
                raise Unsuitable(str(exc)) from exc
            return None

        class Pickler(NumpyPickler):
            # Classes and functions defined in the notebook pickle by reference to __main__,
            # which the loading step does not have yet: leave those to cloudpickle.
            def reducer_override(self, obj: object) -> object:
                if _defined_in_main(obj):
                    raise Unsuitable(f"{obj!r} is defined in the notebook")
                return NotImplemented

        try:
            with open(path, "wb") as f:
                Pickler(f).dump(value)
        except Unsuitable:
            raise
        except Exception as exc:
            raise Unsuitable(f"{type(exc).__name__}: {exc}") from exc
        return None

    def load(self, dirpath: str) -> object:
        import joblib

        return joblib.load(os.path.join(dirpath, self.file))


class TorchSerializer:
    """torch tensors and nn.Modules with torch.save."""

    name = "torch"
    file = "data.pt"

    def matches(self, value: object) -> bool:
        if type(value).__module__.partition(".")[0] == "torch":
            return True
        torch = sys.modules.get("torch")  # a Module subclass defined in the notebook
        return torch is not None and isinstance(value, torch.nn.Module)

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None:
        import torch

        try:
            # classes defined in the notebook, by value, their functions' globals the loader's
            pickle_module: Any = types.SimpleNamespace(
                Pickler=_step_pickler(), __name__="cloudpickle"
            )
        except ImportError:
            pickle_module = pickle
        try:
            torch.save(value, os.path.join(dirpath, self.file), pickle_module=pickle_module)
        except Exception as exc:
            raise Unsuitable(f"{type(exc).__name__}: {exc}") from exc
        return None

    def load(self, dirpath: str) -> object:
        import torch

        return torch.load(os.path.join(dirpath, self.file), weights_only=False)


class CloudpickleSerializer:
    """Anything else cloudpickle can pickle (lambdas and notebook classes included)."""

    name = "cloudpickle"
    file = "data.pkl"

    def matches(self, value: object) -> bool:
        return _importable("cloudpickle")

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None:
        with open(os.path.join(dirpath, self.file), "wb") as f:
            _step_pickler()(f, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        return None

    def load(self, dirpath: str) -> object:
        with open(os.path.join(dirpath, self.file), "rb") as f:
            return pickle.load(f)


class PickleSerializer:
    """The last resort: the standard library's pickle."""

    name = "pickle"
    file = "data.pkl"

    def matches(self, value: object) -> bool:
        return True

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None:
        with open(os.path.join(dirpath, self.file), "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        return None

    def load(self, dirpath: str) -> object:
        with open(os.path.join(dirpath, self.file), "rb") as f:
            return pickle.load(f)


# Tried in this order; the first that matches and does not raise Unsuitable saves the value.
SERIALIZERS: dict[str, Serializer] = {
    s.name: s
    for s in (
        NumpySerializer(),
        ParquetSerializer(),
        XGBoostSerializer(),
        LightGBMSerializer(),
        KerasSerializer(),
        JoblibSerializer(),
        TorchSerializer(),
        CloudpickleSerializer(),
        PickleSerializer(),
    )
}


# --------------------------------------------------------------------------------------------
# Functions and classes defined in the notebook travel by value (cloudpickle); in the notebook
# their globals are the notebook's namespace, so in the step that loads them they are that
# step's namespace (its parameters and setup names included), not a copy of the globals the
# saving step happened to have.
# --------------------------------------------------------------------------------------------


class _MainModule:
    """Pickles as a reference to the loading process's ``__main__``: the step's namespace."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (importlib.import_module, ("__main__",))


class _MainNamespace:
    """Pickles as ``__main__.__dict__`` of the process that loads it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (getattr, (_MainModule(), "__dict__"))


def _set_function_state(func: Any, state: Any) -> None:
    # cloudpickle's function state setter, except that the globals captured when the function
    # was saved only fill names the loading namespace lacks: the step's own values win
    attrs, slots = state
    func.__dict__.update(attrs)
    slots = dict(slots)
    captured = slots.pop("__globals__", None) or {}
    closure = slots.pop("__closure__", None)
    slots.pop("_cloudpickle_submodules", None)
    namespace = func.__globals__
    for key, value in captured.items():
        if key not in namespace:
            namespace[key] = value
    for cell, saved in zip(func.__closure__ or (), closure or (), strict=False):
        try:
            value = saved.cell_contents
        except ValueError:  # an empty cell
            continue
        cell.cell_contents = value
    for key, value in slots.items():
        setattr(func, key, value)


def _step_pickler() -> Any:
    """cloudpickle's Pickler, with notebook functions bound to the loading step's namespace."""
    import cloudpickle

    class StepPickler(cloudpickle.Pickler):
        def reducer_override(self, obj: object) -> Any:
            if obj is _set_function_state:  # by value: a step image has no nbflow to import
                return super()._dynamic_function_reduce(obj)
            return super().reducer_override(obj)

        def _dynamic_function_reduce(self, func: Any) -> Any:
            reduced = super()._dynamic_function_reduce(func)
            if getattr(func, "__module__", None) != "__main__" or len(reduced) != 6:
                return reduced
            code, _, *rest = reduced[1]
            return (
                reduced[0],
                (code, _MainNamespace(), *rest),
                reduced[2],
                None,
                None,
                _set_function_state,
            )

    if not hasattr(cloudpickle.Pickler, "_dynamic_function_reduce"):
        return cloudpickle.Pickler  # a cloudpickle we do not know: its own behaviour
    return StepPickler


# --------------------------------------------------------------------------------------------
# Values that share objects (`models = [m1, m2]` and `m2`) are saved together, as one object
# graph, into each of their artifacts; the loading step loads such a bundle once, so that they
# arrive sharing what they shared.
# --------------------------------------------------------------------------------------------

BUNDLE = "bundle"
# Not looked into: their identity counts, their insides are data (and can be large)
_LEAF_ROOTS = frozenset(
    {
        "numpy",
        "pandas",
        "pyarrow",
        "polars",
        "scipy",
        "torch",
        "tensorflow",
        "keras",
        "jax",
        "xgboost",
        "lightgbm",
    }
)
_ATOMS = (int, float, complex, str, bytes, bool, type(None), range, slice)
_ATOM_TYPES = frozenset(_ATOMS)
_NOT_DATA = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.MethodType,
)
# objects looked at per value: past that, a huge container is taken as sharing nothing more
SHARED_SCAN_LIMIT = 200_000


def _reachable(value: object) -> set[int]:
    """Ids of the mutable objects ``value`` holds (itself included)."""
    import gc

    seen: set[int] = set()
    todo = [value]
    while todo and len(seen) < SHARED_SCAN_LIMIT:
        obj = todo.pop()
        if isinstance(obj, _ATOMS + _NOT_DATA) or id(obj) in seen:
            continue
        if not isinstance(obj, tuple | frozenset):  # immutable: sharing one changes nothing
            seen.add(id(obj))
        if type(obj).__module__.partition(".")[0] in _LEAF_ROOTS:
            continue
        refs = gc.get_referents(obj)
        if len(refs) > 64 and set(map(type, refs)) <= _ATOM_TYPES:
            continue  # a long list of numbers or strings: nothing in it to share
        todo.extend(refs)
    return seen


def shared_groups(values: dict[str, object]) -> list[list[str]]:
    """Groups (two or more names, in the given order) of values that share some object."""
    owner: dict[int, str] = {}
    parent = {name: name for name in values}

    def find(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name, value in values.items():
        for key in _reachable(value):
            other = owner.setdefault(key, name)
            if other != name:
                parent[find(name)] = find(other)
    groups: dict[str, list[str]] = {}
    for name in values:
        groups.setdefault(find(name), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def save_bundle(values: dict[str, object], paths: dict[str, str]) -> None:
    """Save ``values`` as one object graph into each of ``paths`` (one per name)."""
    import uuid

    bundle_id = uuid.uuid4().hex
    first: str | None = None
    for name, path in paths.items():
        _fresh_dir(path)
        data = os.path.join(path, "bundle.pkl")
        if first is None:
            try:
                pickler = _step_pickler()
            except ImportError:  # no cloudpickle in the image: what the standard library can
                pickler = pickle.Pickler
            with open(data, "wb") as f:
                pickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(values)
            first = data
        else:
            shutil.copyfile(first, data)
        meta = {
            "serializer": BUNDLE,
            "type": _type_name(values[name]),
            "variable": name,
            "bundle": {"id": bundle_id, "names": list(values)},
        }
        with open(os.path.join(path, META_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f)


def load_input(path: str, record: object, bundles: dict[str, dict[str, object]]) -> object:
    """Load one input as ``record`` says (see :func:`load_value`); a bundle (see
    :func:`save_bundle`) is read once into ``bundles``, so that the values it holds arrive
    sharing what they shared."""
    serializer, meta = _verified(path, record)
    if serializer != BUNDLE:
        return _load(path, serializer)
    key = str(meta["bundle"]["id"])
    if key not in bundles:
        with open(os.path.join(path, "bundle.pkl"), "rb") as f:
            bundles[key] = pickle.load(f)
    return bundles[key][meta["variable"]]


def _fresh_dir(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)
    os.makedirs(path)


def save_value(value: object, path: str, *, variable: str) -> str:
    """Save ``value`` into directory ``path``; return the serializer's name.

    Raises the last serializer's exception when none can store the value.
    """
    if isinstance(value, io.IOBase) and not isinstance(value, io.BytesIO | io.StringIO):
        # cloudpickle would save a file open for reading as a copy of its contents
        raise TypeError("cannot pickle an open file or stream")
    error: Exception | None = None
    for serializer in SERIALIZERS.values():
        if not serializer.matches(value):
            continue
        _fresh_dir(path)
        try:
            options = serializer.save(value, path)
        except Unsuitable as exc:
            error = exc
            continue
        except Exception as exc:
            # a real failure (cloudpickle cannot pickle it, the disk is full): stop here
            error = exc
            break
        meta: dict[str, Any] = {
            "serializer": serializer.name,
            "type": _type_name(value),
            "variable": variable,
        }
        if options:
            meta["options"] = options
        with open(os.path.join(path, META_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f)
        return serializer.name
    if os.path.isdir(path):
        shutil.rmtree(path)
    raise error if error is not None else RuntimeError("no serializer matched")


def artifact_digest(path: str) -> str:
    """SHA-256 of an artifact directory: every file's relative name, size and bytes, in order."""
    import hashlib

    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            digest.update(f"{rel}\0{os.path.getsize(full)}\0".encode())
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def value_record(path: str, serializer: str) -> dict[str, str]:
    """What the pipeline records of a saved value, in its artifact's metadata."""
    return {RECORD_SERIALIZER: serializer, RECORD_DIGEST: artifact_digest(path)}


def load_value(path: str, record: object) -> object:
    """Load a value that :func:`save_value` wrote into directory ``path``, as ``record`` says:
    the :func:`value_record` the pipeline kept when the producing step saved it. An artifact
    whose files are not the ones recorded, or whose nbflow.json names another serializer, is
    refused, not loaded."""
    serializer, _ = _verified(path, record)
    if serializer == BUNDLE:
        raise ValueError("a bundle is loaded with the other values of its step (load_input)")
    return _load(path, serializer)


def _verified(path: str, record: object) -> tuple[str, dict[str, Any]]:
    """The serializer ``record`` names and the artifact's nbflow.json, once the artifact's
    files are checked against the record; ValueError when they don't match it."""
    record = record if isinstance(record, dict) else {}
    serializer = record.get(RECORD_SERIALIZER)
    known = isinstance(serializer, str) and (serializer in SERIALIZERS or serializer == BUNDLE)
    if not known or not isinstance(record.get(RECORD_DIGEST), str):
        raise ValueError(
            "the pipeline has no record of how this value was saved (no serializer and digest "
            "in the input artifact's metadata): run the producing step again"
        )
    meta_path = os.path.join(path, META_FILE)
    if not os.path.isfile(meta_path):
        raise ValueError(f"the artifact is not an nbflow value (no {META_FILE})")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    if not isinstance(meta, dict) or meta.get("serializer") != serializer:
        raise ValueError(
            f"the artifact's files were not written by the step that produced it, which saved "
            f"it with {serializer}: refusing to load it"
        )
    if artifact_digest(path) != record[RECORD_DIGEST]:
        raise ValueError(
            "the artifact's files changed after the step that produced it saved them: "
            "refusing to load it"
        )
    return str(serializer), meta


def _load(path: str, serializer: str) -> object:
    chosen = SERIALIZERS[serializer]
    try:
        return chosen.load(path)
    except ImportError as exc:
        raise ImportError(
            f"it was saved with {chosen.name}, which needs {exc.name or exc}: "
            "install it in the step image"
        ) from exc


# --------------------------------------------------------------------------------------------
# What each cell produced, in order, for the report.
# --------------------------------------------------------------------------------------------


class CellLog:
    __slots__ = ("_chars", "error", "number", "omitted", "outputs", "seconds", "setup", "source")

    def __init__(self, number: int, source: str, setup: bool) -> None:
        self.number = number
        self.source = source
        self.setup = setup
        # ("stream", name, text) | ("display", mime bundle, Out[] number or None)
        self.outputs: list[tuple[Any, ...]] = []
        self.error: str | None = None
        self.seconds = 0.0
        self.omitted = 0
        self._chars = 0

    def stream(self, name: str, text: str) -> None:
        room = MAX_REPORT_STREAM_CHARS - self._chars
        if len(text) > room:
            self.omitted += len(text) - max(room, 0)
            text = text[: max(room, 0)]
        if not text:
            return
        self._chars += len(text)
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last[0] == "stream" and last[1] == name:
            self.outputs[-1] = ("stream", name, last[2] + text)
        else:
            self.outputs.append(("stream", name, text))

    def display(self, data: dict[str, Any], count: int | None = None) -> None:
        self.outputs.append(("display", dict(data), count))


class Recorder:
    """Routes stream text and display data to the cell that is running."""

    def __init__(self, out: Any) -> None:
        self.cells: list[CellLog] = []
        self.current: CellLog | None = None
        self.out = out  # the real stdout: displayed values go to the log as text too

    def stream(self, name: str, text: str) -> None:
        if self.current is not None:
            self.current.stream(name, text)

    def display(self, data: dict[str, Any], count: int | None = None) -> None:
        if self.current is not None:
            self.current.display(data, count)
        text = data.get("text/plain")
        if text:
            prefix = f"Out[{count}]: " if count is not None else ""
            self.out.write(f"{prefix}{text}\n")
            self.out.flush()

    def clear(self) -> None:
        if self.current is not None:
            self.current.outputs.clear()


class Tee(io.TextIOBase):
    """A text stream that writes through to the real stream and records for the report."""

    def __init__(self, name: str, target: Any, recorder: Recorder) -> None:
        self.name = name
        self._target = target
        self._recorder = recorder

    def write(self, text: str) -> int:
        self._target.write(text)
        self._recorder.stream(self.name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return int(self._target.fileno())

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._target, "errors", None)


@contextlib.contextmanager
def _notebook_logging() -> Iterator[None]:
    """The root logger as a fresh kernel has it, for the step's cells.

    kfp's executor gives the root logger a handler on the real stdout before the step starts:
    records went past the report, and `logging.basicConfig` in a cell did nothing. The root
    logger's handlers are put back afterwards, and those a cell added are dropped.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)


@contextlib.contextmanager
def _teed(recorder: Recorder) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout = Tee("stdout", saved[0], recorder)
    sys.stderr = Tee("stderr", saved[1], recorder)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = saved


# --------------------------------------------------------------------------------------------
# Failure messages: the step, the cell, the line, and a traceback of the user's code only.
# --------------------------------------------------------------------------------------------


class CellSources:
    """Raw source lines of the cells, and where the lines of their compiled code come from."""

    def __init__(self) -> None:
        self.lines: dict[int, list[str]] = {}
        self.offsets: dict[int, int] = {}
        self.current = 0
        # IPython drops a cell's leading blank lines before compiling it
        self.drops_leading_blank_lines = False

    def add(self, number: int, source: str) -> None:
        lines = source.splitlines()
        first = next((i for i, text in enumerate(lines) if text.strip()), 0)
        self.lines[number] = lines
        self.offsets[number] = first if self.drops_leading_blank_lines else 0
        self.current = number

    def line(self, number: int, lineno: int | None) -> str:
        lines = self.lines.get(number, [])
        if lineno is None or not 0 < lineno <= len(lines):
            return ""
        return lines[lineno - 1].strip()

    def locate(self, filename: str, lineno: int | None) -> tuple[int, int | None] | None:
        """Map a code file name and line to (cell number, line in the cell); None: not a cell."""
        match = _CELL_FILE.match(filename)
        if match:
            number = int(match.group(1))
            return number, None if lineno is None else lineno + self.offsets.get(number, 0)
        if filename in _TIMED_FILES and lineno is not None:
            # the body of a %%time cell, compiled without the magic's line
            number = self.current
            lines = self.lines.get(number, [])
            first = next((i for i, text in enumerate(lines) if text.strip()), 0)
            if first < len(lines) and lines[first].lstrip().startswith("%%"):
                return number, lineno + first + 1
        return None


def _internal_prefixes() -> tuple[str, ...]:
    prefixes = ["<decorator-gen-", _internal_prefixes.__code__.co_filename]
    for module in ("IPython", "traitlets"):
        loaded = sys.modules.get(module)
        location = getattr(loaded, "__file__", None)
        if location:
            prefixes.append(os.path.dirname(location) + os.sep)
    return tuple(prefixes)


def _user_stack(
    stack: traceback.StackSummary, sources: CellSources
) -> tuple[list[traceback.FrameSummary], list[tuple[int, int | None, str]]]:
    """Frames from the first cell frame on, without runtime/IPython frames; and the cell frames."""
    internal = _internal_prefixes()
    frames: list[traceback.FrameSummary] = []
    cells: list[tuple[int, int | None, str]] = []
    for frame in stack:
        where = sources.locate(frame.filename, frame.lineno)
        if where is not None:
            number, lineno = where
            text = sources.line(number, lineno)
            cells.append((number, lineno, text))
            frames.append(
                traceback.FrameSummary(
                    f"<cell {number}>", lineno, frame.name, lookup_line=False, line=text
                )
            )
        elif not frame.filename.startswith(internal):
            frames.append(frame)
    if not cells:  # a chained exception from library code: where it was raised
        return frames[-1:], cells
    first_cell = next(i for i, f in enumerate(frames) if _CELL_FILE.match(f.filename))
    frames = frames[first_cell:]
    # library code below the user's last frame: only the line that raised
    last_cell = max((i for i, f in enumerate(frames) if _CELL_FILE.match(f.filename)), default=-1)
    if len(frames) - last_cell > 2:
        frames = [*frames[: last_cell + 1], frames[-1]]
    return frames, cells


def _trim(te: traceback.TracebackException, sources: CellSources, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    frames, _ = _user_stack(te.stack, sources)
    te.stack = traceback.StackSummary.from_list(frames)
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _trim(chained, sources, seen)


def describe_failure(
    exc: BaseException, *, step: str, notebook: str, cell: int, sources: CellSources
) -> str:
    """The message of a cell that raised ``exc``: where, what, and the user's traceback."""
    te = traceback.TracebackException.from_exception(exc)
    _, cells = _user_stack(te.stack, sources)
    ours = [c for c in cells if c[0] == cell]
    lineno: int | None = None
    text = ""
    if ours:
        _, lineno, text = ours[-1]
    elif isinstance(exc, SyntaxError):
        where_syntax = sources.locate(exc.filename or "", exc.lineno)
        if where_syntax is not None and where_syntax[1] is not None:
            lineno = where_syntax[1]
            text = sources.line(cell, lineno)
            te.lineno = te.end_lineno = str(lineno)
    what = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, SyntaxError):
        what = f"{type(exc).__name__}: {exc.msg}"
    where = f"cell {cell} of {notebook}" + (f", line {lineno}" if lineno else "")
    lines = [f"step '{step}' failed in {where}: {what}"]
    if text:
        lines.append(f"    {text}")
    if cells and cells[-1][0] != cell:
        number, deep_line, deep_text = cells[-1]
        lines.append(f"raised in cell {number}, line {deep_line}: {deep_text}")
    _trim(te, sources, set())
    lines.append("")
    lines.append("".join(te.format()).rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Running cells: an IPython shell when IPython is importable, else plain exec.
# --------------------------------------------------------------------------------------------


class Session(Protocol):
    def push(self, values: dict[str, object]) -> None: ...

    def get(self, name: str) -> tuple[bool, object]: ...

    def run_cell(self, number: int, source: str) -> BaseException | None: ...

    def close(self) -> None: ...


def _figure_pngs() -> list[bytes]:
    """PNGs of the open pyplot figures, which are then closed (the inline backend's flush)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    pngs = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png", bbox_inches="tight")
        pngs.append(buf.getvalue())
    plt.close("all")
    return pngs


def _plain_bundle(obj: object) -> dict[str, Any]:
    """A small stand-in for IPython's display formatter."""
    data: dict[str, Any] = {}
    if not isinstance(obj, type):
        for attr, mime in (("_repr_png_", "image/png"), ("_repr_html_", "text/html")):
            method = getattr(obj, attr, None)
            if callable(method):
                try:
                    value = method()
                except Exception:
                    value = None
                if isinstance(value, tuple):
                    value = value[0]
                if value is not None:
                    data[mime] = value
    data["text/plain"] = repr(obj)
    return data


class PlainSession:
    """Cells as plain Python (no IPython in the step image): magics fail with a clear message."""

    def __init__(self, recorder: Recorder, sources: CellSources) -> None:
        self.recorder = recorder
        self.sources = sources
        self.module = types.ModuleType("__main__")
        self.ns = self.module.__dict__
        self.ns["display"] = self._display
        self._saved_main = sys.modules.get("__main__")
        # classes defined in cells live in __main__, so cloudpickle saves them by value
        sys.modules["__main__"] = self.module
        self._saved_backend = os.environ.get("MPLBACKEND")
        if "matplotlib" not in sys.modules:
            os.environ["MPLBACKEND"] = "Agg"

    def _display(self, *objs: object, **kwargs: object) -> None:
        for obj in objs:
            self.recorder.display(_plain_bundle(obj))

    def push(self, values: dict[str, object]) -> None:
        self.ns.update(values)

    def get(self, name: str) -> tuple[bool, object]:
        return (name in self.ns, self.ns.get(name))

    def run_cell(self, number: int, source: str) -> BaseException | None:
        import ast

        filename = f"<cell {number}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            tree = ast.parse(source, filename)
        except SyntaxError as exc:
            return _magic_error(exc, source) or exc
        last = None
        node = tree.body[-1] if tree.body else None
        if isinstance(node, ast.Expr):  # shown like Out[n], as IPython does
            tree.body.pop()
            last = ast.Expression(node.value)
        try:
            exec(compile(tree, filename, "exec"), self.ns)
            if last is not None:
                value = eval(compile(last, filename, "eval"), self.ns)
                if value is not None:
                    self.ns["_"] = value
                    self.recorder.display(_plain_bundle(value), number)
        except BaseException as exc:
            return exc
        finally:
            for png in _figure_pngs():
                self.recorder.display({"image/png": png, "text/plain": "<Figure>"})
        return None

    def close(self) -> None:
        if self._saved_main is not None:
            sys.modules["__main__"] = self._saved_main
        _restore_env("MPLBACKEND", self._saved_backend)
        for key in [k for k in linecache.cache if _CELL_FILE.match(k)]:
            del linecache.cache[key]


def _magic_error(exc: SyntaxError, source: str) -> Exception | None:
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(("%", "!")) or re.match(r"^[\w.,\s]+=\s*[!%]", stripped):
            error = RuntimeError(
                f"line {lineno} uses IPython syntax ({stripped!r}), but IPython is not "
                "installed in the step image: add ipython to the image"
            )
            error.__traceback__ = None
            return error
    return None


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class IPythonSession:
    """A private, non-singleton IPython shell that records display data instead of printing it.

    Everything the shell changes outside itself (the InteractiveShell singleton that display()
    and matplotlib_inline look up, sys.modules['__main__'], builtins, sys.ps1, atexit) is put
    back by close(), so that the runtime can run many times in one process.
    """

    def __init__(self, recorder: Recorder, sources: CellSources) -> None:
        import builtins

        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        self.recorder = recorder
        self.sources = sources
        sources.drops_leading_blank_lines = True
        self._saved_instance = InteractiveShell._instance
        self._saved_builtins = {k: builtins.__dict__.get(k, _MISSING) for k in _IPY_BUILTINS}
        self._saved_ps = {k: getattr(sys, k, _MISSING) for k in ("ps1", "ps2", "ps3")}
        self._saved_backend = os.environ.get("MPLBACKEND")
        self._saved_inline = _inline_backend_state()
        self._dir = tempfile.mkdtemp(prefix="nbflow-ipython-")
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell_class = _shell_class(recorder)
        main_module = sys.modules.get("__main__")
        try:
            self.shell = shell_class(ipython_dir=self._dir, config=config, user_ns={})
        except BaseException:
            if main_module is not None:
                sys.modules["__main__"] = main_module
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.shell.compile = _compiler_class()()
        self.shell._nbflow_shown = []
        # display() and matplotlib_inline find the shell through the singleton
        InteractiveShell._instance = self.shell
        shell_class._instance = self.shell
        _inline_matplotlib(self.shell)

    def push(self, values: dict[str, object]) -> None:
        self.shell.push(values)

    def get(self, name: str) -> tuple[bool, object]:
        ns = self.shell.user_ns
        return (name in ns, ns.get(name))

    def run_cell(self, number: int, source: str) -> BaseException | None:
        shell = self.shell
        shell.execution_count = number  # so that Out[n] is the notebook's cell number
        shell._nbflow_shown.clear()
        result = shell.run_cell(source, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if error is None and shell._nbflow_shown:
            # A magic or an event hook showed a traceback and carried on (%%time before
            # IPython 9, a figure that fails to draw): in a notebook the cell shows an error,
            # so the step fails rather than going on with what the cell did not do.
            error = shell._nbflow_shown[0]
        return error

    def close(self) -> None:
        import atexit
        import builtins

        from IPython.core.interactiveshell import InteractiveShell

        shell = self.shell
        atexit.unregister(shell.atexit_operations)
        with contextlib.suppress(Exception):
            shell.history_manager.close()
        shell.cleanup()  # sys.modules['__main__'], sys.std*, sys.excepthook
        InteractiveShell._instance = self._saved_instance
        type(shell)._instance = None
        for key, value in self._saved_builtins.items():
            if value is _MISSING:
                builtins.__dict__.pop(key, None)
            else:
                builtins.__dict__[key] = value
        for key, value in self._saved_ps.items():
            if value is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(sys, key)
            else:
                setattr(sys, key, value)
        _restore_env("MPLBACKEND", self._saved_backend)
        _restore_inline_backend(self._saved_inline, shell)
        for key in [k for k in linecache.cache if _CELL_FILE.match(k)]:
            del linecache.cache[key]
        shutil.rmtree(self._dir, ignore_errors=True)


_MISSING = object()
_IPY_BUILTINS = ("__IPYTHON__", "display", "get_ipython", "exit", "quit")


def _inline_backend_state() -> tuple[object, object] | None:
    module = sys.modules.get("matplotlib_inline.config")
    if module is None:
        return None
    instance = module.InlineBackend._instance
    return instance, getattr(instance, "shell", None)


def _restore_inline_backend(saved: tuple[object, object] | None, shell: object) -> None:
    module = sys.modules.get("matplotlib_inline.config")
    if module is None:
        return
    if saved is None or saved[0] is None:
        module.InlineBackend.clear_instance()
        return
    instance, old_shell = saved
    module.InlineBackend._instance = instance
    if getattr(instance, "shell", None) is shell:
        with contextlib.suppress(Exception):
            instance.shell = old_shell  # type: ignore[attr-defined]


def _inline_matplotlib(shell: Any) -> None:
    """Make figures show inline as in a notebook, with or without `%matplotlib inline`."""
    if not _importable("matplotlib_inline"):
        return
    if "matplotlib" not in sys.modules:
        # ipykernel does the same: pyplot then loads the inline backend, which finds the shell
        os.environ["MPLBACKEND"] = INLINE_BACKEND
        return
    # matplotlib is already loaded (an earlier step in this process, or the image's startup)
    _configure_inline(shell, activate="matplotlib.pyplot" in sys.modules)


def _configure_inline(shell: Any, *, activate: bool) -> None:
    import matplotlib
    from matplotlib_inline.backend_inline import configure_inline_support

    if activate:
        from IPython.core.pylabtools import activate_matplotlib

        activate_matplotlib(INLINE_BACKEND)
    else:
        matplotlib.interactive(True)
        matplotlib.use(INLINE_BACKEND)
    # it registers the figure formatters only when the backend changes: force it for this shell
    configure_inline_support.current_backend = "unset"  # type: ignore[attr-defined]
    configure_inline_support(shell, INLINE_BACKEND)


def _compiler_class() -> type:
    from IPython.core.compilerop import CachingCompiler

    class CellCompiler(CachingCompiler):
        """Names cell code `<cell N>` (N: the notebook cell number) so frames point at cells."""

        def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
            return f"<cell {number}>"

    return CellCompiler


def _shell_class(recorder: Recorder) -> Any:
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Publisher(DisplayPublisher):
        def publish(
            self,
            data: dict[str, Any],
            metadata: dict[str, Any] | None = None,
            source: object = None,
            *,
            transient: object = None,
            update: bool = False,
            **kwargs: object,
        ) -> None:
            recorder.display(data)

        def clear_output(self, wait: bool = False) -> None:
            recorder.clear()

    class Hook(DisplayHook):
        def write_output_prompt(self) -> None:
            pass

        def write_format_data(
            self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None
        ) -> None:
            recorder.display(format_dict, self.prompt_count)

        def finish_displayhook(self) -> None:
            self._is_active = False

    class StepShell(InteractiveShell):
        display_pub_class = Publisher
        displayhook_class = Hook
        _nbflow_shown: list[BaseException]

        def init_virtualenv(self) -> None:
            pass  # it would edit sys.path for a VIRTUAL_ENV that is not ours

        def enable_gui(self, gui: str | None = None) -> None:
            pass  # no event loop in a step: figures are rendered inline

        def enable_matplotlib(self, gui: str | None = None) -> tuple[str, str]:
            if gui not in (None, "auto", "inline"):
                sys.stderr.write(f"[nbflow] %matplotlib {gui}: a step renders figures inline\n")
            _configure_inline(self, activate=True)
            return "inline", INLINE_BACKEND

        def showtraceback(self, exc_tuple: Any = None, *args: Any, **kwargs: Any) -> None:
            # the runtime writes its own message; record what IPython would have printed
            exc = exc_tuple[1] if exc_tuple else sys.exc_info()[1]
            if exc is not None:
                self._nbflow_shown.append(exc)

        def showsyntaxerror(self, *args: Any, **kwargs: Any) -> None:
            pass

        def showindentationerror(self) -> None:
            pass

        def system_piped(self, cmd: str) -> None:
            # through sys.stdout (pexpect, IPython's way, writes around it), so the report has it
            if cmd.rstrip().endswith("&"):
                raise OSError("background processes are not supported in a step")
            cmd = self.var_expand(cmd, depth=1)
            proc = subprocess.Popen(
                cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            assert proc.stdout is not None
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            with proc.stdout:
                fd = proc.stdout.fileno()
                while chunk := os.read(fd, 65536):  # as it comes, not when the pipe fills
                    sys.stdout.write(decoder.decode(chunk))
                    sys.stdout.flush()
            sys.stdout.write(decoder.decode(b"", final=True))
            code = proc.wait()
            self.user_ns["_exit_code"] = code
            if getattr(self, "system_raise_on_error", False) and code != 0:
                raise subprocess.CalledProcessError(code, cmd)

        system = system_piped

        def getoutput(self, cmd: str, split: bool = True, depth: int = 0) -> Any:
            from IPython.utils.text import LSString, SList

            if cmd.rstrip().endswith("&"):
                raise OSError("background processes are not supported in a step")
            cmd = self.var_expand(cmd, depth=depth + 1)
            proc = subprocess.run(
                cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
            )
            self.user_ns["_exit_code"] = proc.returncode
            if getattr(self, "system_raise_on_error", False) and proc.returncode != 0:
                raise subprocess.CalledProcessError(proc.returncode, cmd)
            out = proc.stdout.decode("utf-8", errors="replace")
            return SList(out.splitlines()) if split else LSString(out)

    return StepShell


def _new_session(recorder: Recorder, sources: CellSources) -> Session:
    if _importable("IPython"):
        try:
            return IPythonSession(recorder, sources)
        except Exception as exc:  # an IPython too old or broken: cells still run
            sys.stderr.write(
                f"[nbflow] IPython did not start ({type(exc).__name__}: {exc}): "
                "running cells as plain Python\n"
            )
            sources.drops_leading_blank_lines = False
    return PlainSession(recorder, sources)


# --------------------------------------------------------------------------------------------
# The report: one self-contained HTML file.
# --------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.4em}.meta{color:#555}
.cell{border-top:1px solid #ddd;padding:.6em 0}
.head{color:#555;font-size:.85em;margin-bottom:.3em}
pre{margin:.2em 0;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
pre.src{background:#f5f5f5}pre.stderr{background:#fff3f0}
.error pre,pre.error{background:#fdd;border-left:4px solid #c00}
.out{margin:.2em 0}.prompt{color:#a33;font-size:.85em}
img{max-width:100%}table{border-collapse:collapse}td,th{padding:.2em .5em;border:1px solid #ccc}
"""


def _text(text: str) -> str:
    """Stream text as a terminal shows it: a carriage return rewinds its line."""
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        lines.append(line)
    return "\n".join(lines)


# SGR sequences (colours, bold) become spans; any other escape sequence is dropped.
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# the 8 colours of SGR 30-37 and the 8 bright ones of 90-97, as xterm draws them
_ANSI_COLOURS = (
    *("#000000", "#c91b00", "#00a600", "#a68a0d", "#0225c7", "#c930c7", "#00a5b3", "#9a9a9a"),
    *("#686868", "#ff6e67", "#3fcf3f", "#c9b400", "#6871ff", "#ff77ff", "#3fd5e3", "#d0d0d0"),
)


def _sgr(codes: list[int], state: dict[str, Any]) -> None:
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            state.clear()
        elif code == 1:
            state["bold"] = True
        elif code == 22:
            state.pop("bold", None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            state["color"] = _ANSI_COLOURS[code - 30 if code < 90 else code - 82]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            state["background"] = _ANSI_COLOURS[code - 40 if code < 100 else code - 92]
        elif code == 39:
            state.pop("color", None)
        elif code == 49:
            state.pop("background", None)
        elif code in (38, 48):  # 256 colours and RGB: their arguments are skipped
            i += 2 if codes[i + 1 : i + 2] == [5] else 4
        i += 1


def _ansi_html(text: str, escape: Any = html.escape) -> str:
    """Terminal text as HTML: colours and bold as styled spans, the rest escaped."""
    if "\x1b" not in text:
        return str(escape(text))
    out: list[str] = []
    state: dict[str, Any] = {}
    pos = 0
    for m in [*_SGR.finditer(text), None]:
        chunk = _OTHER_ESCAPE.sub("", text[pos : m.start() if m else len(text)])
        if chunk:
            style = ";".join(
                "font-weight:bold" if k == "bold" else f"{k}:{v}" for k, v in sorted(state.items())
            )
            piece = str(escape(chunk))
            out.append(f'<span style="{style}">{piece}</span>' if style else piece)
        if m is not None:
            _sgr([int(c) if c else 0 for c in m.group(1).split(";")], state)
            pos = m.end()
    return "".join(out)


def _number(value: float) -> str:
    """A metric as a user reads it: an integral value as an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return "".join(str(value).split())


def _render_bundle(data: dict[str, Any]) -> str:
    for mime in ("image/png", "image/jpeg"):
        if data.get(mime):
            return f'<img src="data:{mime};base64,{_base64(data[mime])}">'
    if data.get("image/svg+xml"):
        svg = data["image/svg+xml"]
        svg = svg.encode("utf-8") if isinstance(svg, str) else svg
        return f'<img src="data:image/svg+xml;base64,{_base64(svg)}">'
    if data.get("text/html"):
        markup = data["text/html"]
        return "".join(markup) if isinstance(markup, list) else str(markup)
    # Markdown and LaTeX as their source here; nbflow turns them into HTML on the machine that
    # collects the run's reports (the step image may have no renderer)
    if data.get("text/markdown"):
        return f'<pre class="markdown-source">{html.escape(str(data["text/markdown"]))}</pre>'
    if data.get("text/latex"):
        return f'<pre class="latex-source">{html.escape(str(data["text/latex"]))}</pre>'
    if data.get("text/plain"):
        return f"<pre>{_ansi_html(str(data['text/plain']))}</pre>"
    return f"<pre>{html.escape('(no displayable form: ' + ', '.join(sorted(data)) + ')')}</pre>"


def render_report(
    program: dict[str, Any],
    cells: list[CellLog],
    *,
    error: str | None,
    parameters: dict[str, object],
    saved: dict[str, str],
    metrics: dict[str, float],
    paths: dict[str, str],
) -> str:
    """The step's report as one HTML page (escaped user text, images inline).

    ``paths`` maps the machine's artifact paths to names to show instead.
    """

    def scrub(text: str) -> str:
        for path, label in paths.items():
            text = text.replace(path, label)
        return html.escape(text)

    title = f"{program.get('pipeline', '')} / {program.get('step', '')}"
    status = "failed" if error else "succeeded"
    seconds = sum(c.seconds for c in cells)
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">notebook {html.escape(str(program.get("notebook", "")))}, '
        f"{len(cells)} cell(s) run, {status} in {seconds:.2f} s</p>",
    ]
    if parameters:
        shown = ", ".join(f"{k}={_short_repr(v)}" for k, v in parameters.items())
        parts.append(f'<p class="meta">parameters: {html.escape(shown)}</p>')
    failed_cell = next((c for c in cells if c.error), None)
    if failed_cell is not None and error:
        first = error.splitlines()[0]
        parts.append(
            f'<div class="error"><pre><a href="#cell-{failed_cell.number}">'
            f"{scrub(first)}</a></pre></div>"
        )
    elif error:
        parts.append(f'<div class="error"><pre>{scrub(error)}</pre></div>')
    for cell in cells:
        label = f"cell {cell.number}" + (" (setup)" if cell.setup else "")
        parts.append(f'<section class="cell" id="cell-{cell.number}">')
        parts.append(f'<div class="head">{html.escape(label)}, {cell.seconds:.2f} s</div>')
        parts.append(f'<pre class="src">{html.escape(cell.source)}</pre>')
        for output in cell.outputs:
            if output[0] == "stream":
                text = _ansi_html(_text(output[2]), scrub)
                parts.append(f'<pre class="{output[1]}">{text}</pre>')
            else:
                prompt = f'<div class="prompt">Out[{output[2]}]:</div>' if output[2] else ""
                parts.append(f'<div class="out">{prompt}{_render_bundle(output[1])}</div>')
        if cell.omitted:
            note = f"[{cell.omitted} more characters of output are in the step log]"
            parts.append(f"<pre>{html.escape(note)}</pre>")
        if cell.error:
            parts.append(f'<pre class="error">{_ansi_html(cell.error, scrub)}</pre>')
        parts.append("</section>")
    if saved or metrics:
        parts.append('<section class="cell"><div class="head">results</div><table>')
        for name, serializer in saved.items():
            if name in metrics:  # listed below, as the metric it is
                continue
            parts.append(
                f"<tr><td>output</td><td>{html.escape(name)}</td>"
                f"<td>{html.escape(serializer)}</td></tr>"
            )
        for name, value in metrics.items():
            parts.append(
                f"<tr><td>metric</td><td>{html.escape(name)}</td><td>{_number(value)}</td></tr>"
            )
        parts.append("</table></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# The step.
# --------------------------------------------------------------------------------------------


def _disk_hint(exc: BaseException) -> str | None:
    """What to do when a write failed for want of room, else None."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free some space (or give the step a larger volume)"
    if exc.errno == errno.EFBIG:
        return "the file is larger than allowed here (`ulimit -f`, or the file system's limit)"
    if exc.errno == getattr(errno, "EDQUOT", None):
        return "the disk quota is used up: free some space"
    return None


# What cannot cross a step boundary, by type: (module root or type names, what it is, fix)
_UNSAVABLE = (
    (("_io", "io"), "an open file or stream", "open it again in the step that reads it"),
    (
        ("generator", "coroutine", "async_generator"),
        "a generator",
        "make a list of what it yields, or create it in the step that uses it",
    ),
    (
        ("_thread", "threading", "multiprocessing", "concurrent"),
        "a lock, thread or process pool",
        "create it in the step that uses it",
    ),
    (
        (
            "socket",
            "ssl",
            "sqlite3",
            "psycopg2",
            "pymysql",
            "sqlalchemy",
            "requests",
            "urllib3",
            "http",
        ),
        "a connection or session",
        "connect again in the step that uses it",
    ),
)


def save_hint(value: object, exc: BaseException, group: list[str]) -> str:
    """The hint under a failed save: what the value (or what it holds) is, and what to do."""
    disk = _disk_hint(exc)  # a full disk, not the value, is what stopped it
    if disk is not None:
        return f"hint: {disk}"
    cls = type(value)
    names = {cls.__name__, cls.__module__.partition(".")[0]}
    text = f"{type(exc).__name__}: {exc}"
    for markers, what, fix in _UNSAVABLE:
        if names & set(markers) or any(m in text for m in markers if len(m) > 3):
            return f"hint: {_short_type_name(value)} is (or holds) {what}, which cannot cross steps: {fix}"
    shared = (
        f" (saved together with {', '.join(group)}, which share objects with it)" if group else ""
    )
    return (
        f"hint: no serializer of nbflow can store {_short_type_name(value)}{shared}: "
        "compute it in the step that uses it, or keep in the step's outputs only what can be "
        "pickled (e.g. the model's parameters, not the object holding a live resource)"
    )


def _metric(value: object, name: str, step: str) -> float:
    import numbers

    if isinstance(value, bool | str | bytes):
        ok = False
    elif isinstance(value, numbers.Real):
        ok = True
    else:
        ok = hasattr(value, "__float__") and getattr(value, "ndim", 0) == 0
    if ok:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            pass
    raise StepFailure(
        f"step '{step}': metric '{name}' must be a number, "
        f"got {_short_type_name(value)} {_short_repr(value)}"
    )


def _short_repr(value: object, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        return "(unprintable)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Package installs (`!pip`, `%pip`, `!conda`, `!python -m pip`, each with `install`): in a notebook
# they install into the kernel's environment; a step's packages come from its image and the
# manifest's `requirements:`, and a local run must not install into the user's Python.
_INSTALL_LINE = re.compile(
    r"^(?P<indent>[ \t]*)[!%]+[ \t]*(?:sudo[ \t]+)?"
    r"(?:pip3?|conda|mamba|micromamba|uv[ \t]+pip|python3?(?:\.\d+)?[ \t]+-m[ \t]+pip)"
    r"[ \t]+install\b"
)


def skip_installs(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The cell without its package-install lines (each left as `pass`, so line numbers hold),
    and the (line, text) of those skipped."""
    lines = source.split("\n")
    skipped: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        match = _INSTALL_LINE.match(line)
        if match and not line.rstrip().endswith("\\"):
            skipped.append((i + 1, line.strip()))
            lines[i] = match.group("indent") + "pass"
    return ("\n".join(lines), skipped) if skipped else (source, [])


def _run_cell(
    cell: dict[str, Any],
    session: Session,
    recorder: Recorder,
    sources: CellSources,
    *,
    step: str,
    notebook: str,
) -> None:
    """Run one notebook cell (number 0: imports replayed from other steps' cells)."""
    number, source = int(cell["number"]), str(cell["source"])
    log = CellLog(number, source, bool(cell.get("setup", False)))
    recorder.cells.append(log)
    recorder.current = log
    sources.add(number, source)
    recorder.out.flush()
    sys.stderr.write(f"[nbflow] step '{step}': cell {number}\n")
    emit_event("cell", step=step, cell=number)
    source, skipped = skip_installs(source)
    for lineno, text in skipped:
        sys.stderr.write(
            f"[nbflow] step '{step}': cell {number}, line {lineno}: skipped `{text}`: a step's "
            "packages come from its image and the manifest's `requirements:`\n"
        )
    started = time.perf_counter()
    try:
        with _teed(recorder):
            error = session.run_cell(number, source)
    finally:
        log.seconds = time.perf_counter() - started
        recorder.current = None
    if error is not None:
        message = describe_failure(
            error, step=step, notebook=notebook, cell=number, sources=sources
        )
        log.error = message
        raise StepFailure(message)


def _run_step(
    program: dict[str, Any],
    session: Session,
    recorder: Recorder,
    sources: CellSources,
    *,
    inputs: dict[str, str],
    records: dict[str, object],
    outputs: dict[str, str],
    parameters: dict[str, object],
    saved: dict[str, str],
) -> dict[str, float]:
    step = str(program["step"])
    notebook = str(program.get("notebook", "the notebook"))
    missing = [p for p in program.get("parameters", []) if p not in parameters]
    if missing:
        raise StepFailure(f"step '{step}': no value for parameter(s) {', '.join(missing)}")
    session.push(dict(parameters))

    loaded: dict[str, object] = {}
    bundles: dict[str, dict[str, object]] = {}
    for name in program.get("inputs", []) or list(inputs):
        if name not in inputs:
            raise StepFailure(f"step '{step}': no artifact for input variable '{name}'")
        try:
            loaded[name] = load_input(inputs[name], records.get(name), bundles)
        except Exception as exc:
            raise StepFailure(
                f"step '{step}': cannot load input variable '{name}': {type(exc).__name__}: {exc}"
            ) from exc
    # Order: parameters, setup cells, imports replayed from other steps' cells, then the
    # inputs, then the step's cells: an input that is a new value of a setup-defined name
    # (a config a step changed) must win over the setup cell's original.
    setup = [c for c in program["cells"] if c.get("setup")]
    own = [c for c in program["cells"] if not c.get("setup")]
    for cell in setup:
        _run_cell(cell, session, recorder, sources, step=step, notebook=notebook)
    replayed = "\n".join(program.get("imports", []))
    if replayed:
        _run_cell(
            {"number": 0, "source": replayed, "setup": True},
            session,
            recorder,
            sources,
            step=step,
            notebook=notebook,
        )
    session.push(loaded)
    for cell in own:
        _run_cell(cell, session, recorder, sources, step=step, notebook=notebook)

    values: dict[str, object] = {}
    for name in program.get("outputs", []) or list(outputs):
        if name not in outputs:
            raise StepFailure(f"step '{step}': no artifact path for output variable '{name}'")
        found, value = session.get(name)
        if not found:
            raise StepFailure(
                f"step '{step}': output variable '{name}' was never assigned "
                f"(the step's cells of {notebook} ran without defining it)"
            )
        values[name] = value
    bundled: dict[str, list[str]] = {n: g for g in shared_groups(values) for n in g}
    for name, value in values.items():
        group = bundled.get(name)
        if group is not None and name != group[0]:
            continue  # saved with the first of its group
        try:
            if group is None:
                saved[name] = save_value(value, outputs[name], variable=name)
                continue
            save_bundle({n: values[n] for n in group}, {n: outputs[n] for n in group})
            saved.update(dict.fromkeys(group, BUNDLE))
        except Exception as exc:
            raise StepFailure(
                f"step '{step}': cannot save variable '{name}' of type "
                f"{_short_type_name(value)}: {exc}\n"
                + save_hint(value, exc, [n for n in (group or ()) if n != name])
            ) from exc

    metrics: dict[str, float] = {}
    for name in program.get("metrics", []):
        found, value = session.get(name)
        if not found:
            raise StepFailure(f"step '{step}': metric variable '{name}' was never assigned")
        metrics[name] = _metric(value, name, step)
    return metrics


def _enter_workdir(program: dict[str, Any]) -> None:
    """Run in the notebook's folder, as Jupyter does (relative paths, modules beside it), when
    the program names one that exists here (a local run); on a cluster it stays in the image's
    working directory."""
    workdir = program.get("workdir")
    if isinstance(workdir, str) and os.path.isdir(workdir):
        os.chdir(workdir)
        sys.path.insert(0, workdir)


def emit_event(kind: str, **fields: object) -> None:
    """Append one JSON line to the file named by `NBFLOW_EVENTS`, if set: the structured events
    (`started`, `cell`, `failed`, `finished`) that nbflow's local engine reads instead of the
    step's log text. Nothing is written on a cluster, where the variable is not set."""
    path = os.environ.get("NBFLOW_EVENTS")
    if not path:
        return
    line = json.dumps({"event": kind, "time": time.time(), **fields}, default=str)
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def main(
    program: dict[str, Any],
    *,
    inputs: dict[str, str],
    records: dict[str, object] | None = None,
    outputs: dict[str, str],
    parameters: dict[str, object],
    report_path: str | None,
) -> dict[str, Any]:
    """Run one step: parameters and inputs in, cells run as in a notebook, outputs saved.

    ``records`` holds, per input, what the pipeline recorded when the producing step saved it
    (its artifact's metadata: :func:`value_record`); an input is loaded only as it says.
    Prints ``name=value`` for each metric on stdout (the line Katib's StdOut collector reads).
    Returns ``{"metrics": {name: value}, "records": {output: record}}``, the records for the
    caller to put in each output artifact's metadata. Any failure is printed to stderr (and
    put in the report) and ends the step with ``SystemExit(1)``.
    """
    # absolute: a cell may change directory (%cd, os.chdir); it is changed back at the end
    cwd = os.getcwd()
    inputs = {k: os.path.abspath(v) for k, v in inputs.items()}
    outputs = {k: os.path.abspath(v) for k, v in outputs.items()}
    report_path = os.path.abspath(report_path) if report_path else None
    saved_path = list(sys.path)
    _enter_workdir(program)
    recorder = Recorder(sys.stdout)
    sources = CellSources()
    saved: dict[str, str] = {}
    metrics: dict[str, float] = {}
    error: str | None = None
    emit_event("started", step=program["step"])
    session = _new_session(recorder, sources)
    try:
        with _notebook_logging():
            metrics = _run_step(
                program,
                session,
                recorder,
                sources,
                inputs=inputs,
                records=dict(records or {}),
                outputs=outputs,
                parameters=parameters,
                saved=saved,
            )
    except StepFailure as failure:
        error = str(failure)
    finally:
        session.close()
        os.chdir(cwd)
        sys.path[:] = saved_path
    if error is not None:
        sys.stderr.write(error + "\n")
        sys.stderr.flush()
    if report_path:
        paths = {v: f"<input {k}>" for k, v in inputs.items()}
        paths.update({v: f"<output {k}>" for k, v in outputs.items()})
        page = render_report(
            program,
            recorder.cells,
            error=error,
            parameters=parameters,
            saved=saved,
            metrics=metrics,
            paths=dict(sorted(paths.items(), key=lambda item: -len(item[0]))),
        )
        report_path = os.path.abspath(report_path)
        try:
            os.makedirs(os.path.dirname(report_path), exist_ok=True)
            with open(report_path, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as exc:
            hint = _disk_hint(exc)
            sys.stderr.write(
                f"step '{program['step']}': cannot write its report: {exc}\n"
                + (f"hint: {hint}\n" if hint else "")
            )
            sys.stderr.flush()
            raise SystemExit(1) from None
    if error is not None:
        emit_event("failed", step=program["step"], error=error)
        raise SystemExit(1)
    emit_event("finished", step=program["step"], metrics=metrics)
    for name, value in metrics.items():
        print(f"{name}={value!r}", flush=True)
    records = {name: value_record(outputs[name], serializer) for name, serializer in saved.items()}
    return {"metrics": metrics, "records": records}
