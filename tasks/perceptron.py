"""Course 1's training loop, as a framework-free spec: a 20 -> 32 -> 32 perceptron trained one random
sample at a time on the cost (sum of outputs)^2.

The course writes it with raw tensors: theta1 (32, 20), bias1 (32,), theta2 (32, 32), bias2 (32,), all
randn * 0.1; forward z = theta2 @ relu(theta1 @ x + bias1) + bias2 for one sample x = randn(20); cost
(sum z)^2; the plain gradient step p <- p - lr * grad with lr = 0.001 * 0.1 ** (max(i - 500, 0) // 100);
1,000 steps. Its exercise: "check that the norm of the parameters converge to zero". Each backend
records that norm after every step, computed by the framework itself: the L2 norm of the four
parameters concatenated, sqrt(sum over parameters of sum(p ** 2)).

The answer the runs give is no, and the spec can say why: the gradient of (sum z)^2 with respect to
theta2 and bias2 is 2 (sum z) * 1 y^T and 2 (sum z) * 1, always along the all-ones direction of the
output space, so the parts of theta2 and bias2 orthogonal to it never change. Their norm (`norm_floor`)
bounds the parameter norm from below whatever the number of steps or the learning rate.

At this size (1,728 parameters, one sample a step) a step is a dozen small operations: the per-step time
measures each framework's per-operation overhead, not its arithmetic.

The parameters keep the course's layout, theta (out, in) applied to one sample as theta @ x (also the
layout of torch.nn.Linear's weight); a backend whose layers store (in, out), as Keras' Dense kernel does,
transposes visibly. Every backend starts from the same weights and sees the same samples in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tasks.protocol import Chunk, Compiled, curve_problem  # noqa: F401 (the step protocol, for the backends)

NAME = "perceptron"
SUMMARY = ("Course 1's 20-32-32 perceptron, one random sample a step, cost (sum z)^2: does the parameter "
           "norm go to zero, and each framework's per-operation overhead")
KIND = "training"
RANK = 30
TIMEOUT_S = 300

# size: how many random samples are drawn; step i trains on sample i % size. With the default 1,000
# samples and 1,000 steps every step sees a fresh sample, as in the course.
DEFAULT_SIZE = 1000
INPUTS, HIDDEN, OUTPUTS = 20, 32, 32
INIT_SCALE = 0.1
SHAPES = {"theta1": (HIDDEN, INPUTS), "bias1": (HIDDEN,), "theta2": (OUTPUTS, HIDDEN), "bias2": (OUTPUTS,)}

# Measured over all 1,000 steps against numpy, on the CPU, every variant of every backend: the parameter
# norms agree to at most 1.1e-15 relative in float64 and 5.9e-7 in float32 (Keras on PyTorch in float64:
# 3.2e-10, its float32 matmul). The costs agree to 1.7e-12 in float64 and 7.9e-4 in float32 only:
# (sum z)^2 falls below 1e-6 at some steps (seed 0: 17 steps, down to 4.5e-7), where sum z is a
# difference of numbers a thousand times larger, so the cost's relative deviation there measures the
# rounding of that difference. The norms are the compared series. The float32 bound leaves room for GPUs,
# whose float32 matmuls may round through TF32.
AGREEMENT_SERIES = "param_norms"
AGREEMENT_STEPS = 1000
AGREEMENT_TOLERANCE = {"float64": 1e-12, "float32": 1e-4}
# report_data keeps every step's norm up to this many steps, then every k-th so that it stays small.
MAX_REPORTED_NORMS = 10_000


@dataclass(frozen=True)
class Recipe:
    name: str
    steps: int
    hyper: dict = field(default_factory=dict)
    summary: str = ""


RECIPES = {
    "course": Recipe(
        "course", steps=1000, hyper={"lr": 0.001, "decay": 0.1, "decay_start": 500, "decay_every": 100},
        summary="the course's loop: 1,000 plain gradient steps on one sample each, "
                "lr 0.001 divided by 10 every 100 steps after step 500",
    ),
}
DEFAULT_RECIPE = "course"


def learning_rate(step: int, base: float = 0.001) -> float:
    """The course's schedule: lr = base * 0.1 ** (max(step - 500, 0) // 100), computed in Python floats."""
    return base * 0.1 ** (max(step - 500, 0) // 100)


@dataclass
class Problem:
    """One instance of the task, in the course's layout: theta1 (32, 20), bias1 (32,), theta2 (32, 32),
    bias2 (32,); z = theta2 @ relu(theta1 @ x + bias1) + bias2."""

    params: dict  # name -> array, in the run's precision
    samples: np.ndarray  # (steps, 20): the input of each step, in training order
    recipe: Recipe
    precision: str
    seed: int

    @property
    def steps(self) -> int:
        return len(self.samples)

    @property
    def batch_size(self) -> int:
        return 1

    def learning_rate(self, step: int) -> float:
        return learning_rate(step, self.recipe.hyper["lr"])


@dataclass
class Result:
    params: dict  # final parameters, in the Problem's layout, as numpy arrays
    param_norms: list  # the parameter norm after each step's update, as computed by the framework
    notes: list = field(default_factory=list)


def validate(size: int, recipe: str, steps: int | None = None) -> None:
    """Raise ValueError, with a message that says what to do, for a size, recipe or step count that cannot run."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
    if size < 1:
        raise ValueError(f"size {size} is too small; the perceptron needs at least 1 random sample "
                         f"(default {DEFAULT_SIZE})")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def make_problem(size: int = DEFAULT_SIZE, seed: int = 0, recipe: str = DEFAULT_RECIPE,
                 precision: str = "float32", steps: int | None = None, lr: float | None = None) -> Problem:
    """lr, when given, replaces the schedule's starting value 0.001."""
    validate(size, recipe, steps)
    if precision not in AGREEMENT_TOLERANCE:
        raise ValueError(f"unknown precision {precision!r}; choose float32 or float64")
    if lr is not None and not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    chosen = RECIPES[recipe]
    if lr is not None:
        chosen = replace(chosen, hyper={**chosen.hyper, "lr": lr})
    steps = steps or chosen.steps

    # Independent streams, so that asking for more steps or samples never changes the initial weights.
    init_rng, data_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    params = {name: (init_rng.standard_normal(shape) * INIT_SCALE).astype(precision)
              for name, shape in SHAPES.items()}
    data = data_rng.standard_normal((size, INPUTS)).astype(precision)
    return Problem(params=params, samples=data[np.arange(steps) % size], recipe=chosen,
                   precision=precision, seed=seed)


# ----------------------------------------------------------------------------------------- metrics

def param_norm(params: dict) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(p, dtype=np.float64) ** 2) for p in params.values())))


