"""Lecture 4's ladder ("Hardware and Software"): one two-layer ReLU network, trained again and again, each time
one level higher in the framework's API. The levels are this task's recipes; each framework implements the
levels it has, as its users write them, and a level it does not have is a "skipped" row naming the API that
comes closest (the backend raises tasks.protocol.CannotRun).

The problem, the same mathematics at every level (the lecture's running example):

    N, D_in, H, D_out = 64, 1000, 100, 10       (size: N, the batch; D_in, H, D_out fixed)
    x (N, D_in), y (N, D_out)                   random inputs and targets, standard normal
    w1 (D_in, H), w2 (H, D_out)                 initial weights, standard normal (the lecture's randn)
    y_pred = relu(x @ w1) @ w2                  no biases
    loss = sum((y_pred - y) ** 2)               the sum of squared errors, over every sample and output
    w <- w - lr * dloss/dw                      plain gradient descent on the whole batch, lr = 2**-22
    500 steps

Every input comes from the run's seed, so every framework starts from the same x, y, w1, w2.

Why this problem, when the lecture's code changes it from slide to slide:

- No biases. The lecture's by-hand, autograd and custom-function slides have none; biases appear only with
  nn.Linear. Every layers API can drop them (torch.nn.Linear(bias=False), Keras' Dense(use_bias=False),
  paddle.nn.Linear(bias_attr=False), gluon.nn.Dense(use_bias=False)), while the lower levels would have to
  grow them by hand; a layer's weight stored as (out, in) (PyTorch) is w.T, transposed visibly.
- The sum of squared errors, not the mean. It is the lecture's first loss, and every level can state it:
  torch.nn.MSELoss(reduction="sum"), paddle.nn.MSELoss(reduction="sum"), tf.nn.l2_loss (half of it), a
  Keras Loss whose reduction is "sum", optax.squared_error(...).sum(). The lecture's later lr 1e-2 on the
  mean over the 640 outputs, with biases, is another problem; gradient descent on the mean with lr L is
  gradient descent on the sum with lr L / 640, so nothing is lost by fixing the sum.
- Plain gradient descent with one learning rate for every level: the "optimizer" level is each framework's
  SGD without momentum, so it takes the same steps as the update written by hand. (The lecture's Adam on
  one slide is a different algorithm, not a higher level of the same one.)
- lr = 2**-22 (2.38e-7), not the lecture's 1e-6. With 1e-6 the loss falls from 3.7e7 to 6e-5 in 500 steps
  (seed 0): the residuals y_pred - y end near 3e-4 of targets of size 1, so the loss is a difference of
  nearly equal numbers, and two correct float64 computations that only sum their matmuls in another order
  (numpy's matmul and np.einsum) already differ by 2.7e-11 relative at the end (seed 1: 1.7e-11). That
  measures cancellation, not the frameworks. At 2**-22 the loss falls from 3.7e7 to about 215 and the same
  two computations agree to 1.3e-14 over all 500 steps (seed 1: 1.1e-14), so the 1e-12 bound tests what it
  should. A power of two because some SGD kernels take the learning rate as a float32 attribute even for
  float64 weights (MXNet's sgd_update: with 2e-7, its curve moved 1.6e-8 away in 20 steps at N = 8):
  2**-22 is the same number in both, and N times it, for a loop that divides the gradient by N, is exact
  too.

A step is about 26 MFLOP at the default size (flops_per_step: the five matmuls, forward x @ w1 and
h @ w2, backward h.T @ g, g @ w2.T and x.T @ g_h, and the update), so it is arithmetic that dominates a step,
not the framework's per-operation overhead; the report gives each cell's achieved GFLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.protocol import CannotRun, Chunk, Compiled, curve_problem  # noqa: F401 (for the backends)

NAME = "ladder"
SUMMARY = ("Lecture 4's ladder: one two-layer ReLU network (64x1000 -> 100 -> 10, sum of squared errors, "
           "500 gradient steps) at every level of each framework's API, from gradients by hand to fit()")
KIND = "training"
RANK = 35
TIMEOUT_S = 300

DEFAULT_SIZE = 64  # N, the batch: every step uses all N samples
D_IN, HIDDEN, D_OUT = 1000, 100, 10
LEARNING_RATE = 2.0 ** -22  # 2.38e-7, exactly a float32: see the docstring
STEPS = 500
CHECK_SIZE = 8
QUICK_SIZE = 64

# Every level of every framework against numpy's by-hand curve, over the whole run. float32: reported, with a
# loose bound only to flag a level that computes something else.
AGREEMENT_TOLERANCE = {"float64": 1e-12, "float32": 1e-3}
# Every level solves the same problem, so the recipe is not part of its identity: numpy's one level, by hand,
# is the reference of every level of every framework (its other levels are skipped rows, never references).
SAME_PROBLEM = ("task", "precision", "size", "seed", "steps", "lr")


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    below: str | None  # the level it is compared with in the report (its code diff, its cost or saving)
    lecture: str = ""  # the lecture's slide for it


RECIPES = {
    "by-hand": Recipe("by-hand", "tensors; forward, backward and update written by hand", None,
                      "PyTorch: Tensors"),
    "autograd": Recipe("autograd", "the framework's autograd takes the gradients; the update by hand",
                       "by-hand", "PyTorch: Autograd; TensorFlow: GradientTape"),
    "custom-function": Recipe("custom-function", "autograd through a ReLU of one's own with its own backward",
                              "autograd", "PyTorch: Defining New Autograd Functions"),
    "layers": Recipe("layers", "the framework's layers and loss; autograd; the update by hand", "autograd",
                     "PyTorch: nn; Keras with a GradientTape"),
    "optimizer": Recipe("optimizer", "layers, and the framework's SGD optimizer makes the update", "layers",
                        "PyTorch: optim; TensorFlow: Optimizer and Loss"),
    "model-class": Recipe("model-class", "a model class of one's own, and the framework's optimizer",
                          "optimizer", "PyTorch: Custom nn Modules"),
    "fit": Recipe("fit", "the framework runs the training loop (fit() or its equivalent)", "optimizer",
                  "Keras: \"Keras can handle the training loop for you!\""),
    "graph": Recipe("graph", "define-then-run: a static graph built first, then run step by step in a session",
                    "autograd", "TensorFlow: Neural Net (Pre-2.0)"),
}
LEVELS = tuple(RECIPES)
QUICK_STEPS = {level: 100 for level in RECIPES}  # `--quick`: a fifth of the run, at the lecture's size
DEFAULT_RECIPE = "by-hand"


@dataclass
class Problem:
    x: np.ndarray  # (N, D_in)
    y: np.ndarray  # (N, D_out)
    w1: np.ndarray  # (D_in, H)
    w2: np.ndarray  # (H, D_out)
    lr: float
    steps: int
    recipe: Recipe
    precision: str
    seed: int

    @property
    def batch_size(self) -> int:
        return len(self.x)

    @property
    def sizes(self) -> tuple:
        """(N, D_in, H, D_out), the lecture's names."""
        return (len(self.x), self.w1.shape[0], self.w1.shape[1], self.w2.shape[1])


