"""The CNN of the PyTorch CIFAR-10 tutorial, as a framework-free spec.

The network: conv 3->6 5x5 (valid), ReLU, max-pool 2x2 stride 2, conv 6->16 5x5, ReLU, max-pool 2,
flatten (16x5x5 = 400), dense 120, ReLU, dense 84, ReLU, dense 10; mean softmax cross-entropy over the
batch; SGD with lr 0.001 and momentum 0.9 in PyTorch's form (v <- 0.9 v + g; p <- p - lr v, v from 0).
Inputs are (pixel/255 - 0.5) / 0.5 per channel, as the tutorial's Normalize((0.5,)*3, (0.5,)*3).
Option `width` multiplies the convolutions' channels: 6*width and 16*width, so fc1 takes 16*width*5*5
inputs (120, 84 and 10 stay); width 1 is the tutorial's network. A backend builds its network from the
weights it is given (width_of(params)), so any problem carrying these weights gets the right one.

Everything a backend needs comes from `make_problem(...)` as numpy arrays, in NCHW and in the spec's
weight layout (below): normalized images, labels, initial weights (PyTorch's default initialization,
drawn by numpy from the seed) and the batch order. A backend converts the weights to its own layout
(e.g. NHWC: kernels HWIO, and fc1_w's rows permuted from C,H,W to H,W,C flatten order), visibly, and
back for the Result.

The batch order: one fixed permutation of the training images is drawn from the seed, whatever the
subset size; the training subset of size N is its first N images, in that order, and the first epoch
visits them in that order; later epochs reshuffle the subset with fresh permutations from the seed. So a
run on a subset (the slow numpy reference) starts with the same batches as a run on the full set, and
their first steps can be compared. The last partial batch of an epoch is dropped (every step has the
same batch size; with the tutorial's batch 4 nothing is dropped from 50,000 images).

A backend implements `train(problem, device, variant)` as a generator: it yields each step's loss as a
Python float (or Chunk / Compiled: tasks/protocol.py) and returns a `Result` after predicting the whole test
set (in chunks of problem.eval_batch_size images); option `test_size` keeps only its first N images (a
sweep's cells, whose time should go to the steps being timed).

`rosetta sweep` varies batch_size and width (SWEEP) and divides the measured step time by step_cost(),
the arithmetic of one step counted by hand from the shapes (the last section of this module).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tasks import cifar10
from tasks.protocol import Chunk, Compiled, TaskOption, curve_problem  # noqa: F401 (the step protocol, for the backends)
from tasks.protocol import StepCost, Sweep

NAME = "cnn"
SUMMARY = "the CNN of the PyTorch CIFAR-10 tutorial (2 conv + 3 dense layers), SGD momentum, on CIFAR-10"
KIND = "training"
RANK = 50
TIMEOUT_S = 4 * 3600  # the tutorial recipe trains 25,000 steps of batch 4
ACCURACY_ON = "the test images (all 10,000 unless --test-size)"
OPTIONS = {
    "epochs": TaskOption("epochs", "training epochs (default: the recipe's own)"),
    "batch_size": TaskOption("batch_size", "images per step (default: the recipe's own)"),
    "width": TaskOption("width", "channel width multiplier: the convolutions have 6*width and 16*width channels "
                                 "(default 1, the tutorial's)"),
    "test_size": TaskOption("test_size", "test images predicted after training: the first N of the 10,000 "
                                         "(default: all of them)"),
    "data_dir": TaskOption("data_dir", "CIFAR-10, as the cifar-10-batches-py folder, a folder holding it, or "
                                       "cifar-10-python.tar.gz (default: $ROSETTA_CIFAR10, then the cache)", kind="path"),
    "download": TaskOption("download", "download CIFAR-10 (170 MB, MD5-checked) into the cache if it is not found",
                           kind="flag"),
}

DEFAULT_SIZE = 50_000  # the whole training set
MIN_SIZE = 1
# `rosetta run --quick`: a first look, a few seconds of training per cell.
QUICK_SIZE = 5_000
QUICK_STEPS = {"tutorial": 500, "batch64": 60}

CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
EVAL_BATCH_SIZE = 500

# In float64 the frameworks' curves match numpy's to rounding over the first steps (they sum in other
# orders): measured at most 2e-16 over 20 steps of batch 4. In float32 they drift apart by rounding:
# measured 1e-7 to 9.3e-7 (MXNet) on 1,000 real images, hence a bound ten times that.
AGREEMENT_STEPS = 20
AGREEMENT_TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
# Which records are runs of the same problem, for the report's agreement with numpy: the first steps do
# not depend on the subset size, the number of steps or of epochs (see the batch order above).
# The width changes the network, so the weights; the test set's size changes nothing before the end.
SAME_PROBLEM = ("task", "recipe", "precision", "seed", "batch_size", "width")

TEST_IMAGES = 10_000  # CIFAR-10's test set: the most test_size may ask for


def param_shapes(width: int = 1) -> dict:
    """The layer shapes in the spec's layout: conv kernels OIHW, dense weights (in, out)."""
    c1, c2 = 6 * width, 16 * width
    return {
        "conv1_w": (c1, 3, 5, 5), "conv1_b": (c1,),
        "conv2_w": (c2, c1, 5, 5), "conv2_b": (c2,),
        "fc1_w": (c2 * 5 * 5, 120), "fc1_b": (120,),
        "fc2_w": (120, 84), "fc2_b": (84,),
        "fc3_w": (84, 10), "fc3_b": (10,),
    }


