"""What a run will do: its options, validated, expanded into cells (task x backend x variant x recipe x
device x the tasks' axes). Plain functions on plain data, the same for the command line and a notebook.

The options a run was made with are saved in its folder (plan.json, rosetta/runs.py); the same options
give the same cells again, which is how `--resume` finds the cells still to run.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, fields

from rosetta.backend import Backend
from rosetta.errors import UsageError
from rosetta.registry import Registry

DEVICES = ("cpu", "gpu", "all")
PRECISIONS = ("float32", "float64")
DEFAULT_THREADS = 1
EXECUTORS = ("local", "ray")
# A sweep's ceiling: matmul at n x n, large enough to reach a BLAS's peak on one core, small enough to take
# seconds per framework (docs/sweeps.md).
DEFAULT_CEILING_SIZE = 2048


@dataclass
class RunOptions:
    """Everything `rosetta run` takes; plan.json holds one of these."""

    task: str = "classifier"
    backend: str = "all"
    all_variants: bool = False
    device: str = "all"
    recipe: str = "all"
    precision: str = "float32"
    size: int | None = None
    steps: int | None = None
    lr: float | None = None
    seed: int = 0
    # One thread per framework unless asked otherwise: a pool of threads that wait for each other at every
    # operation is what a neighbour on the other core slows down most (PyTorch's step measured 10x slower
    # under load with its default of one thread per core); 0 leaves each framework its own default.
    threads: int = DEFAULT_THREADS
    timeout: int | None = None
    repeats: int = 1
    quick: bool = False
    task_options: dict = field(default_factory=dict)  # the tasks' own options (--epochs, --replicas, ...)
    executor: str = "local"
    address: str | None = None  # the Ray cluster to connect to (executor "ray")
    cells_per_node: int = 1  # how many cells may share a node (executor "ray"); 1 for timings
    # A sweep (`rosetta sweep`, rosetta/sweeps.py): its points, each a dict of the task's size options -> value;
    # None for a plain run.
    grid: list | None = None
    ceiling_size: int = DEFAULT_CEILING_SIZE

    @classmethod
    def from_dict(cls, saved: dict) -> "RunOptions":
        """From plan.json, including those written before task options were a dict of their own."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in saved.items() if k in known}
        legacy = {k: saved[k] for k in ("epochs", "batch_size", "data_dir", "download") if saved.get(k)}
        values["task_options"] = {**legacy, **(saved.get("task_options") or {})}
        if values.get("threads") is None and "threads" in saved:  # older runs: None meant each framework's own
            values["threads"] = 0
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def thread_count(self) -> int | None:
        """What the workers are told: None leaves each framework its default."""
        return self.threads or None


@dataclass(frozen=True)
class Cell:
    """One worker's job. `options` are the task's options the run gave; `axes` the ones that vary from cell
    to cell (each value of an "ints" option, e.g. --replicas 1,2), which are part of the cell's id."""

    task: str
    backend: str
    variant: str
    device: str
    recipe: str
    precision: str
    size: int
    seed: int
    steps: int | None = None
    lr: float | None = None
    options: tuple = ()  # (name, value) pairs, sorted
    axes: tuple = ()  # (name, value) pairs of the options that vary between cells
    role: str = ""  # in a sweep: "timed", "check" or "ceiling" (rosetta/sweeps.py); "" in a plain run

    @property
    def id(self) -> str:
        base = f"{self.task}/{self.variant}/{self.recipe}/{self.precision}/{self.device}"
        return base + "".join(f"/{name}={value}" for name, value in self.axes)

    @property
    def option_values(self) -> dict:
        return dict(self.options + self.axes)

    def fields(self) -> dict:
        """The cell as the record states it."""
        return {"cell": self.id, "task": self.task, "backend": self.backend, "variant": self.variant,
                "device": self.device, "recipe": self.recipe, "precision": self.precision, "size": self.size,
                "seed": self.seed, "steps": self.steps, "lr": self.lr, "options": self.option_values,
                **({"role": self.role} if self.role else {})}


@dataclass
class Plan:
    tasks: list  # Task objects, in the run's order
    cells: list  # Cell objects
    picks: list  # (Backend, variant) pairs chosen


