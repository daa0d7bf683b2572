"""Lecture 4's ladder in JAX: arrays are immutable and functions pure, so each level is a step function
compiled with jax.jit, as JAX users write it. Gradients by hand in jax.numpy; jax.grad; jax.custom_vjp (a ReLU
with its own backward); Optax's SGD making the update.

JAX itself has no layers, no model classes, no training loop and no define-then-run graph: those levels are
skipped rows naming what comes closest (Flax and Equinox build layers and models on JAX; neither is installed
here).
"""

import jax
import jax.numpy as jnp
import optax

from tasks.ladder import CannotRun, Result

CLOSEST = {
    "layers": "JAX has no layers of its own; closest: Flax's nnx.Linear(use_bias=False) or Equinox's "
              "eqx.nn.Linear (not installed here); jax.example_libraries.stax.Dense always adds a bias",
    "model-class": "JAX has no model class; closest: a Flax nnx.Module or an Equinox eqx.Module (not installed "
                   "here), or a pytree of weights and a pure function, as every JAX level here is written",
    "fit": "JAX has no training loop; closest: the loop compiled with jax.lax.scan, or Keras' fit() on the JAX "
           "backend (the Keras column)",
    "graph": "JAX has no define-then-run graph; closest: jax.jit, which traces a Python function into a jaxpr "
             "and compiles it with XLA (every JAX level here is jitted)",
}


def arrays(problem, device):
    # x64 is a process-wide switch read when arrays are made and functions traced: set it both ways.
    jax.config.update("jax_enable_x64", problem.precision == "float64")
    device = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    return jax.device_put((problem.x, problem.y, problem.w1, problem.w2), device)


def by_hand(problem, device):
    x, y, w1, w2 = arrays(problem, device)
    learning_rate = problem.lr

    @jax.jit
    def step(w1, w2):
        h = x @ w1
        h_relu = jnp.maximum(h, 0)
        y_pred = h_relu @ w2
        loss = jnp.sum((y_pred - y) ** 2)

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h_relu = grad_y_pred @ w2.T
        grad_h = jnp.where(h < 0, 0, grad_h_relu)
        grad_w1 = x.T @ grad_h

        return loss, w1 - learning_rate * grad_w1, w2 - learning_rate * grad_w2

    for t in range(problem.steps):
        loss, w1, w2 = step(w1, w2)
        yield float(loss)
    return Result(jax.device_get(w1), jax.device_get(w2))


def autograd(problem, device):
    x, y, w1, w2 = arrays(problem, device)
    learning_rate = problem.lr

    def loss_fn(w1, w2):
        y_pred = jnp.maximum(x @ w1, 0) @ w2
        return jnp.sum((y_pred - y) ** 2)

    @jax.jit
    def step(w1, w2):
        loss, (grad_w1, grad_w2) = jax.value_and_grad(loss_fn, argnums=(0, 1))(w1, w2)

        return loss, w1 - learning_rate * grad_w1, w2 - learning_rate * grad_w2

    for t in range(problem.steps):
        loss, w1, w2 = step(w1, w2)
        yield float(loss)
    return Result(jax.device_get(w1), jax.device_get(w2))


def custom_function(problem, device):
    @jax.custom_vjp
    def my_relu(x):
        return jnp.maximum(x, 0)

    def my_relu_forward(x):
        return jnp.maximum(x, 0), x

    def my_relu_backward(x, grad_y):
        return (jnp.where(x < 0, 0, grad_y),)

    my_relu.defvjp(my_relu_forward, my_relu_backward)

    x, y, w1, w2 = arrays(problem, device)
    learning_rate = problem.lr

    def loss_fn(w1, w2):
        y_pred = my_relu(x @ w1) @ w2
        return jnp.sum((y_pred - y) ** 2)

    @jax.jit
    def step(w1, w2):
        loss, (grad_w1, grad_w2) = jax.value_and_grad(loss_fn, argnums=(0, 1))(w1, w2)

        return loss, w1 - learning_rate * grad_w1, w2 - learning_rate * grad_w2

    for t in range(problem.steps):
        loss, w1, w2 = step(w1, w2)
        yield float(loss)
    return Result(jax.device_get(w1), jax.device_get(w2))


def optimizer(problem, device):
    x, y, w1, w2 = arrays(problem, device)
    params = {"w1": w1, "w2": w2}
    optimizer = optax.sgd(problem.lr)
    opt_state = optimizer.init(params)

    def loss_fn(params):
        y_pred = jnp.maximum(x @ params["w1"], 0) @ params["w2"]
        return optax.squared_error(y_pred, y).sum()

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return loss, optax.apply_updates(params, updates), opt_state

    for t in range(problem.steps):
        loss, params, opt_state = step(params, opt_state)
        yield float(loss)
    return Result(jax.device_get(params["w1"]), jax.device_get(params["w2"]))


LEVELS = {"by-hand": by_hand, "autograd": autograd, "custom-function": custom_function, "optimizer": optimizer}


def train(problem, device, variant):
    level = LEVELS.get(problem.recipe.name)
    if level is None:
        raise CannotRun(CLOSEST[problem.recipe.name])
    return (yield from level(problem, device))
