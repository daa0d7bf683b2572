"""What can run: the tasks (tasks/) and the backends (backends/, plus third-party plugins).

The backend contract
--------------------
A backend is a Python package (built in: backends/<name>/; third-party: any package registered under
the entry-point group ``rosetta.backends``) whose ``__init__`` defines, WITHOUT importing its framework:

    NAME                str   the backend's name, e.g. "torch"
    DISPLAY_NAME        str   how reports name the framework, e.g. "PyTorch"
    IMPORT_NAME         str   the framework's module, checked with importlib.util.find_spec
    ENVIRONMENT         str   "shared" (the project's own environment) or the name of a virtual
                              environment of its own (built by `rosetta setup NAME`)
    VARIANTS            dict  variant name -> one-line description; the first is the default.
                              Names are unique across backends and start with the backend's name.
    SUPPORTS_GPU        bool
    SUPPORTS_FLOAT64    bool
    VARIANT_ENVIRONMENT dict  optional: variant -> {ENV_VAR: value} set before the framework is imported
    DEVICE_ENVIRONMENT  dict  optional: "cpu" or "gpu" -> {ENV_VAR: value}, likewise
    TASK_VARIANTS       dict  optional: task -> the variants that implement it (default: every variant);
                              the others are "skipped" rows for that task
    KNOWN_DEVIATIONS    dict  optional: variant -> why its float64 curve cannot match numpy's to rounding
                              (a framework bug, with its link); tests expect that failure, reports show it
    version()                 -> str
    gpu_name()                -> str or None when no GPU is visible to the framework
    synchronize(device)       wait until queued work on "cpu" or "gpu" is done
    step_barrier(device)      optional: what the worker waits for after each step, before reading the clock
                              (default: synchronize); for a framework whose loss read-back already waits for
                              the whole step, something cheaper than a device-wide barrier
    set_threads(n)            intra/inter-op threads, called right after the framework is imported
    threads_in_effect()       optional -> {"torch intra-op": 1, ...}: the framework's thread counts, read back
    peak_device_memory(device) -> bytes or None
    from_numpy(array, device) -> the framework's array on "cpu" or "gpu", same dtype, shape and values
    to_numpy(x)               -> a numpy array, same dtype, shape and values (copied back to the host)
    build_info()              optional -> {"CUDA": ..., "cuDNN": ...}: what `rosetta doctor` shows

Every function imports the framework inside its body (`rosetta list` imports every adapter into the
engine, which must stay framework-free); they are called only in a worker, after the framework's import.
Beside __init__ lies requirements.txt (optionally requirements-gpu.txt): what `rosetta setup` installs
(a plugin ships them as package data). For each task it implements, the package has a module named after
the task ("tensor-ops" -> tensor_ops.py) with the function the task spec asks for (see tasks/<task>.py:
for the classifier, `train(problem, device, variant)`, a generator). A task module imports its framework,
numpy and the task spec (tasks.<task>), never rosetta: it is the code the report shows side by side.

A plugin registers the adapter package in its pyproject.toml:
    [project.entry-points."rosetta.backends"]
    myframework = "my_package.rosetta_backend"

The guide, from nothing to a working backend: docs/adding-a-backend.md. `rosetta check --backend NAME`
(rosetta/check.py) checks a backend against this contract and its tasks against the numpy reference.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from rosetta.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINT_GROUP = "rosetta.backends"


class BackendWarning(UserWarning):
    """A backend that could not be loaded (the CLI prints it as one line: it is not the engine's bug)."""

TASKS = {
    "tensor-ops": "tasks.tensor_ops",
    "autograd": "tasks.autograd",
    "perceptron": "tasks.perceptron",
    "classifier": "tasks.classifier",
    "cnn": "tasks.cnn",
}

REQUIRED_ATTRIBUTES = ("NAME", "DISPLAY_NAME", "IMPORT_NAME", "ENVIRONMENT", "VARIANTS",
                       "SUPPORTS_GPU", "SUPPORTS_FLOAT64")

# Frameworks the seed courses teach that can no longer run: a row in `rosetta list` and in reports.
RETIRED = {
    "cntk": ("CNTK", "not runnable: its last release (2.7, 2019) ships no wheel that installs on a "
                     "current Python, and Microsoft ended its development"),
}


@dataclass
class Backend:
    name: str
    module: str  # importable package name, e.g. "backends.torch"
    display_name: str = ""
    import_name: str = ""
    environment: str = "shared"
    variants: dict = field(default_factory=dict)
    supports_gpu: bool = False
    supports_float64: bool = True
    variant_environment: dict = field(default_factory=dict)
    device_environment: dict = field(default_factory=dict)
    known_deviations: dict = field(default_factory=dict)
    task_variants: dict = field(default_factory=dict)
    path: Path | None = None
    origin: str = "built-in"
    problem: str | None = None  # why it cannot run at all (broken plugin, retired framework)

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))

    def requirements(self, gpu: bool = False) -> Path | None:
        if self.path is None:
            return None
        gpu_file = self.path / "requirements-gpu.txt"
        if gpu and gpu_file.exists():
            return gpu_file
        plain = self.path / "requirements.txt"
        return plain if plain.exists() else None

    def implements(self, task: str, variant: str | None = None) -> bool:
        if variant is not None and task in self.task_variants and variant not in self.task_variants[task]:
            return False
        if self.path is not None:
            return (self.path / f"{task_module_name(task)}.py").exists()
        return importlib.util.find_spec(f"{self.module}.{task_module_name(task)}") is not None