def norm_floor(params: dict) -> float:
    """The norm of what gradient descent on (sum z)^2 can never change: the parts of theta2 and bias2
    orthogonal to the all-ones output direction (their gradients are multiples of it)."""
    theta2 = np.asarray(params["theta2"], dtype=np.float64)
    bias2 = np.asarray(params["bias2"], dtype=np.float64)
    return float(np.sqrt(np.sum((theta2 - theta2.mean(axis=0)) ** 2) + np.sum((bias2 - bias2.mean()) ** 2)))


def check(problem: Problem, result: Result, losses: list) -> dict:
    """Metrics and a verdict; agreement with numpy is judged in the report, which sees every backend."""
    wrong = curve_problem(losses, problem.steps, "costs")
    if wrong:
        return {"verdict": wrong, "final_cost": float("nan")}
    losses = np.asarray(losses, dtype=np.float64)
    norms = np.asarray(result.param_norms, dtype=np.float64).reshape(-1)
    if len(norms) != problem.steps:
        return {"verdict": f"wrong: {len(norms)} parameter norms for {problem.steps} steps"}
    for name, initial in problem.params.items():
        final = np.asarray(result.params.get(name))
        if final.shape != initial.shape:
            return {"verdict": f"wrong: parameter {name} of shape {final.shape}, expected {initial.shape}"}
    if not (np.isfinite(norms).all() and all(np.isfinite(np.asarray(p)).all() for p in result.params.values())):
        return {"verdict": "diverged (non-finite parameters)"}
    initial_norm, final_norm = param_norm(problem.params), float(norms[-1])
    recomputed = param_norm(result.params)
    if abs(recomputed - final_norm) > 1e-3 * final_norm:
        return {"verdict": f"wrong: the last recorded norm {final_norm:.6g} is not the final parameters' "
                           f"norm {recomputed:.6g}"}
    tail = min(100, len(losses))
    floor = norm_floor(problem.params)
    return {
        "initial_cost": float(losses[0]),
        "final_cost": float(losses[-1]),
        "mean_cost_first_100": float(losses[:tail].mean()),
        "mean_cost_last_100": float(losses[-tail:].mean()),
        "initial_param_norm": initial_norm,
        "final_param_norm": final_norm,
        "norm_change": final_norm / initial_norm - 1.0,  # e.g. -0.014: the norm fell by 1.4 %
        "norm_fell": bool(final_norm < initial_norm),
        "norm_floor": floor,
        "final_norm_floor": norm_floor(result.params),
        "norm_converges_to_zero": bool(final_norm < 1e-3 * initial_norm),
        "verdict": "ok",
    }


# ------------------------------------------------------------------------------------------ report

def summary_for_report(problem: Problem, result: Result) -> dict:
    """Every step's parameter norm (every k-th beyond MAX_REPORTED_NORMS steps, k in norms_every), the
    floor it cannot go below, and the learning rate's schedule at the steps where it changes."""
    norms = np.asarray(result.param_norms, dtype=np.float64).reshape(-1)
    every = max(1, -(-len(norms) // MAX_REPORTED_NORMS))
    return {
        "param_norms": norms[::every].tolist(),
        "norms_every": every,
        "initial_param_norm": param_norm(problem.params),
        "norm_floor": norm_floor(problem.params),
    }