def choose(value: str, allowed, what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return list(allowed)
    for name in names:
        if name not in allowed:
            raise UsageError(f"unknown {what} {name!r}; choose from {', '.join(allowed)} or 'all'")
    if not names:
        raise UsageError(f"no {what} given; choose from {', '.join(allowed)} or 'all'")
    return names


def plan(options: RunOptions, registry: Registry) -> Plan:
    """Validate a run's options and expand them into cells; every unavailable backend (retired, broken
    plugin) is one row per task saying why. Bad input is a UsageError naming what to do."""
    check_common(options)
    if options.grid is not None:
        from rosetta.sweeps import plan_sweep  # imported here: the sweep builds on this module
        return plan_sweep(options, registry)
    task_names = choose(options.task, registry.tasks, "task")
    tasks = [registry.task(name) for name in task_names]
    devices = ["cpu", "gpu"] if options.device == "all" else [options.device]
    picks = registry.resolve(options.backend, options.all_variants)
    known_recipes = list(dict.fromkeys(r for t in tasks for r in t.recipes))
    recipes = None if options.recipe == "all" else choose(options.recipe, known_recipes, "recipe")
    given = given_options(options, tasks, registry)
    unavailable = ([b for b in registry.backends.values() if not b.runnable]
                   if "all" in options.backend.split(",") else [])
    cells: list[Cell] = []
    for task in tasks:
        task_options = {k: v for k, v in given.items() if k in task.options}
        task_options = task.locate_data(task_options)  # found (or downloaded) here, once, for every worker
        cells += plan_task(task, options, picks, devices, recipes, task_options)
        cells += [Cell(task.name, b.name, b.name, "-", "-", options.precision, options.size or task.default_size,
                       options.seed, options.steps, options.lr) for b in unavailable]
    return Plan(tasks=tasks, cells=cells, picks=picks)


def check_common(options: RunOptions) -> None:
    """What every run and sweep must get right: device, precision, executor."""
    if options.device not in DEVICES:
        raise UsageError(f"unknown device {options.device!r}; choose from {', '.join(DEVICES)}")
    if options.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {options.precision!r}; choose from {', '.join(PRECISIONS)}")
    if options.executor not in EXECUTORS:
        raise UsageError(f"unknown executor {options.executor!r}; choose from {', '.join(EXECUTORS)}")
    from rosetta.executors import unavailable  # imported here: the executors import this module
    if unavailable(options.executor):
        raise UsageError(unavailable(options.executor))


def given_options(options: RunOptions, tasks: list, registry: Registry) -> dict:
    """The task options the run was given; one no chosen task takes is a UsageError naming the tasks that do."""
    given = {k: v for k, v in options.task_options.items() if v not in (None, False)}
    refused = [name for name in given if not any(name in t.options for t in tasks)]
    if refused:
        takers = [t.name for t in registry.tasks.values() if refused[0] in t.options]
        flag = "--" + refused[0].replace("_", "-")
        raise UsageError(f"{flag} is not an option of task {', '.join(t.name for t in tasks)}; "
                         f"it applies to task {', '.join(takers) or 'none'}")
    return given


def plan_task(task, options: RunOptions, picks: list[tuple[Backend, str]], devices: list[str],
              recipes: list[str] | None, task_options: dict) -> list[Cell]:
    task_recipes = [r for r in recipes if r in task.recipes] if recipes else list(task.recipes)
    if not task_recipes:
        raise UsageError(f"task {task.name} has none of the recipes {', '.join(recipes)}; "
                         f"its recipes: {', '.join(task.recipes)}")
    size = options.size or (task.quick_size if options.quick else task.default_size)
    fixed = {k: v for k, v in task_options.items() if not task.options[k].axis}
    axes = {}
    for name, option in task.options.items():
        if option.axis:
            values = task_options.get(name) or option.default or ()
            values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
            if option.baseline is not None:
                values = tuple(dict.fromkeys((option.baseline, *values)))
            axes[name] = values
    combinations = [tuple(zip(axes, values)) for values in itertools.product(*axes.values())] or [()]
    cells = []
    for recipe in task_recipes:
        steps = options.steps or (task.quick_steps.get(recipe) if options.quick else None)
        for combination in combinations:
            task.validate(size, recipe, steps, **fixed, **dict(combination))
        for backend, variant in picks:
            for device in devices:
                for combination in combinations:
                    cells.append(Cell(task.name, backend.name, variant, device, recipe, options.precision, size,
                                      options.seed, steps, options.lr, tuple(sorted(fixed.items())), combination))
    return cells
