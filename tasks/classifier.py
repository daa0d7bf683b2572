"""The 3-zone classifier of Course 1, as a framework-free spec.

Points are drawn uniformly in the unit square. A point is labelled 2 where x0 > x1, then 1 where
x0 + x1 > 1 (overriding), else 0: three zones split by the two diagonals. The model is the course's
2 -> 12 -> 3 perceptron with a ReLU, trained with softmax cross-entropy.

Everything a backend needs comes from `make_problem(size, seed, ...)` as numpy arrays: data, labels,
initial weights (randn * 0.01, as in the course) and the batch order. Every backend therefore starts
from the same parameters and sees the same batches in the same order, which is what lets the report
compare each loss curve with the numpy reference step by step.

A backend implements `train(problem, device, variant)` as a generator: it yields the training loss of
each step as a Python float (reading it back to the host also synchronizes the device, so the runner's
clock is honest) and returns a `Result`. A backend that runs many steps in one call (a compiled loop,
Keras' fit()) yields Chunk(losses) instead, with step_seconds where it can time each step inside the call;
one that compiles ahead of training may first yield Compiled(), which tells the worker that setup and
compilation end there (tasks/protocol.py).

Two options change the model's size: `hidden` (the hidden layer's width, default the course's 12) and
`batch_size` (points per step, default the recipe's). A backend reads both from the problem
(problem.hidden, from W1's shape; problem.batch_size), never from a constant. `rosetta sweep` varies them
together (SWEEP) and divides each point's measured step time by step_cost(), the arithmetic of one step
counted by hand from the shapes (the last section of this module).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np

from tasks.protocol import Chunk, Compiled, curve_problem  # noqa: F401 (the step protocol, for the backends)
from tasks.protocol import StepCost, Sweep, TaskOption

NAME = "classifier"
SUMMARY = "3-zone toy classifier of Course 1: a 2-12-3 MLP, softmax cross-entropy, four recipes"
KIND = "training"
RANK = 40  # the courses' order: tensors, autograd, the perceptron, this classifier, the CNN
TIMEOUT_S = 900

DEFAULT_SIZE = 200_000
# `rosetta run --quick`: a first look in seconds per cell. The optimizer recipes do their one epoch of
# this smaller set (38 steps of 500); manual-sgd stops before the course's first learning-rate decay.
QUICK_SIZE = 20_000
QUICK_STEPS = {"manual-sgd": 1000}
MIN_SIZE = 100
VALIDATION_FRACTION = 0.05  # the course keeps 2 to 10 % of the data aside
INPUTS = 2
HIDDEN = 12  # the course's hidden width; option `hidden` changes it
CLASSES = 3
INIT_SCALE = 0.01

OPTIONS = {
    "hidden": TaskOption("hidden", "hidden units (default 12, the course's)"),
    "batch_size": TaskOption("batch_size", "points per step (default: the recipe's own)"),
}

# Over the first steps the loss curves of float64 backends agree with numpy to about 1e-15
# (only summation order differs); float32 curves drift apart by rounding, so they get a looser bound.
AGREEMENT_STEPS = 200
AGREEMENT_TOLERANCE = {"float64": 1e-12, "float32": 1e-4}


@dataclass(frozen=True)
class Recipe:
    """How to train: which update rule, batch size, number of steps and its hyper-parameters.

    The hyper-parameters are stated in full (never left to a framework's defaults), because the
    frameworks' defaults differ: Keras' Adadelta starts at lr 0.001 and rho 0.95, PyTorch's at 1.0 and 0.9.
    """

    name: str
    batch_size: int
    steps: int | None  # None: one pass over the training set
    hyper: dict = field(default_factory=dict)
    summary: str = ""


RECIPES = {
    "manual-sgd": Recipe(
        "manual-sgd", batch_size=20, steps=5000, hyper={"lr": 0.5},
        summary="the course's hand-written loop: plain gradient steps, lr 0.5 decayed 10x every 1000 steps",
    ),
    "sgd-momentum": Recipe(
        "sgd-momentum", batch_size=500, steps=None, hyper={"lr": 0.1, "momentum": 0.9},
        summary="the framework's SGD with momentum 0.9, lr 0.1, batch 500",
    ),
    "adam": Recipe(
        "adam", batch_size=500, steps=None,
        hyper={"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        summary="the framework's Adam, lr 0.001, betas (0.9, 0.999), eps 1e-8, batch 500",
    ),
    "adadelta": Recipe(
        "adadelta", batch_size=500, steps=None, hyper={"lr": 1.0, "rho": 0.9, "eps": 1e-6},
        summary="the framework's Adadelta, lr 1.0, rho 0.9, eps 1e-6, batch 500",
    ),
}
DEFAULT_RECIPE = "manual-sgd"


def manual_sgd_learning_rate(step: int, base: float = 0.5) -> float:
    """The course's schedule: 0.5 for the first 1100 steps, then divided by 10 every 1000 steps."""
    return base * 0.1 ** (max(step - 100, 0) // 1000)


@dataclass
class Problem:
    """One instance of the task. Parameters use the course's layout: W1 is (2, hidden), W2 is (hidden, 3),
    so `x @ W1 + b1`; a framework whose dense layers store (out, in) transposes them itself."""

    x_train: np.ndarray  # (n_train, 2), float32 or float64
    y_train: np.ndarray  # (n_train,), int64 labels in 0..2
    x_val: np.ndarray
    y_val: np.ndarray
    params: dict  # name -> array: W1 (2, hidden), b1 (hidden,), W2 (hidden, 3), b2 (3,); hidden 12 by default
    batches: np.ndarray  # (steps, batch_size) int64 row indices into x_train, in training order
    recipe: Recipe  # its batch_size is the run's (option batch_size replaces the recipe's own)
    precision: str
    seed: int

    @property
    def steps(self) -> int:
        return len(self.batches)

    @property
    def batch_size(self) -> int:
        return self.recipe.batch_size

    @property
    def hidden(self) -> int:
        """The hidden layer's width, read from the weights (W1 is (2, hidden)): what a backend builds its model with."""
        return self.params["W1"].shape[1]

    def learning_rate(self, step: int) -> float:
        if self.recipe.name == "manual-sgd":
            return manual_sgd_learning_rate(step, self.recipe.hyper["lr"])
        return self.recipe.hyper["lr"]


@dataclass
class Result:
    """What a backend returns once training ends (the per-step losses come from its yields)."""

    params: dict  # final parameters, in the Problem's layout, as numpy arrays
    val_logits: np.ndarray  # (n_val, 3) scores of the validation points, before softmax
    notes: list = field(default_factory=list)  # anything the report should say about this backend


def labels_of(x: np.ndarray) -> np.ndarray:
    labels = np.zeros(len(x), dtype=np.int64)
    labels[x[:, 0] > x[:, 1]] = 2
    labels[x[:, 0] + x[:, 1] > 1] = 1
    return labels


def param_shapes(hidden: int = HIDDEN) -> dict:
    return {"W1": (INPUTS, hidden), "b1": (hidden,), "W2": (hidden, CLASSES), "b2": (CLASSES,)}


def initial_params(rng: np.random.Generator, dtype, hidden: int = HIDDEN) -> dict:
    """randn * 0.01 for each parameter, drawn in the order W1, b1, W2, b2 (one standard_normal call each: the
    course's width draws exactly the numbers it always drew)."""
    return {name: (rng.standard_normal(shape) * INIT_SCALE).astype(dtype)
            for name, shape in param_shapes(hidden).items()}


def batch_order(rng: np.random.Generator, n_train: int, batch_size: int, steps: int) -> np.ndarray:
    """Consecutive batches of a fresh permutation per epoch (the last partial batch of an epoch is dropped)."""
    per_epoch = n_train // batch_size
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(n_train)[: per_epoch * batch_size] for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size).astype(np.int64)


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate(size: int, recipe: str, steps: int | None = None, hidden: int | None = None,
             batch_size: int | None = None) -> None:
    """Raise ValueError, with a message that says what to do, for a size, recipe, step count, hidden width or
    batch size that cannot run."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
    if hidden is not None and not (_whole(hidden) and hidden >= 1):
        raise ValueError(f"--hidden must be a whole number of at least 1, got {hidden!r}")
    if batch_size is not None and not (_whole(batch_size) and batch_size >= 1):
        raise ValueError(f"--batch-size must be a whole number of at least 1, got {batch_size!r}")
    if size < MIN_SIZE:
        raise ValueError(f"size {size} is too small; the classifier needs at least {MIN_SIZE} points")
    n_train = size - validation_size(size)
    batch = RECIPES[recipe].batch_size if batch_size is None else batch_size
    if n_train < batch:
        raise ValueError(f"size {size} leaves {n_train} training points, fewer than one batch of {batch} for "
                         f"recipe {recipe}; use a larger --size" + (" or a smaller --batch-size" if batch_size else ""))
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def validation_size(size: int) -> int:
    return max(int(size * VALIDATION_FRACTION), 1)


def make_problem(size: int = DEFAULT_SIZE, seed: int = 0, recipe: str = DEFAULT_RECIPE,
                 precision: str = "float32", steps: int | None = None, lr: float | None = None,
                 hyper: dict | str | None = None, hidden: int | None = None,
                 batch_size: int | None = None) -> Problem:
    """lr, when given, replaces the recipe's learning rate (for manual-sgd: the schedule's starting value).
    hyper: overrides of the recipe's hyper-parameters (a dict, or its JSON), to run the reference under a
    framework's own rule (a declared difference's simulation, rosetta/backend.py): values replace the recipe's,
    and "adam_epsilon": "hat" adds eps before the bias correction, as TensorFlow's Adam does.
    hidden: the hidden layer's width (default 12, the course's); batch_size replaces the recipe's (and with it
    the steps of a one-epoch recipe)."""
    validate(size, recipe, steps, hidden=hidden, batch_size=batch_size)
    if precision not in AGREEMENT_TOLERANCE:
        raise ValueError(f"unknown precision {precision!r}; choose float32 or float64")
    chosen = RECIPES[recipe]
    if batch_size is not None:
        chosen = replace(chosen, batch_size=int(batch_size))
    if lr is not None:
        chosen = replace(chosen, hyper={**chosen.hyper, "lr": lr})
    if hyper:
        chosen = replace(chosen, hyper={**chosen.hyper, **(json.loads(hyper) if isinstance(hyper, str) else hyper)})
    n_train = size - validation_size(size)
    steps = steps or chosen.steps or n_train // chosen.batch_size

    # Independent streams, so that asking for more steps never changes the data or the weights.
    data_rng, init_rng, order_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    x = data_rng.random((size, 2))
    y = labels_of(x)
    x = x.astype(precision)
    return Problem(
        x_train=x[:n_train], y_train=y[:n_train], x_val=x[n_train:], y_val=y[n_train:],
        params=initial_params(init_rng, precision, HIDDEN if hidden is None else int(hidden)),
        batches=batch_order(order_rng, n_train, chosen.batch_size, steps),
        recipe=chosen, precision=precision, seed=seed,
    )


# ----------------------------------------------------------------------------------------- metrics

def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by the rank statistic (Mann-Whitney U), ties counted half."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # average rank (1-based) of each distinct score, then of each sample
    upper = np.cumsum(counts)
    average_rank = upper - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
    predicted = logits.argmax(axis=1)
    probabilities = softmax(logits.astype(np.float64))
    precision, recall, auc = [], [], []
    for k in range(logits.shape[1]):
        true_k, predicted_k = labels == k, predicted == k
        hits = int((true_k & predicted_k).sum())
        precision.append(hits / int(predicted_k.sum()) if predicted_k.any() else float("nan"))
        recall.append(hits / int(true_k.sum()) if true_k.any() else float("nan"))
        auc.append(roc_auc(probabilities[:, k], true_k))
    log_p = np.log(np.maximum(probabilities[np.arange(len(labels)), labels], 1e-300))
    return {
        "val_accuracy": float((predicted == labels).mean()),
        "val_loss": float(-log_p.mean()),
        "precision": precision,
        "recall": recall,
        "auc": auc,
    }


def check(problem: Problem, result: Result, losses: list) -> dict:
    """Metrics and a verdict for one finished training (agreement with numpy is judged in the report,
    which sees every backend's curve)."""
    wrong = curve_problem(losses, problem.steps, "losses")
    if wrong:
        return {"verdict": wrong, "final_loss": float("nan")}
    losses = np.asarray(losses, dtype=np.float64)
    logits = np.asarray(result.val_logits)
    if logits.shape != (len(problem.y_val), CLASSES):
        return {"verdict": f"wrong: validation logits of shape {logits.shape}, "
                           f"expected {(len(problem.y_val), CLASSES)}"}
    for name, initial in problem.params.items():
        final = np.asarray(result.params.get(name))
        if final.shape != initial.shape:
            return {"verdict": f"wrong: parameter {name} of shape {final.shape}, expected {initial.shape}"}
    metrics = classification_metrics(logits, problem.y_val)
    metrics["final_loss"] = float(losses[-1])
    metrics["verdict"] = "ok" if np.isfinite(logits).all() else "diverged (non-finite predictions)"
    return metrics


# ------------------------------------------------------------------------------------------ report

# The inputs live in the unit square: the report can draw the data and each backend's decision regions.
INPUT_DOMAIN = ((0.0, 1.0), (0.0, 1.0))
CLASS_NAMES = ("zone 0 (left)", "zone 1 (upper right)", "zone 2 (lower)")


def predict(params: dict, x: np.ndarray) -> np.ndarray:
    """Logits of the 2-hidden-3 perceptron for points x (n, 2), in numpy: what the report draws regions with."""
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    hidden = np.maximum(np.asarray(x, dtype=np.float64) @ params["W1"] + params["b1"], 0)
    return hidden @ params["W2"] + params["b2"]


# The final parameters go into the record for the decision regions only while they stay small: a sweep's
# 2-4096-3 network would put 24,579 numbers in every record.
REPORTED_PARAMETERS = 2_000


def summary_for_report(problem: Problem, result: Result) -> dict:
    """Small JSON-able data the worker stores in the record for the report: the final parameters
    (75 numbers at the course's width, none beyond REPORTED_PARAMETERS), from which the report redraws the
    decision regions without the framework."""
    if sum(np.size(v) for v in problem.params.values()) > REPORTED_PARAMETERS:
        return {}
    return {"params": {name: np.asarray(result.params[name], dtype=np.float64).tolist() for name in problem.params}}


# -------------------------------------------------------------------------------- sweep: one step's cost
#
# `rosetta sweep` runs the classifier over a grid of (hidden, batch_size) and divides each point's measured
# step time by step_cost(). The counting convention, once for every term below:
#
# - a matrix product (M, K) @ (K, N) is 2*M*N*K: a multiply and an add per term (dense_flops holds these);
# - every other operation counts 1 per element it produces: add, subtract, multiply, divide, max, compare,
#   exp, log, sqrt; a reduction (a sum or a max over n numbers) counts n;
# - a gather (the batch's rows, the label's column), a copy or a masked write of zeros costs nothing;
# - operations on a handful of scalars (the mean's division, a bias correction 1 - beta^t) are left out;
# - bytes: the batch read, the parameters and the optimizer's state read and written once (activations not
#   counted); activation_bytes: what an unfused step moves on top, every intermediate written and read once.
#
# B = batch size, D = 2 inputs, H = hidden width, C = 3 classes, P = D*H + H + H*C + C parameters.
# The step is the reference's (backends/<reference>/classifier.py), the course's softmax cross-entropy
# written as log-softmax; a framework that does more or less work than this shows up in its rate.

# Optimizer state per parameter, and the update's operations per parameter (the numpy reference's formulas).
UPDATE_STATE = {"manual-sgd": 0, "sgd-momentum": 1, "adam": 2, "adadelta": 2}
UPDATE_FLOPS = {
    "manual-sgd": 2,  # p -= lr * g: multiply, subtract
    "sgd-momentum": 4,  # v = momentum * v + g (2); p -= lr * v (2)
    # m = b1 m + (1 - b1) g (3); v = b2 v + (1 - b2) g g (4); m / (1 - b1^t), v / (1 - b2^t) (2);
    # p -= lr * m_hat / (sqrt(v_hat) + eps) (sqrt, add, divide, multiply, subtract: 5)
    "adam": 14,
    # s = rho s + (1 - rho) g g (4); delta = sqrt(d + eps) / sqrt(s + eps) * g (add, sqrt, add, sqrt, divide,
    # multiply: 6); d = rho d + (1 - rho) delta delta (4); p -= lr * delta (2)
    "adadelta": 16,
}

SWEEP = Sweep(
    sizes=("hidden", "batch_size"),
    # From the course's model (2-12-3, batch 20) to a 2-4096-3 one on batches of 8192: about 5e3 to 9e8 dense
    # FLOPs a step. The largest batch fits the quick data set (19,000 training points at QUICK_SIZE).
    grid=({"hidden": 12, "batch_size": 20}, {"hidden": 64, "batch_size": 100}, {"hidden": 256, "batch_size": 500},
          {"hidden": 1024, "batch_size": 2000}, {"hidden": 4096, "batch_size": 8192}),
    # The course's loop (lr 0.5 over the first 1,100 steps): no point diverges over 30 steps, in float32 or
    # float64 (tests/test_classifier_spec.py), and its update is the plainest, the same in every framework.
    recipe="manual-sgd",
    size=QUICK_SIZE,
)


def step_cost(size: int, recipe: str, precision: str = "float32", hidden: int | None = None,
              batch_size: int | None = None, **_) -> StepCost:
    """The FLOPs and the least bytes of one training step of `recipe` at this hidden width and batch size
    (default: the course's 12 and the recipe's batch; the counting convention: the comment above). size does
    not enter: a step sees one batch; nor do the other options. The bytes are in `precision`'s floats (a sweep
    times float32) with int64 labels."""
    B = RECIPES[recipe].batch_size if batch_size is None else int(batch_size)
    H = HIDDEN if hidden is None else int(hidden)
    D, C = INPUTS, CLASSES
    P = D * H + H + H * C + C  # W1, b1, W2, b2

    # -- matrix products (dense_flops) --
    dense = (2 * B * D * H  # forward: x @ W1
             + 2 * B * H * C  # forward: hidden @ W2
             + 2 * B * H * C  # backward: dW2 = hidden.T @ d_logits
             + 2 * B * C * H  # backward: d_hidden = d_logits @ W2.T
             + 2 * B * D * H)  # backward: dW1 = x.T @ d_hidden (no gradient for the inputs themselves)

    # -- everything else, per element --
    hidden_layer = (B * H  # + b1
                    + B * H  # ReLU: max(z, 0)
                    + B * H  # ReLU's backward: the compare z <= 0 that masks d_hidden
                    + B * H)  # db1 = sum of d_hidden over the batch
    loss = (B * C  # + b2
            + B * C  # the row max of the logits
            + B * C  # logits - max
            + B * C  # exp
            + B * C  # the row sum of exp
            + B  # log of that sum
            + B * C  # log-probabilities: shifted - log-sum
            + B)  # the mean of the label's log-probability over the batch
    loss_backward = (B * C  # softmax = exp(log-probabilities)
                     + B  # minus 1 at the label
                     + B * C  # / B, the mean's derivative
                     + B * C)  # db2 = sum of d_logits over the batch
    update = UPDATE_FLOPS[recipe] * P

    # -- bytes: the least a step must move --
    itemsize = np.dtype(precision).itemsize
    moved = (B * D * itemsize  # the batch's inputs, read
             + B * np.dtype(np.int64).itemsize  # its labels, read
             + 2 * P * itemsize  # the parameters, read and written once
             + 2 * UPDATE_STATE[recipe] * P * itemsize)  # the optimizer's state, read and written once

    # -- activation_bytes: what a step running each operation as a kernel of its own moves on top --
    # Every intermediate array written once and read once. Per point of the batch, forward: the hidden layer
    # before and after its ReLU (2 H), the logits and their log-softmax (2 C); backward: the gradients of the
    # log-softmax and of the logits (2 C), of the hidden layer after and before the ReLU (2 H). And every
    # parameter's gradient, written by the backward pass and read by the update (P).
    per_point = (2 * H + 2 * C) + (2 * C + 2 * H)
    activations = 2 * (B * per_point + P) * itemsize  # x (write + read)
    return StepCost(flops=float(dense + hidden_layer + loss + loss_backward + update), dense_flops=float(dense),
                    bytes=float(moved), activation_bytes=float(activations))
