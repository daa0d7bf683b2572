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
from dataclasses import dataclass


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
