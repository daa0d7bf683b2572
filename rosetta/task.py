"""The task contract: what a task spec defines, with its declared defaults. The one place it is documented.

A task is one exercise written once, framework-free: a module (built in: tasks/<name>.py; third-party:
any module registered under the entry-point group ``rosetta.tasks``) that imports numpy and the standard
library only, because it runs inside every backend's worker, whatever that environment holds. Each backend
implements it in ``backends/<backend>/<module name>.py`` (``"tensor-ops"`` -> ``tensor_ops.py``).

Module-level names (required ones in capitals without a default):

    NAME              str   the task's name on the command line, e.g. "classifier"
    SUMMARY           str   one line for `rosetta list` and the report
    KIND              str   "training" (default) or "checks" (see below)
    RECIPES           dict  recipe name -> an object with .name and .summary; the first is the default
    DEFAULT_SIZE      int   the size a run uses unless --size is given
    QUICK_SIZE        int   `--quick`'s size (default: DEFAULT_SIZE)
    QUICK_STEPS       dict  recipe -> `--quick`'s step count (default: {}: the recipe's own)
    CHECK_SIZE        int   `rosetta check`'s size (default: the smallest size every recipe validates at)
    TIMEOUT_S         int   seconds before a cell is killed (default 900; --timeout overrides)
    RANK              int   where the task comes in `rosetta list` and `--task all` (default 100; plugins
                            come after built-ins of the same rank)
    OPTIONS           dict  name -> tasks.protocol.TaskOption: the options only this task takes
                            (--epochs, --replicas, --data-dir); the command line offers each task's own
    BACKEND_FUNCTIONS tuple the functions each backend module must define (default ("train",) for training)

    Agreement with the reference backend (rosetta/judge.py applies it; every view shows its verdict):
    AGREEMENT_SERIES  str   the series compared: "losses" (default), or a key of report_data
    AGREEMENT_STEPS   int   the first steps judged (default None: the whole series)
    AGREEMENT_TOLERANCE dict precision -> largest relative deviation that still "agrees"
                            (default {}: no verdict, the deviation is shown only)
    SAME_PROBLEM      tuple record fields that must be equal for two records to be runs of one problem
                            (default: task, recipe, precision, size, seed, steps and the task's options)

    make_problem(size, seed, recipe, precision, steps, lr, **options) -> Problem
                            every input as numpy arrays: data, initial weights, batch order, hyper-parameters;
                            options are the task's OPTIONS (only those given)
    validate(size, recipe, steps, **options)
                            raise ValueError with a one-line message saying what to do
    locate_data(options) -> options
                            optional, called once by the planner in the engine (it may download, show a
                            progress bar, raise ValueError): resolve the data the cells will read, so that
                            every worker reads the same folder
    IMPLEMENTATIONS   str   optional, for a task shipped in a package of its own: a package holding one module per
                            backend it brings an implementation for, named after the backend (my_task_impl.torch);
                            a backend's own folder (backends/<name>/<task module>.py) wins over it
    Sweeps (`rosetta sweep`: the task over a grid of its sizes, against the machine's ceiling; docs/sweeps.md):
    SWEEP             tasks.protocol.Sweep: the options that are sizes, the default grid, steps (default None:
                            the task cannot be swept)
    step_cost(size, recipe, precision="float32", **options) -> tasks.protocol.StepCost
                            required with SWEEP: the FLOPs (all, and those of matrix products) and the least bytes
                            (in that precision) of one training step at a point, counted from the shapes in numpy
                            or plain Python; options are the task's, as make_problem takes them
    CEILING           str   for a task of checks: the recipe that measures the machine's ceiling (the peak matmul
                            rate and a large copy's bandwidth, in its record's metrics peak_matmul_gflops and
                            bandwidth_gbs); a sweep runs it for each framework beside the grid

    sections(view) -> list[Section]
                            optional, in a module beside the spec named <module>_report (tasks/cnn_report.py):
                            the task's own parts of report.md and report.html (rosetta/report/sections.py)

Two kinds of task:

- "training": each backend module defines ``train(problem, device, variant)``, a generator that follows the
  step protocol of tasks/protocol.py (yield each step's loss; Chunk and Compiled for steps run inside one
  call) and returns the task's Result. The spec defines ``check(problem, result, losses) -> dict``: the
  metrics and a "verdict" ("ok" or what is wrong), and optionally ``summary_for_report(problem, result)``,
  small JSON-able data kept in the record for the report.
- "checks": the spec defines ``run_backend(problem, module, adapter, device, variant) -> dict`` (verdict,
  metrics, report_data), which runs in the worker in place of a training loop.

A backend that cannot run a cell for a reason of its own (a level its API does not have, fewer GPUs than
replicas) raises tasks.protocol.CannotRun("why") from train() or run_backend(): the cell is a "skipped" row
that says why.

What a task may rely on: each cell runs in a fresh worker process with the backend's interpreter; make_problem
is called there, once per cell, with the cell's size, seed, recipe, precision, steps, lr and options.

Adding a task is one spec module, one module per backend, and optionally its report module: nothing in
rosetta/ changes. A task can also ship as a package of its own (a plugin, registered under the entry-point
group ``rosetta.tasks``), with its backend modules beside it (IMPLEMENTATIONS). The guide: docs/adding-a-task.md.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from types import ModuleType

from rosetta.errors import UsageError

KINDS = ("training", "checks")
DEFAULT_TIMEOUT_S = 900
COMMON_IDENTITY = ("task", "recipe", "precision", "size", "seed", "steps", "lr")


@dataclass
class Task:
    """A task spec's declarations, read once, with the contract's defaults filled in."""

    name: str
    module_name: str  # importable, e.g. "tasks.classifier"
    summary: str
    kind: str
    recipes: dict
    default_size: int
    quick_size: int
    quick_steps: dict
    check_size: int | None
    timeout_s: int
    options: dict  # name -> TaskOption
    backend_functions: tuple
    agreement_series: str
    agreement_steps: int | None
    agreement_tolerance: dict
    same_problem: tuple
    rank: int = 100
    implementations: str | None = None  # a package of backend modules shipped with the task (a plugin's)
    sweep: object = None  # tasks.protocol.Sweep, or None: the task has no sizes to sweep
    step_cost: object = None  # the spec's step_cost(size, recipe, precision, **options) -> StepCost
    ceiling: str | None = None  # the recipe that measures the machine's ceiling (a task of checks)
    origin: str = "built-in"
    path: str | None = None  # the spec's file, for a worker in an environment that cannot import it
    module: ModuleType | None = field(default=None, repr=False)

    @property
    def file_stem(self) -> str:
        """The name of each backend's module for this task: "tensor-ops" -> "tensor_ops"."""
        return file_stem(self.name)

    @property
    def training(self) -> bool:
        return self.kind == "training"

    @property
    def default_recipe(self) -> str:
        return next(iter(self.recipes))

    def validate(self, size: int, recipe: str, steps: int | None, **options) -> None:
        try:
            self.module.validate(size, recipe, steps, **options)
        except ValueError as error:
            raise UsageError(str(error)) from None

    def locate_data(self, options: dict) -> dict:
        locate = getattr(self.module, "locate_data", None)
        if locate is None:
            return options
        try:
            return locate(dict(options))
        except ValueError as error:
            raise UsageError(str(error)) from None

    def report_module(self):
        """The module of the task's report sections (<spec module>_report), or None."""
        name = f"{self.module_name}_report"
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            return None


