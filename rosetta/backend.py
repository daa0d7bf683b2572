"""The backend contract: what a backend's adapter defines. The one place it is documented.

A backend is a Python package (built in: backends/<name>/; third-party: any package registered under the
entry-point group ``rosetta.backends``) whose ``__init__`` defines, WITHOUT importing its framework
(`rosetta list`, `run` and `check` import every adapter into the engine, which stays framework-free):

Required constants

    NAME                str   the backend's name, e.g. "myfw"
    DISPLAY_NAME        str   how reports name the framework, e.g. "PyTorch"
    IMPORT_NAME         str   the framework's module, checked with importlib.util.find_spec
    ENVIRONMENT         str   "shared" (the project's own environment) or the name of a virtual environment
                              of its own, .envs/<name>, built by `rosetta setup NAME`
    VARIANTS            dict  variant name -> one-line description of how it runs; the first is the default.
                              Names are unique across backends and start with the backend's name.
    SUPPORTS_GPU        bool
    SUPPORTS_FLOAT64    bool

Optional constants (their defaults in brackets)

    REFERENCE           bool  [False] the backend every other is compared with (exactly one: numpy by hand)
    TASK_VARIANTS       dict  [{}] task -> the variants that implement it (others: "skipped" rows saying which do)
    DOES_NOT_IMPLEMENT  dict  [{}] task -> why the framework deliberately does not implement it, and what comes
                              closest (a row in every run and report of that task)
    VARIANT_ENVIRONMENT dict  [{}] variant -> {ENV_VAR: value}, set before the framework is imported
    DEVICE_ENVIRONMENT  dict  [{}] "cpu" or "gpu" -> {ENV_VAR: value}, likewise
    PRECISION_ENVIRONMENT dict [{}] "float32" or "float64" -> {ENV_VAR: value}, likewise
    THREAD_ENVIRONMENT  tuple [()] variables the framework reads once at start-up for its thread count; the
                              worker sets each to --threads (OpenMP's and the BLAS libraries' are always set)
    SETUP_FIRST         bool  [False] `rosetta setup` installs it before the others (with a CPU build of it in
                              place, no other package can pull in its multi-GB GPU build)
    RETIRED             str   [""] the framework can no longer run, and why: a row in every list, run and report
    FRAMEWORK_MODULES   tuple [(IMPORT_NAME,)] the modules the framework loads; `rosetta check` tells a task module
                              that loads another backend's
    SYSTEM_REQUIREMENTS list  [[]] what the framework needs outside Python, each a dict:
                              {"executable": "clang"} or {"library": "libgomp.so.1"}, with "why" (one line) and
                              "apt" (the Debian package). `rosetta setup` installs it with apt-get where it can,
                              else names the command; `rosetta doctor` and `rosetta check` test it first.
    CUDA_IMAGE          str   [DEFAULT_CUDA_IMAGE] the CUDA base image its GPU build needs; the CUDA Docker images
                              are one per base (rosetta/images.py)
    DECLARED_DIFFERENCES list [[]] where the framework's result genuinely differs from the reference, each a
                              dict (rosetta/judge.py reads them): "task", "recipes" (tuple, or "*"), "precisions"
                              (tuple), "variants" (tuple, or "*"), "why" (the reason, with a link or the numpy
                              simulation that reproduces it), "band" ((low, high): the measured max relative
                              deviation), "from_first_step" (True only when the forward pass itself differs),
                              "simulation" (optional: hyper-parameter overrides under which the reference
                              reproduces the framework's curve, e.g. {"adam_epsilon": "hat"})

Required functions (each imports the framework inside its body; called only in a worker, after the import)

    version()                 -> str
    gpu_name()                -> str, or None when no GPU is visible to the framework
    synchronize(device)       wait until queued work on "cpu" or "gpu" is done
    set_threads(n)            intra- and inter-op threads, called right after the framework's import
    peak_device_memory(device) -> bytes or None
    from_numpy(array, device) -> the framework's array on "cpu" or "gpu", same dtype, shape and values
    to_numpy(x)               -> a numpy array, same dtype, shape and values (copied back to the host)

Optional functions

    step_barrier(device)      what the worker waits for after each step before reading the clock
                              [synchronize]; cheaper where the loss read-back already waits for the step
    threads_in_effect()       -> {"torch intra-op": 1, ...}: the framework's thread counts, read back
    build_info()              -> {"CUDA": ..., "cuDNN": ...}: what `rosetta doctor` shows
    gpu_build()               -> False when the installed build cannot use a GPU at all (a CPU-only wheel):
                              `rosetta doctor` then names the GPU build's install command

What an adapter may rely on: every cell runs in a fresh worker process started with the backend's
interpreter, so process-wide settings (environment variables, thread pools, a framework's global dtype
switch) made in train() or in the *_ENVIRONMENT constants last for that cell only. The worker sets the
variant's, the device's and the precision's environment before the framework is imported, imports only
the standard library, numpy, the task spec and this backend, and calls set_threads(n) when --threads is given.

Beside __init__ lies requirements.txt (optionally requirements-gpu.txt): what `rosetta setup` installs (a
plugin ships them as package data). For each task it implements, the package has a module named after the
task (rosetta/task.py) that imports its framework, numpy and the task spec, never rosetta: it is the code the
report shows side by side. The guide from nothing to a working backend: docs/adding-a-backend.md;
`rosetta check --backend NAME` checks a backend against this contract.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from rosetta.task import file_stem

REQUIRED = ("NAME", "DISPLAY_NAME", "IMPORT_NAME", "ENVIRONMENT", "VARIANTS", "SUPPORTS_GPU", "SUPPORTS_FLOAT64")
DEFAULT_CUDA_IMAGE = "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04"
FUNCTIONS = ("version", "gpu_name", "synchronize", "set_threads", "peak_device_memory", "from_numpy", "to_numpy")


@dataclass
class Backend:
    """An adapter's declarations, read once, with the contract's defaults filled in."""

    name: str
    module: str  # importable package name, e.g. "backends.torch"
    display_name: str = ""
    import_name: str = ""
    environment: str = "shared"
    variants: dict = field(default_factory=dict)
    supports_gpu: bool = False
    supports_float64: bool = True
    reference: bool = False
    task_variants: dict = field(default_factory=dict)
    does_not_implement: dict = field(default_factory=dict)
    variant_environment: dict = field(default_factory=dict)
    device_environment: dict = field(default_factory=dict)
    precision_environment: dict = field(default_factory=dict)
    thread_environment: tuple = ()
    setup_first: bool = False
    framework_modules: tuple = ()
    system_requirements: list = field(default_factory=list)
    cuda_image: str = DEFAULT_CUDA_IMAGE
    declared_differences: list = field(default_factory=list)
    path: Path | None = None
    origin: str = "built-in"
    problem: str | None = None  # why it cannot run at all (broken plugin, retired framework)

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))

    @property
    def runnable(self) -> bool:
        return self.problem is None

    def requirements(self, gpu: bool = False) -> Path | None:
        if self.path is None:
            return None
        gpu_file = self.path / "requirements-gpu.txt"
        if gpu and gpu_file.exists():
            return gpu_file
        plain = self.path / "requirements.txt"
        return plain if plain.exists() else None

    def module_for(self, task) -> tuple[str, Path] | None:
        """(importable name, file) of the backend's implementation of a task: backends/<name>/<task module>.py,
        or, for a task shipped in a package of its own, <task's IMPLEMENTATIONS package>.<backend name>."""
        stem = file_stem(task.name)
        if self.path is not None and (self.path / f"{stem}.py").exists():
            return f"{self.module}.{stem}", self.path / f"{stem}.py"
        if task.implementations:
            name = f"{task.implementations}.{self.name}"
            try:
                found = importlib.util.find_spec(name)
            except ModuleNotFoundError:
                found = None
            if found is not None and found.origin:
                return name, Path(found.origin)
        return None

    def has_module(self, task) -> bool:
        return self.module_for(task) is not None

    def implements(self, task, variant: str | None = None) -> bool:
        if variant is not None and variant not in self.variants_for(task.name):
            return False
        return self.has_module(task)

    def variants_for(self, task_name: str) -> list[str]:
        return list(self.task_variants.get(task_name, self.variants))

    def environment_for(self, variant: str, device: str, precision: str) -> dict:
        """The variables the worker sets before the framework's import."""
        return {**self.variant_environment.get(variant, {}), **self.device_environment.get(device, {}),
                **self.precision_environment.get(precision, {})}


