"""A sweep: one task over a grid of its sizes, each framework timed at every point, beside the machine's
ceiling measured in the same run on the same threads (`rosetta sweep`; docs/sweeps.md).

A sweep is a run (a run folder, plan.json, results.jsonl, --resume, any executor) whose cells have a role:

    ceiling  the task of checks that declares CEILING, once per framework, device and precision (float32 and
             float64): the framework's peak matmul rate and the memory's bandwidth, measured before the grid
    timed    the swept task at each point, every chosen variant, at the run's precision
    check    the same point in float64 for a few steps, compared with the reference backend (whose check
             cells are always planned, chosen or not); a float64 sweep's timed cells are their own check

The task declares which of its options are sizes and its default points (SWEEP, a tasks.protocol.Sweep), and
counts the FLOPs and bytes of one step (step_cost); the report (rosetta/report/sweep.py) divides by them.
"""

from __future__ import annotations

import itertools

from rosetta.errors import UsageError
from rosetta.plan import Cell, Plan, RunOptions, choose, given_options
from rosetta.registry import Registry

TIMED, CHECK, CEILING = "timed", "check", "ceiling"
CEILING_PRECISIONS = ("float32", "float64")
CHECK_PRECISION = "float64"


def sweepable(registry: Registry) -> list[str]:
    return [t.name for t in registry.tasks.values() if t.sweep is not None]


def sweep_task(options: RunOptions, registry: Registry):
    names = choose(options.task, registry.tasks, "task")
    if len(names) != 1:
        raise UsageError(f"a sweep takes one task, not {', '.join(names)}; tasks with sizes to sweep: "
                         f"{', '.join(sweepable(registry))}")
    task = registry.task(names[0])
    if task.sweep is None:
        raise UsageError(f"task {task.name} declares no sizes to sweep; tasks that do: "
                         f"{', '.join(sweepable(registry)) or 'none'}")
    return task


def grid(task, given: dict, quick: bool = False) -> list[dict]:
    """The points: every combination of the sizes given on the command line (lists, e.g. --hidden 12,1024),
    sizes not given left to the task's default; without any, the task's own grid (quick_grid with --quick)."""
    sizes = {name: tuple(given[name]) for name in task.sweep.sizes if given.get(name)}
    if not sizes:
        points = (task.sweep.quick_grid or task.sweep.grid) if quick else task.sweep.grid
        return [dict(point) for point in points]
    return [dict(zip(sizes, values)) for values in itertools.product(*sizes.values())]


def recipe_of(task, options: RunOptions) -> str:
    if options.recipe in (None, "all"):
        return task.sweep.recipe or task.default_recipe
    if options.recipe not in task.recipes:
        raise UsageError(f"unknown recipe {options.recipe!r} for task {task.name}; a sweep runs one of: "
                         f"{', '.join(task.recipes)}")
    return options.recipe


def plan_sweep(options: RunOptions, registry: Registry) -> Plan:
    """The cells of a sweep: the ceiling first (its figures are what the grid is read against), then each
    point from the smallest, its timed cells and its float64 checks."""
    task = sweep_task(options, registry)
    if not options.grid:
        raise UsageError("a sweep needs at least one point; give sizes such as "
                         + " ".join(f"--{name.replace('_', '-')} N,M" for name in task.sweep.sizes))
    unknown = sorted({name for point in options.grid for name in point} - set(task.sweep.sizes))
    if unknown:
        raise UsageError(f"{unknown[0]!r} is not a size of task {task.name}; its sizes: {', '.join(task.sweep.sizes)}")
    devices = ["cpu", "gpu"] if options.device == "all" else [options.device]
    picks = registry.resolve(options.backend, options.all_variants)
    recipe = recipe_of(task, options)
    size = options.size or task.sweep.size or task.quick_size
    steps = options.steps or (task.sweep.quick_steps if options.quick else task.sweep.steps)
    fixed = {**task.sweep.options, **{k: v for k, v in given_options(options, [task], registry).items()
                                      if k not in task.sweep.sizes}}
    fixed = task.locate_data(fixed)
    check_steps = task.sweep.check_steps
    for point in options.grid:
        task.validate(size, recipe, steps, **fixed, **point)
        task.validate(size, recipe, check_steps, **fixed, **point)

    reference = registry.reference
    cells = ceiling_cells(options, registry, picks, devices)
    options_tuple = tuple(sorted(fixed.items()))
    for point in options.grid:
        axes = tuple(sorted(point.items()))
        for backend, variant in picks:
            for device in devices:
                cells.append(Cell(task.name, backend.name, variant, device, recipe, options.precision, size,
                                  options.seed, steps, options.lr, options_tuple, axes, role=TIMED))
        if options.precision == CHECK_PRECISION:
            continue  # the timed cells are float64 already: they are compared with the reference themselves
        checked = list(picks)
        if reference is not None and not any(b.name == reference.name for b, _ in picks):
            checked.insert(0, (reference, reference.default_variant))
        for backend, variant in checked:
            for device in devices:
                cells.append(Cell(task.name, backend.name, variant, device, recipe, CHECK_PRECISION, size,
                                  options.seed, check_steps, options.lr, options_tuple, axes, role=CHECK))
    tasks = [task] + ([ceiling_task(registry)] if cells and cells[0].role == CEILING else [])
    return Plan(tasks=tasks, cells=cells, picks=picks)


def ceiling_task(registry: Registry):
    """The task whose CEILING recipe measures the machine's ceiling, or None (then the report says so)."""
    return next((t for t in registry.tasks.values() if t.ceiling), None)


def ceiling_cells(options: RunOptions, registry: Registry, picks: list, devices: list[str]) -> list[Cell]:
    """One ceiling cell per framework (the first chosen variant of each; the reference's always: numpy's BLAS
    is the machine's ceiling as a plain program reaches it), device and precision."""
    task = ceiling_task(registry)
    if task is None:
        return []
    frameworks = {}
    if registry.reference is not None:
        frameworks[registry.reference.name] = (registry.reference, registry.reference.default_variant)
    for backend, variant in picks:
        frameworks.setdefault(backend.name, (backend, variant))
    task.validate(options.ceiling_size, task.ceiling, None)
    return [Cell(task.name, backend.name, variant, device, task.ceiling, precision, options.ceiling_size,
                 options.seed, role=CEILING)
            for backend, variant in frameworks.values() for device in devices for precision in CEILING_PRECISIONS]