def package_dir(module: str) -> Path | None:
    """The folder of a top-level package, found without running it (None for anything else)."""
    try:
        spec = importlib.util.find_spec(module) if "." not in module else None
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations or not spec.origin:
        return None
    return Path(spec.origin).parent


def task_module_name(task: str) -> str:
    return task.replace("-", "_")


def load_task(name: str):
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name])


def backend_from_module(module_name: str, origin: str) -> Backend:
    module = importlib.import_module(module_name)
    missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(module, a)]
    if missing:
        raise AttributeError(f"adapter {module_name} lacks {', '.join(missing)}")
    return Backend(
        name=module.NAME, module=module_name, display_name=module.DISPLAY_NAME,
        import_name=module.IMPORT_NAME, environment=module.ENVIRONMENT, variants=dict(module.VARIANTS),
        supports_gpu=module.SUPPORTS_GPU, supports_float64=module.SUPPORTS_FLOAT64,
        variant_environment=dict(getattr(module, "VARIANT_ENVIRONMENT", {})),
        device_environment=dict(getattr(module, "DEVICE_ENVIRONMENT", {})),
        known_deviations=dict(getattr(module, "KNOWN_DEVIATIONS", {})),
        task_variants={task: list(v) for task, v in getattr(module, "TASK_VARIANTS", {}).items()},
        path=Path(module.__file__).parent, origin=origin,
    )


def discover() -> dict[str, Backend]:
    """Built-in backends, then plugins. One that fails to load (a plugin, or a built-in backend under
    development) is a warning and an unavailable row, never a crash."""
    found: dict[str, Backend] = {}
    # numpy first: it is the reference every other row is compared with
    for package in sorted((ROOT / "backends").iterdir(), key=lambda p: (p.name != "numpy", p.name)):
        if (package / "__init__.py").exists():
            try:
                backend = backend_from_module(f"backends.{package.name}", "built-in")
            except Exception as error:
                warnings.warn(f"backend {package.name!r} (backends.{package.name}) failed to load: {error}",
                              BackendWarning)
                found[package.name] = Backend(name=package.name, module=f"backends.{package.name}",
                                              display_name=package.name, path=package,
                                              problem=f"adapter failed to load: {type(error).__name__}: {error}")
                continue
            found[backend.name] = backend
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"plugin {entry.dist.name if entry.dist else entry.value}"
        try:
            backend = backend_from_module(entry.module, origin)
        except Exception as error:  # a broken plugin must never take the suite down
            warnings.warn(f"backend plugin {entry.name!r} ({entry.value}) failed to load: {error}; it is an "
                          f"unavailable row (`rosetta check --backend {entry.name}` says more)", BackendWarning)
            found.setdefault(entry.name, Backend(name=entry.name, module=entry.module, origin=origin,
                                                 display_name=entry.name, path=package_dir(entry.module),
                                                 problem=f"plugin failed to load: {type(error).__name__}: {error}"))
            continue
        if backend.name in found:
            warnings.warn(f"backend plugin {entry.value} reuses the name {backend.name!r}; ignored", BackendWarning)
            continue
        found[backend.name] = backend
    for name, (display, reason) in RETIRED.items():
        found.setdefault(name, Backend(name=name, module="", display_name=display, origin="retired",
                                       problem=reason))
    return found


def runnable(backends: dict[str, Backend]) -> list[Backend]:
    return [b for b in backends.values() if b.problem is None]


def resolve(spec: str, backends: dict[str, Backend], all_variants: bool = False) -> list[tuple[Backend, str]]:
    """Turn `--backend` (comma-separated backend or variant names, or "all") into (backend, variant) pairs."""
    by_variant = {v: b for b in runnable(backends) for v in b.variants}
    chosen: list[tuple[Backend, str]] = []
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise UsageError("--backend is empty; give a backend name, a variant name or 'all'")
    for name in names:
        if name == "all":
            picks = [(b, v) for b in runnable(backends)
                     for v in (b.variants if all_variants else [b.default_variant])]
        elif name in backends and backends[name].problem is None:
            b = backends[name]
            picks = [(b, v) for v in (b.variants if all_variants else [b.default_variant])]
        elif name in by_variant:
            picks = [(by_variant[name], name)]
        elif name in backends:
            raise UsageError(f"backend {name!r} cannot run: {backends[name].problem}")
        else:
            known = ", ".join(sorted(set(backends) | set(by_variant)))
            raise UsageError(f"unknown backend {name!r}; known backends and variants: {known}, or 'all'")
        chosen += [p for p in picks if p not in chosen]
    return chosen
