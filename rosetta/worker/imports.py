"""Importing a backend's adapter and a task spec inside a worker, including plugins that live outside the
environment the worker runs in (a plugin installed into the engine's environment, run with a backend's own)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def import_adapter(module: str, path: str | None = None):
    """The backend's package; one this interpreter cannot find is loaded from its folder, and nothing else."""
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a parent package is missing too
        found = None
    if found is None and path is not None and Path(path, "__init__.py").exists():
        spec = importlib.util.spec_from_file_location(module, Path(path, "__init__.py"),
                                                      submodule_search_locations=[path])
        package = importlib.util.module_from_spec(spec)
        sys.modules[module] = package
        spec.loader.exec_module(package)
        return package
    return importlib.import_module(module)


def import_task(module: str, path: str | None = None):
    """The task spec; a plugin's spec this interpreter cannot find is loaded from its file."""
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    if found is None and path is not None and Path(path).exists():
        spec = importlib.util.spec_from_file_location(module, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        spec.loader.exec_module(loaded)
        return loaded
    return importlib.import_module(module)