def fan_in(width: int = 1) -> dict:
    """Each layer's inputs per output: what PyTorch's default initialization scales by."""
    c1, c2 = 6 * width, 16 * width
    return {"conv1": 3 * 5 * 5, "conv2": c1 * 5 * 5, "fc1": c2 * 5 * 5, "fc2": 120, "fc3": 84}


def width_of(params: dict) -> int:
    """The width a set of weights in the spec's layout was made for (conv1 has 6*width kernels)."""
    return len(params["conv1_w"]) // 6


# The tutorial's network (width 1).
PARAM_SHAPES = param_shapes(1)
FAN_IN = fan_in(1)


@dataclass(frozen=True)
class Recipe:
    name: str
    batch_size: int
    epochs: int
    hyper: dict = field(default_factory=dict)
    summary: str = ""


RECIPES = {
    "tutorial": Recipe("tutorial", batch_size=4, epochs=2, hyper={"lr": 0.001, "momentum": 0.9},
                       summary="the tutorial's recipe: batch 4, 2 epochs, SGD lr 0.001 momentum 0.9"),
    "batch64": Recipe("batch64", batch_size=64, epochs=2, hyper={"lr": 0.001, "momentum": 0.9},
                      summary="the same training in batches of 64 (for throughput): 2 epochs, "
                              "SGD lr 0.001 momentum 0.9"),
}
DEFAULT_RECIPE = "tutorial"


@dataclass
class Problem:
    """One instance of the task, in NCHW and in the spec's weight layout (see param_shapes)."""

    x_train: np.ndarray  # (n_train, 3, 32, 32) float32 or float64, normalized
    y_train: np.ndarray  # (n_train,) int64 in 0..9
    x_test: np.ndarray  # (n_test, 3, 32, 32)
    y_test: np.ndarray  # (n_test,)
    class_names: tuple  # 10 names, in label order
    params: dict  # name -> array, param_shapes(width), in the run's precision
    batches: np.ndarray  # (steps, batch_size) int64 row indices into x_train, in training order
    recipe: Recipe
    precision: str
    seed: int
    eval_batch_size: int = EVAL_BATCH_SIZE
    steps_per_epoch: int = 0

    @property
    def steps(self) -> int:
        return len(self.batches)

    @property
    def width(self) -> int:
        return width_of(self.params)

    @property
    def batch_size(self) -> int:
        return self.recipe.batch_size

    @property
    def epochs(self) -> int:
        return self.recipe.epochs


@dataclass
class Result:
    """What a backend returns once training ends (the per-step losses come from its yields)."""

    params: dict  # final parameters in the spec's layout (param_shapes(width)), numpy arrays
    test_logits: np.ndarray  # (n_test, 10) scores before softmax
    layout: str  # "NCHW" or "NHWC": what the backend computed in
    notes: list = field(default_factory=list)


# ------------------------------------------------------------------------------------------ problem

