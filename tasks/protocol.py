"""The few named types a task spec shares with its backends and with the engine (standard library only).

The step protocol. A training backend's `train(problem, device, variant)` is a generator; what it yields
tells the worker what happened since the last yield:

    yield loss                       one training step ran; its loss, a Python float (the common case:
                                     reading it back also waits for the device, so the clock is honest)
    yield Chunk(losses)              several steps ran inside one call (a compiled loop, Keras' fit());
                                     the worker gives each an equal share of the call's time
    yield Chunk(losses, step_seconds=times)
                                     the same, where the backend timed each step inside the call
    yield Compiled()                 setup, tracing and compilation end here; training starts
                                     (reported as compile_s, apart from the steps)

and it returns the task's Result. Task specs re-export Chunk and Compiled, so a backend module imports
them from its task, e.g. `from tasks.classifier import Chunk, Result`.

TaskOption: an option of `rosetta run` that only some tasks take (--epochs, --replicas, --data-dir). A
task spec lists its own in OPTIONS; the command line offers the union of every discovered task's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class Chunk(list):
    """The losses of several steps run in one call, in order; `step_seconds`, where the backend timed each
    step inside the call, has one entry per loss."""

    def __init__(self, losses, step_seconds=None):
        super().__init__(float(v) for v in losses)
        self.step_seconds = None if step_seconds is None else [float(s) for s in step_seconds]
        if self.step_seconds is not None and len(self.step_seconds) != len(self):
            raise ValueError(f"Chunk of {len(self)} losses with {len(self.step_seconds)} step times")


class Compiled:
    """Yielded once, before the first step, by a backend that compiles ahead of training."""

    def __repr__(self) -> str:
        return "Compiled()"


@dataclass(frozen=True)
class TaskOption:
    """A task-specific option of `rosetta run`, offered as --<name with dashes>.

    kind: "int" (a whole number >= minimum), "ints" (a comma-separated list of them: each value is a cell
    of its own, an axis of the run like the recipes), "path" (a file or folder), "flag" (on or off).
    default: what the task uses when the user gives nothing (None: the recipe decides).
    baseline: for an axis, a value always run beside the ones asked for, to compare them with (the
    data-parallel task runs 1 replica beside --replicas N).
    """

    name: str
    help: str
    kind: str = "int"
    default: object = None
    minimum: int = 1
    baseline: int | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def axis(self) -> bool:
        return self.kind == "ints"

    def parse(self, text: str):
        """The option's value from its command-line text; ValueError says what it must be."""
        if self.kind == "path":
            return text
        if self.kind == "flag":
            return bool(text)
        values = []
        for part in (text.split(",") if self.kind == "ints" else [text]):
            try:
                value = int(part.strip())
            except ValueError:
                raise ValueError(f"{self.flag} {text!r}: {part.strip()!r} is not a whole number") from None
            if value < self.minimum:
                raise ValueError(f"{self.flag} {value} must be at least {self.minimum}")
            values.append(value)
        if self.kind == "ints":
            return tuple(dict.fromkeys(values))
        return values[0]


class CannotRun(Exception):
    """Raised by a backend's train() or run_backend() for a cell it cannot run, for a reason of its own (a level
    its API does not have, fewer GPUs than replicas): the cell becomes a "skipped" row whose verdict is the
    message, e.g. raise CannotRun("needs 2 GPUs, 1 visible")."""


@dataclass(frozen=True)
class Checks:
    """The recipe of a task of checks, which has nothing to tune: its name and one line on what it checks."""

    name: str
    summary: str = ""


def curve_problem(losses, steps: int, what: str = "losses") -> str | None:
    """What is wrong with a training's per-step curve (a verdict for the task's check()), or None when every
    step has a value and every value is finite."""
    if len(losses) != steps:
        return f"wrong: {len(losses)} {what} for {steps} steps"
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    return f"diverged at step {bad[0]}" if bad else None


@dataclass(frozen=True)
class StepCost:
    """The arithmetic of one training step at one size, counted by hand from the model's shapes (a task's
    step_cost(); `rosetta sweep` divides by it). Counted, never measured, so that every framework is held to
    the same work: a framework that does more (or less) than this shows up as a lower (or higher) rate.

    flops        every floating-point operation of the forward pass, the backward pass and the update
                 (a multiply-add is 2; exp, log, max and compare count 1 each)
    dense_flops  the part of flops done by matrix products and convolutions: what a matmul peak applies to
    bytes        the least one step must move between memory and the processor: the batch read, the
                 parameters (and the optimizer's state) read and written once. Activations are not counted:
                 a fully fused step could keep them in cache, so any traffic above this is the framework's
    activation_bytes
                 what a step that runs each operation as a kernel of its own moves on top of `bytes`: every
                 intermediate array (the forward activations, the gradients flowing back) written once and
                 read once. Default 0: not counted. The report draws both rooflines: the fused one (bytes)
                 and the unfused one (bytes + activation_bytes), which is where most frameworks live
    """

    flops: float
    dense_flops: float
    bytes: float
    activation_bytes: float = 0.0

    @property
    def intensity(self) -> float:
        """FLOPs per byte: where the step sits on the roofline."""
        return self.flops / self.bytes if self.bytes else math.inf


@dataclass(frozen=True)
class Sweep:
    """The sizes of a task that `rosetta sweep` may vary (a task's SWEEP).

    sizes        the option names that are sizes (each one of the task's OPTIONS), e.g. ("hidden", "batch_size")
    grid         the default points, smallest first: one dict per point, option name -> value; the course's
                 own size first, so that the sweep starts where the task's other runs are
    quick_grid   `--quick`'s points (default: grid)
    steps        timed steps per point (the first ones are warm-up: rosetta/worker/timing.py)
    quick_steps  `--quick`'s timed steps
    check_steps  steps of the float64 run at each point that is compared with the reference
    recipe       the recipe swept (default: the task's first)
    size         the data set size of every cell (default: the task's QUICK_SIZE)
    options      task options every cell of a sweep takes, whatever the point (e.g. a smaller evaluation set,
                 so that a cell's time goes to the steps being timed)
    """

    sizes: tuple
    grid: tuple
    quick_grid: tuple | None = None
    steps: int = 30
    quick_steps: int = 12
    check_steps: int = 5
    recipe: str | None = None
    size: int | None = None
    options: dict = field(default_factory=dict)
