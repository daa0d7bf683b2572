"""The part of `rosetta check` that runs in the backend's own environment, with its interpreter:
`python -m rosetta.worker.check_probe '<json>'`. Imports only the standard library, numpy and the backend;
prints one JSON line, last, after whatever the framework prints.

What it finds out: whether importing the adapter loads a framework (it must not: `rosetta list` imports
every adapter into the engine), which attributes and functions of the contract are missing, whether the
framework imports, what each adapter function returns, whether from_numpy / to_numpy keep dtype, shape
and values, and which other frameworks each task module pulls in.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

MARK = "ROSETTA-CHECK "


def _error(error: BaseException, path: str | None = None) -> dict:
    """The error's one-line message and the deepest frame inside the backend's folder (where to look)."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{error.filename}:{error.lineno}"
    else:
        inside = [f for f in frames if path and f.filename.startswith(path)]
        frame = (inside or frames or [None])[-1]
        where = f"{frame.filename}:{frame.lineno} in {frame.name}: {(frame.line or '').strip()}" if frame else ""
    return {"message": f"{type(error).__name__}: {error}".splitlines()[0], "where": where,
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-3000:]}


def _newly_loaded(watched, before) -> list[str]:
    return sorted(m for m in watched if m in sys.modules and m not in before)


def _call(out: dict, name: str, function, *args):
    try:
        value = function(*args)
    except Exception as error:
        out[name] = {"error": _error(error, out.get("_path"))}
        return None
    kind = next((t.__name__ for t in (bool, str, int, float) if isinstance(value, t)), type(value).__name__)
    out[name] = {"value": {"str": str, "int": int, "float": float, "bool": bool}.get(kind, repr)(value)
                 if value is not None else None, "type": kind}
    return value


def probe(spec: dict) -> dict:
    from rosetta.worker.imports import import_adapter

    out: dict = {"python": sys.version.split()[0], "executable": sys.executable}
    path = spec.get("path")
    out["_path"] = path
    # what a backend's adapter must not load at import: every backend's framework modules (the caller names
    # them from the registry; the reference's, which every environment has, is not among them)
    watched = set(spec.get("other_frameworks", ())) | set(spec.get("own_frameworks", ()))
    before = set(sys.modules)
    try:
        adapter = import_adapter(spec["module"], path)
    except BaseException as error:  # SyntaxError, ImportError, SystemExit from a broken adapter
        out["adapter_error"] = _error(error, path)
        return out
    own = getattr(adapter, "IMPORT_NAME", None)
    out["adapter_loaded"] = _newly_loaded(watched, before)
    out["missing_attributes"] = [a for a in spec.get("required", ()) if not hasattr(adapter, a)]
    out["missing_functions"] = [f for f in spec.get("functions", ()) if not callable(getattr(adapter, f, None))]
    if not own:
        return out

    started = time.perf_counter()
    try:
        importlib.import_module(own)
    except BaseException as error:
        out["framework_error"] = _error(error, path)
        return out
    out["framework_import_s"] = time.perf_counter() - started
    calls: dict = {"_path": path}
    if callable(getattr(adapter, "set_threads", None)):
        _call(calls, "set_threads", adapter.set_threads, 1)
    for name, args in (("version", ()), ("gpu_name", ()), ("peak_device_memory", ("cpu",)),
                       ("synchronize", ("cpu",))):
        if callable(getattr(adapter, name, None)):
            _call(calls, name, getattr(adapter, name), *args)
    calls.pop("_path")
    out["calls"] = calls
    out["round_trip"] = round_trip(adapter, spec.get("float64", True), path)

    framework_loaded = set(sys.modules)
    out["tasks"] = {}
    for task_module in spec.get("task_modules", ()):
        found: dict = {}
        try:
            module = importlib.import_module(task_module)
        except BaseException as error:
            found["import_error"] = _error(error, path)
        else:
            # frameworks the task module brings in beyond what its own framework loads (Keras loads its backend)
            found["loaded"] = _newly_loaded(set(spec.get("other_frameworks", ())) - {own}, framework_loaded)
            found["functions"] = sorted(n for n in dir(module) if not n.startswith("_")
                                        and callable(getattr(module, n, None)))
        out["tasks"][task_module] = found
    return out


def round_trip(adapter, float64: bool, path) -> dict:
    """from_numpy then to_numpy, per dtype: what comes back must be a numpy array equal in dtype, shape, values."""
    import numpy as np

    if not (callable(getattr(adapter, "from_numpy", None)) and callable(getattr(adapter, "to_numpy", None))):
        return {}
    results = {}
    for dtype in ("float32", "int64") + (("float64",) if float64 else ()):
        original = (np.arange(6).reshape(2, 3) * (0.1 if dtype.startswith("float") else 3) - 0.25 * (dtype != "int64"))
        original = original.astype(dtype)
        try:
            back = adapter.to_numpy(adapter.from_numpy(original, "cpu"))
        except Exception as error:
            results[dtype] = {"error": _error(error, path)}
            continue
        if not isinstance(back, np.ndarray):
            results[dtype] = {"problem": f"to_numpy returned a {type(back).__name__}, not a numpy array"}
        elif back.dtype != original.dtype:
            results[dtype] = {"problem": f"a {dtype} array came back as {back.dtype}"}
        elif back.shape != original.shape:
            results[dtype] = {"problem": f"shape {original.shape} came back as {back.shape}"}
        elif not np.array_equal(back, original):
            results[dtype] = {"problem": f"values changed: {original.ravel()[:3]} came back as {back.ravel()[:3]}"}
        else:
            results[dtype] = {}
    return results


if __name__ == "__main__":
    try:
        found = probe(json.loads(sys.argv[1]))
    except BaseException as error:  # reported as the backend's problem, not ours
        found = {"probe_error": _error(error)}
    found.pop("_path", None)
    print(MARK + json.dumps(found, default=repr), flush=True)
