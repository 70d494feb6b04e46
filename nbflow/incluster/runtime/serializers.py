"""How a value is stored in an artifact folder: one serializer per kind of value, tried in
order (:data:`SERIALIZERS`), and the pickler that saves notebook functions by value.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pickle
import sys
import types
from typing import Any, Protocol

from .util import importable

META_FILE = "nbflow.json"


class Serializer(Protocol):
    name: str

    def matches(self, value: object) -> bool: ...

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None: ...

    def load(self, dirpath: str) -> object: ...


class Unsuitable(Exception):
    """A serializer matched a value but cannot store it faithfully: the next one is tried."""


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
        return importable("pyarrow")

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
        if _options(dirpath).get("module") == "tensorflow" or not importable("keras"):
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
        return importable("joblib")

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
                Pickler=step_pickler(), __name__="cloudpickle"
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
        return importable("cloudpickle")

    def save(self, value: object, dirpath: str) -> dict[str, Any] | None:
        with open(os.path.join(dirpath, self.file), "wb") as f:
            step_pickler()(f, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
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


def step_pickler() -> Any:
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
