"""Lecture 4's ladder in numpy: the one level numpy has, gradients by hand (the lecture's first slide,
"PyTorch: Tensors", in numpy). This is the reference every other level of every framework is compared with.

numpy has no autograd, no layers, no optimizer and no training loop: those levels are skipped rows that say so.
"""

import numpy as np

from tasks.ladder import CannotRun, Result

CLOSEST = {
    "autograd": "numpy has no autograd; closest: JAX's jax.grad over jax.numpy, numpy's own API (the JAX column)",
    "custom-function": "numpy has no autograd, so no differentiable function of one's own; closest: "
                       "jax.custom_vjp (the JAX column)",
    "layers": "numpy has no layers; the two matmuls are the layers (by-hand level)",
    "optimizer": "numpy has no optimizer; the update is one line by hand (by-hand level)",
    "model-class": "numpy has no model class; closest: a plain Python class holding w1 and w2",
    "fit": "numpy has no training loop; closest: the for loop of the by-hand level",
    "graph": "numpy runs each operation as it is called; it builds no graph",
}


def by_hand(problem, device):
    x, y, w1, w2 = problem.x, problem.y, problem.w1.copy(), problem.w2.copy()
    learning_rate = problem.lr
    for t in range(problem.steps):
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        loss = ((y_pred - y) ** 2).sum()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h_relu = grad_y_pred @ w2.T
        grad_h = grad_h_relu.copy()
        grad_h[h < 0] = 0
        grad_w1 = x.T @ grad_h

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
        yield float(loss)
    return Result(w1, w2)


LEVELS = {"by-hand": by_hand}


def train(problem, device, variant):
    level = LEVELS.get(problem.recipe.name)
    if level is None:
        raise CannotRun(CLOSEST[problem.recipe.name])
    return (yield from level(problem, device))
