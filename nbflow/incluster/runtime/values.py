"""Values that cross steps: save a step's outputs into their artifacts, load its inputs as the
pipeline recorded them (serializer and digest), and keep values that share objects together.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import types
from typing import Any

from .failures import StepFailure, save_hint
from .serializers import META_FILE, SERIALIZERS, Unsuitable, step_pickler
from .util import short_type_name, type_name

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
                pickler = step_pickler()
            except ImportError:  # no cloudpickle in the image: what the standard library can
                pickler = pickle.Pickler
            with open(data, "wb") as f:
                pickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(values)
            first = data
        else:
            shutil.copyfile(first, data)
        meta = {
            "serializer": BUNDLE,
            "type": type_name(values[name]),
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
            "type": type_name(value),
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


def load_inputs(
    names: list[str], paths: dict[str, str], records: dict[str, object], *, step: str
) -> dict[str, object]:
    """The step's input variables, each loaded from its artifact as its record says."""
    loaded: dict[str, object] = {}
    bundles: dict[str, dict[str, object]] = {}
    for name in names:
        if name not in paths:
            raise StepFailure(f"step '{step}': no artifact for input variable '{name}'")
        try:
            loaded[name] = load_input(paths[name], records.get(name), bundles)
        except Exception as exc:
            raise StepFailure(
                f"step '{step}': cannot load input variable '{name}': {type(exc).__name__}: {exc}"
            ) from exc
    return loaded


def save_outputs(
    values: dict[str, object], paths: dict[str, str], saved: dict[str, str], *, step: str
) -> None:
    """Save each output variable into its artifact (values that share objects together, as
    one bundle), noting the serializer of each in ``saved``."""
    bundled: dict[str, list[str]] = {n: g for g in shared_groups(values) for n in g}
    for name, value in values.items():
        group = bundled.get(name)
        if group is not None and name != group[0]:
            continue  # saved with the first of its group
        try:
            if group is None:
                saved[name] = save_value(value, paths[name], variable=name)
                continue
            save_bundle({n: values[n] for n in group}, {n: paths[n] for n in group})
            saved.update(dict.fromkeys(group, BUNDLE))
        except Exception as exc:
            raise StepFailure(
                f"step '{step}': cannot save variable '{name}' of type "
                f"{short_type_name(value)}: {exc}\n"
                + save_hint(value, exc, [n for n in (group or ()) if n != name])
            ) from exc