def validate(size: int, recipe: str, steps: int | None = None, epochs: int | None = None,
             batch_size: int | None = None, data_dir=None, width: int | None = None,
             test_size: int | None = None) -> None:
    """Raise ValueError, with a message that says what to do, for settings that cannot run.
    (Whether data_dir holds enough images is checked by make_problem, which reads it.)"""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    if width is not None and (isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1):
        raise ValueError(f"--width must be a whole number of at least 1, got {width!r}")
    if test_size is not None and (isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer))
                                  or not 1 <= test_size <= TEST_IMAGES):
        raise ValueError(f"--test-size must be a whole number from 1 to {TEST_IMAGES}, got {test_size!r}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    batch = batch_size or RECIPES[recipe].batch_size
    if size < max(MIN_SIZE, batch):
        raise ValueError(f"size {size} is smaller than one batch of {batch}; use a larger --size")
    if size > DEFAULT_SIZE:
        raise ValueError(f"size {size} is more than the {DEFAULT_SIZE} CIFAR-10 training images; use --size "
                         f"{DEFAULT_SIZE} or less")


def initial_params(rng: np.random.Generator, dtype, width: int = 1) -> dict:
    """PyTorch's default initialization of Conv2d and Linear: weights and biases uniform in
    +-1/sqrt(fan_in) (kaiming_uniform with a=sqrt(5) gives that bound for the weights), drawn layer by
    layer in param_shapes' order."""
    params, fans = {}, fan_in(width)
    for name, shape in param_shapes(width).items():
        bound = 1.0 / np.sqrt(fans[name.rpartition("_")[0]])
        params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
    return params


def normalize(images: np.ndarray, dtype) -> np.ndarray:
    """uint8 pixels -> (pixel/255 - 0.5) / 0.5, as ToTensor() then Normalize((0.5,)*3, (0.5,)*3)."""
    x = images.astype(dtype)  # the one copy: 50,000 images in float64 are 1.2 GB
    x /= 255
    x -= 0.5
    x /= 0.5
    return x


def batch_order(rng: np.random.Generator, n_train: int, batch_size: int, epochs: int,
                steps: int | None) -> np.ndarray:
    """Epoch 1 in the subset's order, later epochs reshuffled; the last partial batch of each epoch dropped."""
    per_epoch = n_train // batch_size
    steps = steps or per_epoch * epochs
    epochs = -(-steps // per_epoch)
    orders = [np.arange(n_train)] + [rng.permutation(n_train) for _ in range(epochs - 1)]
    order = np.concatenate([o[: per_epoch * batch_size] for o in orders])
    return order[: steps * batch_size].reshape(steps, batch_size).astype(np.int64)


def locate_data(options: dict) -> dict:
    """In the engine, once per run: the CIFAR-10 folder every cell will read (found, unpacked or downloaded)."""
    from tasks.cifar10_data import locate_cifar10
    download = options.pop("download", False)
    options["data_dir"] = str(locate_cifar10(options.get("data_dir"), download=download))
    return options


def make_problem(size: int = DEFAULT_SIZE, seed: int = 0, recipe: str = DEFAULT_RECIPE,
                 precision: str = "float32", steps: int | None = None, lr: float | None = None,
                 epochs: int | None = None, batch_size: int | None = None, data_dir=None,
                 width: int | None = None, test_size: int | None = None) -> Problem:
    """size: the training subset (the first `size` images of the seed's permutation); the test set is
    test_batch, or its first test_size images (all of them where the folder holds fewer). epochs,
    batch_size, lr replace the recipe's; steps cuts training short; width widens the convolutions.
    data_dir: a cifar-10-batches-py folder (or the folder containing it)."""
    validate(size, recipe, steps, epochs, batch_size, width=width, test_size=test_size)
    if precision not in AGREEMENT_TOLERANCE:
        raise ValueError(f"unknown precision {precision!r}; choose float32 or float64")
    if data_dir is None:
        raise ValueError(f"the {NAME} task needs CIFAR-10: pass --data-dir DIR (a cifar-10-batches-py folder or "
                         "cifar-10-python.tar.gz), set ROSETTA_CIFAR10, or pass --download")
    chosen = RECIPES[recipe]
    chosen = replace(chosen, batch_size=batch_size or chosen.batch_size, epochs=epochs or chosen.epochs,
                     hyper={**chosen.hyper, "lr": chosen.hyper["lr"] if lr is None else lr})

    images, labels, test_images, test_labels, names = cifar10.load(Path(data_dir))
    if size > len(images):
        raise ValueError(f"size {size} is more than the {len(images)} training images in {data_dir}; "
                         f"use --size {len(images)} or less")

    # Independent streams, so that the subset size or the number of steps never changes the weights, and
    # the subset of size N is the first N images of one permutation of all of them.
    subset_rng, init_rng, order_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    subset = subset_rng.permutation(len(images))[:size]
    x_train = normalize(images[subset], precision)
    y_train = labels[subset]
    del images
    test_images, test_labels = test_images[:test_size], test_labels[:test_size]  # None: all of them
    batches = batch_order(order_rng, size, chosen.batch_size, chosen.epochs, steps)
    return Problem(
        x_train=x_train, y_train=y_train, x_test=normalize(test_images, precision), y_test=test_labels,
        class_names=tuple(names), params=initial_params(init_rng, precision, width or 1), batches=batches,
        recipe=chosen, precision=precision, seed=seed, steps_per_epoch=size // chosen.batch_size,
    )


# ------------------------------------------------------------------------------------------ metrics

def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = CLASSES) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def check(problem: Problem, result: Result, losses: list) -> dict:
    """Metrics and a verdict for one finished training (agreement with numpy is judged in the report)."""
    wrong = curve_problem(losses, problem.steps, "losses")
    if wrong:
        return {"verdict": wrong, "final_loss": float("nan")}
    losses = np.asarray(losses, dtype=np.float64)
    logits = np.asarray(result.test_logits)
    n_test = len(problem.y_test)
    if logits.shape != (n_test, CLASSES):
        return {"verdict": f"wrong: test logits of shape {logits.shape}, expected {(n_test, CLASSES)}"}
    for name, shape in param_shapes(problem.width).items():
        final = np.asarray(result.params.get(name))
        if final.shape != shape:
            return {"verdict": f"wrong: parameter {name} of shape {final.shape}, expected {shape} "
                               f"(the spec's layout)"}
    if result.layout not in ("NCHW", "NHWC"):
        return {"verdict": f"wrong: layout {result.layout!r}, expected 'NCHW' or 'NHWC'"}
    predicted = logits.argmax(axis=1)
    counts = confusion_matrix(problem.y_test, predicted)
    per_class = counts.diagonal() / np.maximum(counts.sum(axis=1), 1)
    accuracy = float((predicted == problem.y_test).mean())
    return {
        "test_accuracy": accuracy,
        "val_accuracy": accuracy,  # the generic results table's accuracy column
        "per_class_accuracy": [float(a) for a in per_class],
        "confusion_matrix": counts.tolist(),
        "final_loss": float(losses[-1]),
        "layout": result.layout,
        "n_test": n_test,
        "n_train": len(problem.x_train),
        "epochs": problem.epochs,  # the recipe's; a run cut short by steps trains epochs_trained
        "epochs_trained": round(problem.steps / problem.steps_per_epoch, 3),
        "verdict": "ok" if np.isfinite(logits).all() else "diverged (non-finite predictions)",
    }


def summary_for_report(problem: Problem, result: Result) -> dict:
    """Small JSON-able data for the report's tables."""
    return {"class_names": list(problem.class_names), "layout": result.layout,
            "steps_per_epoch": problem.steps_per_epoch, "epochs": problem.epochs}


# ------------------------------------------------------------------------------------------ sweep

# `rosetta sweep --task cnn`: batch size and channel width, from the tutorial's network (batch 4, width 1),
# whose step is a few dozen small operations, to batch 256 at width 8, 2,000 times the FLOPs, whose step is
# the convolutions' arithmetic; each point about 6 times the FLOPs of the one before (batch x 8, then batch
# and width doubled). Every cell predicts only the first 500 test images, so that its time goes to the timed
# steps. Sized so that the default sweep of the 7 frameworks' default variants (timed cells and float64
# checks) spends about 7 minutes in this task's cells on 2 cores, the quick one under 3 (the ceiling's
# cells come on top): estimated from each framework's per-cell start-up and step times at the smallest
# and the largest point, and confirmed by one run of each on a busy 2-core machine.
SWEEP = Sweep(
    sizes=("batch_size", "width"),
    grid=({"batch_size": 4, "width": 1}, {"batch_size": 32, "width": 1}, {"batch_size": 64, "width": 2},
          {"batch_size": 128, "width": 4}, {"batch_size": 256, "width": 8}),
    quick_grid=({"batch_size": 4, "width": 1}, {"batch_size": 64, "width": 2}, {"batch_size": 128, "width": 4}),
    steps=20, quick_steps=10, check_steps=3, recipe="tutorial", options={"test_size": 500},
)


# ------------------------------------------------------------------------------------------ step cost
#
# The arithmetic of one training step, counted by hand from the shapes (tasks.protocol.StepCost).
# Convention: a multiply-add is 2 FLOPs; every other operation is 1 FLOP per element it produces (an add,
# a multiply, a divide, a compare, ReLU's max with 0, exp, log); a reduction of n numbers to one (a sum, a
# max) is n - 1; moving data (im2col, a transpose, a gather, routing a gradient to a window's max) is free.
# It counts what an ideal step must do, not what an implementation does: a convolution is its multiply-adds
# (2 * outputs * in_channels * k * k) however it is computed (im2col and col2im, Winograd, FFT), and the
# images need no gradient, so conv1's input gradient is not computed.

def _layers(width: int) -> tuple[dict, tuple]:
    """{layer: multiply-adds per image} of the convolutions and matrix products, in forward order, and the
    convolutions' output elements per image (before ReLU and max-pool), at a width."""
    c1, c2 = 6 * width, 16 * width
    a1, a2 = c1 * 28 * 28, c2 * 10 * 10
    macs = {"conv1": a1 * 3 * 5 * 5, "conv2": a2 * c1 * 5 * 5,
            "fc1": c2 * 5 * 5 * 120, "fc2": 120 * 84, "fc3": 84 * 10}
    return macs, (a1, a2)


def step_cost(size: int, recipe: str = DEFAULT_RECIPE, batch_size: int | None = None, width: int | None = None,
              precision: str = "float32", **_) -> StepCost:
    """FLOPs, matrix-product FLOPs and the least bytes of one step (forward, backward, SGD-momentum update)
    of batch_size images (default: the recipe's) at width (default 1), in precision (for the bytes; a sweep
    times float32). size, the training subset, changes nothing in a step; the other options neither."""
    B = batch_size or RECIPES[recipe].batch_size
    w = width or 1
    macs, (a1, a2) = _layers(w)
    p1, p2 = a1 // 4, a2 // 4  # after each 2x2 max-pool
    h1, h2, z = 120, 84, CLASSES  # fc1's and fc2's outputs, the logits
    shapes = param_shapes(w)
    n_params = sum(int(np.prod(shape)) for shape in shapes.values())
    n_biases = sum(shape[0] for name, shape in shapes.items() if name.endswith("_b"))

    # Convolutions and matrix products (dense_flops): 2 per multiply-add, B images.
    forward_products = 2 * B * sum(macs.values())
    weight_gradients = 2 * B * sum(macs.values())  # dL/dW of each layer: a product of the forward's size
    input_gradients = 2 * B * sum(m for name, m in macs.items() if name != "conv1")  # dL/dx of every layer
    #                                     but conv1, whose input is the images: nothing needs their gradient
    dense = forward_products + weight_gradients + input_gradients

    # Element operations of the forward pass, per image.
    forward = (a1 + a2 + h1 + h2 + z  # bias adds
               + a1 + a2 + h1 + h2  # ReLU
               + 3 * (p1 + p2)  # max-pool: 3 compares per 2x2 window
               + 4 * z)  # softmax cross-entropy: the row's max (z - 1), minus it (z), exp (z), their sum
    #                      (z - 1), its log (1), minus the label's shifted logit (1)
    # ... of the backward pass, per image.
    backward = (2 * z + 1  # dL/dlogits = (softmax - one-hot) / B: exp / sum (z), -1 at the label, / B (z)
                + a1 + a2 + h1 + h2  # ReLU: the gradient where the input was positive, else 0 (a select)
                + a1 + a2)  # max-pool: each window's gradient to its max, 0 to the other three (a select)
    bias_gradients = B * (a1 + a2 + h1 + h2 + z) - n_biases  # each bias's sum over the batch (and pixels)
    loss_mean = B  # the mean of the batch's losses: B - 1 adds and a divide
    update = 4 * n_params  # SGD momentum: v <- momentum * v + g (2), p <- p - lr * v (2)
    flops = dense + B * (forward + backward) + bias_gradients + loss_mean + update

    # The least traffic (bytes): the batch read (the normalized images in the precision, the int64 labels),
    # every parameter and its momentum read once and written once. Activations and gradients are not
    # counted: a fused step could keep them in cache.
    itemsize = np.dtype(precision).itemsize
    batch = B * (3 * 32 * 32 * itemsize + np.dtype(np.int64).itemsize)
    state = 2 * 2 * n_params * itemsize  # (parameters + momentum) x (read + write)

    # What a step that runs each operation as a kernel of its own moves on top: every intermediate array
    # written once and read once. Per image, forward: each convolution's output and its ReLU (2 a), each
    # pool's output (p), each dense layer's output and its ReLU (2 h), the logits and their log-softmax (2 z);
    # backward: the log-softmax's and the logits' gradients (2 z), each dense layer's before and after ReLU (2 h),
    # each pool's (p), each convolution's after the pool's routing and after ReLU's select (2 a). And every
    # parameter's gradient, written by the backward pass and read by the update.
    per_image = 2 * (a1 + a2) + (p1 + p2) + 2 * (h1 + h2) + 2 * z  # forward
    per_image += 2 * z + 2 * (h1 + h2) + (p1 + p2) + 2 * (a1 + a2)  # backward
    activations = 2 * (B * per_image + n_params) * itemsize  # x (write + read)
    return StepCost(flops=float(flops), dense_flops=float(dense), bytes=float(batch + state),
                    activation_bytes=float(activations))