def backend_from_module(module_name: str, origin: str) -> Backend:
    """Read an adapter's declarations; one that breaks the contract is an error naming what it lacks."""
    module = importlib.import_module(module_name)
    missing = [a for a in REQUIRED if not hasattr(module, a)]
    if missing:
        raise AttributeError(f"adapter {module_name} lacks {', '.join(missing)}")
    return Backend(
        name=module.NAME, module=module_name, display_name=module.DISPLAY_NAME,
        import_name=module.IMPORT_NAME, environment=module.ENVIRONMENT, variants=dict(module.VARIANTS),
        supports_gpu=module.SUPPORTS_GPU, supports_float64=module.SUPPORTS_FLOAT64,
        reference=bool(getattr(module, "REFERENCE", False)),
        task_variants={task: list(v) for task, v in getattr(module, "TASK_VARIANTS", {}).items()},
        does_not_implement=dict(getattr(module, "DOES_NOT_IMPLEMENT", {})),
        variant_environment=dict(getattr(module, "VARIANT_ENVIRONMENT", {})),
        device_environment=dict(getattr(module, "DEVICE_ENVIRONMENT", {})),
        precision_environment=dict(getattr(module, "PRECISION_ENVIRONMENT", {})),
        thread_environment=tuple(getattr(module, "THREAD_ENVIRONMENT", ())),
        setup_first=bool(getattr(module, "SETUP_FIRST", False)),
        framework_modules=tuple(getattr(module, "FRAMEWORK_MODULES", (module.IMPORT_NAME,))),
        system_requirements=list(getattr(module, "SYSTEM_REQUIREMENTS", [])),
        cuda_image=getattr(module, "CUDA_IMAGE", DEFAULT_CUDA_IMAGE),
        declared_differences=list(getattr(module, "DECLARED_DIFFERENCES", [])),
        path=Path(module.__file__).parent, origin=origin,
    )