@dataclass
class Result:
    w1: np.ndarray
    w2: np.ndarray
    notes: list = field(default_factory=list)


def flops_per_step(n: int, d_in: int = D_IN, hidden: int = HIDDEN, d_out: int = D_OUT) -> int:
    """The floating-point operations of one step: five matmuls (2 m k n each) and the update (2 per weight);
    the loss, the ReLU and its mask add under 0.1 %."""
    forward = 2 * n * d_in * hidden + 2 * n * hidden * d_out
    backward = 2 * n * hidden * d_out * 2 + 2 * n * d_in * hidden  # grad_w2, grad_h_relu; grad_w1
    return forward + backward + 2 * (d_in * hidden + hidden * d_out)


def validate(size: int, recipe: str, steps: int | None = None) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; the levels: {', '.join(RECIPES)}")
    if size < 1:
        raise ValueError(f"size {size} is too small: it is N, the batch; give --size 1 or more "
                         f"(the lecture's: {DEFAULT_SIZE})")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def make_problem(size: int = DEFAULT_SIZE, seed: int = 0, recipe: str = DEFAULT_RECIPE,
                 precision: str = "float64", steps: int | None = None, lr: float | None = None) -> Problem:
    validate(size, recipe, steps)
    if precision not in AGREEMENT_TOLERANCE:
        raise ValueError(f"unknown precision {precision!r}; choose float32 or float64")
    if lr is not None and not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    # Independent streams: the weights do not change with N.
    data_rng, init_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x = data_rng.standard_normal((size, D_IN))
    y = data_rng.standard_normal((size, D_OUT))
    w1 = init_rng.standard_normal((D_IN, HIDDEN))
    w2 = init_rng.standard_normal((HIDDEN, D_OUT))
    return Problem(*(a.astype(precision) for a in (x, y, w1, w2)), lr=lr or LEARNING_RATE,
                   steps=steps or STEPS, recipe=RECIPES[recipe], precision=precision, seed=seed)


def loss_of(problem: Problem, w1, w2) -> float:
    """The loss of weights w1, w2 on the problem's data, in float64 (for check())."""
    x, y = (np.asarray(a, dtype=np.float64) for a in (problem.x, problem.y))
    y_pred = np.maximum(x @ np.asarray(w1, np.float64), 0) @ np.asarray(w2, np.float64)
    return float(((y_pred - y) ** 2).sum())


def check(problem: Problem, result: Result, losses: list) -> dict:
    wrong = curve_problem(losses, problem.steps)
    if wrong:
        return {"verdict": wrong}
    for name in ("w1", "w2"):
        got, expected = np.asarray(getattr(result, name)), getattr(problem, name)
        if got.shape != expected.shape:
            return {"verdict": f"wrong: {name} of shape {got.shape}, expected {expected.shape} (a layer's "
                               f"(out, in) weight must be transposed back)"}
    final = loss_of(problem, result.w1, result.w2)
    if not np.isfinite(final):
        return {"verdict": "diverged (non-finite weights)"}
    if not final < losses[0]:
        return {"verdict": f"wrong: the returned weights' loss {final:.6g} is not below the first step's "
                           f"{losses[0]:.6g}: they are not the trained weights"}
    return {"verdict": "ok", "initial_loss": float(losses[0]), "final_loss": float(losses[-1]),
            "loss_after_last_step": final, "flops_per_step": flops_per_step(*problem.sizes)}


def summary_for_report(problem: Problem, result: Result) -> dict:
    n, d_in, hidden, d_out = problem.sizes
    return {"sizes": [n, d_in, hidden, d_out], "flops_per_step": flops_per_step(n, d_in, hidden, d_out),
            "lr": problem.lr}
