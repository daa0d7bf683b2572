"""What one backend's environment holds: `python -m rosetta.worker.probe backends.torch`, run with that backend's
interpreter by `rosetta doctor`. Prints one JSON line, last, after whatever the framework prints."""

from __future__ import annotations

import importlib
import json

import numpy
import platform
import sys

MARK = "ROSETTA-PROBE "


def probe(module: str, path: str | None = None) -> dict:
    from rosetta.worker.imports import import_adapter

    adapter = import_adapter(module, path)
    importlib.import_module(adapter.IMPORT_NAME)
    build = getattr(adapter, "build_info", lambda: {})()
    gpu_build = getattr(adapter, "gpu_build", lambda: None)()  # False: a CPU-only build of the framework
    return {"version": adapter.version(), "gpu": adapter.gpu_name(), "build": build, "gpu_build": gpu_build,
            "python": platform.python_version(), "numpy_version": numpy.__version__, "executable": sys.executable}


if __name__ == "__main__":
    try:
        found = probe(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    except Exception as error:  # reported as the backend's problem, not ours
        found = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
    print(MARK + json.dumps(found), flush=True)
