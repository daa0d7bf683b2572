"""Discovery: the tasks and backends that can run, found once per command.

Built-ins first (tasks/*.py specs, backends/<name>/ packages), then plugins: the entry-point groups
``rosetta.tasks`` and ``rosetta.backends``. A plugin or built-in that fails to load is a one-line warning
and, for a backend, an "unavailable" row with its error: never a crash. The contracts live in
rosetta/task.py and rosetta/backend.py; the order of backends everywhere (runs, tables, code panels) is the
registry's: the reference first, then the built-ins by name, then plugins, then the ones that cannot run.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from rosetta.backend import Backend, backend_from_module
from rosetta.errors import UsageError
from rosetta.task import Task, task_from_module

ROOT = Path(__file__).resolve().parent.parent
BACKEND_GROUP = "rosetta.backends"
TASK_GROUP = "rosetta.tasks"


class PluginWarning(UserWarning):
    """A task or backend that could not be loaded (the CLI prints it as one line: it is not the engine's bug)."""


BackendWarning = PluginWarning  # the name earlier versions used


@dataclass
class Registry:
    tasks: dict  # name -> Task, in listing order
    backends: dict  # name -> Backend, in report order

    # ------------------------------------------------------------------------------------------ tasks
    def task(self, name: str) -> Task:
        if name not in self.tasks:
            raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(self.tasks)}")
        return self.tasks[name]

    def task_options(self) -> dict:
        """Every task option by name (the command line offers each); two tasks may share one (--data-dir)."""
        options: dict = {}
        for task in self.tasks.values():
            for name, option in task.options.items():
                options.setdefault(name, option)
        return options

    # --------------------------------------------------------------------------------------- backends
    @property
    def reference(self) -> Backend | None:
        return next((b for b in self.backends.values() if b.reference and b.runnable), None)

    def runnable(self) -> list[Backend]:
        return [b for b in self.backends.values() if b.runnable]

    def rank(self, backend_name: str) -> int:
        """Where a backend's rows and panels go: the registry's order; unknown names (old runs) last."""
        names = list(self.backends)
        return names.index(backend_name) if backend_name in names else len(names)

    def resolve(self, spec: str, all_variants: bool = False) -> list[tuple[Backend, str]]:
        """`--backend` (comma-separated backend or variant names, or "all") -> (backend, variant) pairs."""
        by_variant = {v: b for b in self.runnable() for v in b.variants}
        chosen: list[tuple[Backend, str]] = []
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise UsageError("--backend is empty; give a backend name, a variant name or 'all'")
        for name in names:
            if name == "all":
                picks = [(b, v) for b in self.runnable() for v in (b.variants if all_variants else [b.default_variant])]
            elif name in self.backends and self.backends[name].runnable:
                b = self.backends[name]
                picks = [(b, v) for v in (b.variants if all_variants else [b.default_variant])]
            elif name in by_variant:
                picks = [(by_variant[name], name)]
            elif name in self.backends:
                raise UsageError(f"backend {name!r} cannot run: {self.backends[name].problem}")
            else:
                known = ", ".join(sorted(set(self.backends) | set(by_variant)))
                raise UsageError(f"unknown backend {name!r}; known backends and variants: {known}, or 'all'")
            chosen += [p for p in picks if p not in chosen]
        return chosen


def discover(root: Path = ROOT) -> Registry:
    return Registry(tasks=discover_tasks(root), backends=discover_backends(root))


# ---------------------------------------------------------------------------------------------- tasks

def discover_tasks(root: Path = ROOT) -> dict[str, Task]:
    """The task specs in tasks/ (modules defining NAME and make_problem), then plugins, in RANK order."""
    found: list[Task] = []
    for path in sorted((root / "tasks").glob("*.py")):
        if path.stem.startswith("_") or path.stem.endswith("_report") or not _declares_a_task(path):
            continue
        try:
            found.append(task_from_module(f"tasks.{path.stem}"))
        except Exception as error:  # a task under development must not take the others down
            warnings.warn(f"task tasks.{path.stem} failed to load: {error}", PluginWarning)
    for entry in entry_points(group=TASK_GROUP):
        try:
            task = task_from_module(entry.value.partition(":")[0], f"plugin {_distribution(entry)}")
        except Exception as error:
            warnings.warn(f"task plugin {entry.name!r} ({entry.value}) failed to load: {error}", PluginWarning)
            continue
        if any(t.name == task.name for t in found):
            warnings.warn(f"task plugin {entry.value} reuses the name {task.name!r}; ignored", PluginWarning)
            continue
        found.append(task)
    found.sort(key=lambda t: (t.rank, t.origin != "built-in", t.name))
    return {t.name: t for t in found}


def _declares_a_task(path: Path) -> bool:
    """A spec names itself (NAME = ...) at the top level; helpers such as tasks/cifar10.py do not."""
    text = path.read_text(encoding="utf-8")
    return "\nNAME = " in text and "\ndef make_problem(" in text


# ------------------------------------------------------------------------------------------- backends

def discover_backends(root: Path = ROOT) -> dict[str, Backend]:
    """Built-in backends, then plugins; the reference first, those that cannot run last."""
    found: dict[str, Backend] = {}
    for package in sorted((root / "backends").iterdir()):
        if not (package / "__init__.py").exists():
            continue
        module = f"backends.{package.name}"
        try:
            found[package.name] = _load(module, "built-in")
        except Exception as error:
            warnings.warn(f"backend {package.name!r} ({module}) failed to load: {error}", PluginWarning)
            found[package.name] = Backend(name=package.name, module=module, display_name=package.name,
                                          path=package, problem=f"adapter failed to load: {type(error).__name__}: "
                                                                f"{error}")
    for entry in entry_points(group=BACKEND_GROUP):
        origin = f"plugin {_distribution(entry)}"
        try:
            backend = _load(entry.module, origin)
        except Exception as error:  # a broken plugin must never take the suite down
            warnings.warn(f"backend plugin {entry.name!r} ({entry.value}) failed to load: {error}; it is an "
                          f"unavailable row (`rosetta check --backend {entry.name}` says more)", PluginWarning)
            found.setdefault(entry.name, Backend(name=entry.name, module=entry.module, origin=origin,
                                                 display_name=entry.name, path=package_dir(entry.module),
                                                 problem=f"plugin failed to load: {type(error).__name__}: {error}"))
            continue
        if backend.name in found:
            warnings.warn(f"backend plugin {entry.value} reuses the name {backend.name!r}; ignored", PluginWarning)
            continue
        found[backend.name] = backend
    references = [b.name for b in found.values() if b.reference and b.runnable]
    if len(references) > 1:
        warnings.warn(f"several backends declare REFERENCE: {', '.join(references)}; {references[0]} is used",
                      PluginWarning)
        for name in references[1:]:
            found[name].reference = False
    order = sorted(found.values(), key=lambda b: (not b.runnable, not b.reference, b.origin != "built-in", b.name))
    return {b.name: b for b in order}


def _load(module_name: str, origin: str) -> Backend:
    backend = backend_from_module(module_name, origin)
    retired = getattr(importlib.import_module(module_name), "RETIRED", None)
    if retired:  # a framework the courses teach that can no longer run: a row that says why
        backend.problem, backend.origin = retired, "retired"
    return backend


def _distribution(entry) -> str:
    return entry.dist.name if entry.dist else entry.value


def package_dir(module: str) -> Path | None:
    """The folder of a top-level package, found without running it (None for anything else)."""
    try:
        spec = importlib.util.find_spec(module) if "." not in module else None
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations or not spec.origin:
        return None
    return Path(spec.origin).parent