def file_stem(task_name: str) -> str:
    return task_name.replace("-", "_")


def task_from_module(module_name: str, origin: str = "built-in") -> Task:
    """Read a task spec's declarations; a spec that breaks the contract is an error naming what is missing."""
    module = importlib.import_module(module_name)
    missing = [name for name in ("NAME", "SUMMARY", "RECIPES", "DEFAULT_SIZE", "make_problem", "validate")
               if not hasattr(module, name)]
    kind = getattr(module, "KIND", "training")
    if kind not in KINDS:
        raise AttributeError(f"task {module_name}: KIND {kind!r} is not one of {', '.join(KINDS)}")
    needed = "check" if kind == "training" else "run_backend"
    if not hasattr(module, needed):
        missing.append(needed)
    if missing:
        raise AttributeError(f"task {module_name} lacks {', '.join(missing)} (see rosetta/task.py)")
    options = dict(getattr(module, "OPTIONS", {}))
    sweep = getattr(module, "SWEEP", None)
    if sweep is not None:
        unknown = [name for name in sweep.sizes if name not in options]
        if unknown or not hasattr(module, "step_cost"):
            raise AttributeError(f"task {module_name}: SWEEP " + (f"names {unknown[0]!r}, not one of its OPTIONS"
                                 if unknown else "needs step_cost(size, recipe, precision, **options)"))
    ceiling = getattr(module, "CEILING", None)
    if ceiling is not None and ceiling not in getattr(module, "RECIPES", {}):
        raise AttributeError(f"task {module_name}: CEILING {ceiling!r} is not one of its RECIPES")
    accepted = inspect.signature(module.make_problem).parameters
    # an option make_problem does not take is one locate_data consumes (e.g. --download)
    refused = [name for name in options if name not in accepted and not hasattr(module, "locate_data")]
    if refused:
        raise AttributeError(f"task {module_name}: make_problem does not take its option {refused[0]!r}")
    return Task(
        name=module.NAME, module_name=module_name, summary=module.SUMMARY, kind=kind,
        recipes=dict(module.RECIPES), default_size=module.DEFAULT_SIZE,
        quick_size=getattr(module, "QUICK_SIZE", module.DEFAULT_SIZE),
        quick_steps=dict(getattr(module, "QUICK_STEPS", {})),
        check_size=getattr(module, "CHECK_SIZE", None),
        timeout_s=getattr(module, "TIMEOUT_S", DEFAULT_TIMEOUT_S), options=options,
        backend_functions=tuple(getattr(module, "BACKEND_FUNCTIONS", ("train",) if kind == "training" else ())),
        agreement_series=getattr(module, "AGREEMENT_SERIES", "losses"),
        agreement_steps=getattr(module, "AGREEMENT_STEPS", None),
        agreement_tolerance=dict(getattr(module, "AGREEMENT_TOLERANCE", {})),
        same_problem=tuple(getattr(module, "SAME_PROBLEM", COMMON_IDENTITY + tuple(sorted(options)))),
        rank=int(getattr(module, "RANK", 100)),
        implementations=getattr(module, "IMPLEMENTATIONS", None),
        sweep=sweep, step_cost=getattr(module, "step_cost", None), ceiling=ceiling,
        origin=origin, path=getattr(module, "__file__", None), module=module,
    )
