"""The 3-zone classifier in JAX.

JAX is functional: the parameters are a dict of arrays (a pytree), the loss is a pure function of them,
and jax.value_and_grad gives its value and gradient. manual-sgd applies the course's update by hand with
jax.tree_util.tree_map; the other recipes use optax. The variants differ only in how the same step runs:
"jax" compiles it with jax.jit, "jax-nojit" dispatches it op by op, and "jax-scan" compiles the whole
training loop into one jax.lax.scan over the batches.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tasks.classifier import Chunk, Compiled, Result


def predict(params, x):
    hidden = jax.nn.relu(x @ params["W1"] + params["b1"])
    return hidden @ params["W2"] + params["b2"]


def loss_fn(params, x, y):
    return optax.losses.softmax_cross_entropy_with_integer_labels(predict(params, x), y).mean()


def make_optimizer(recipe):
    h = recipe.hyper
    if recipe.name == "sgd-momentum":
        return optax.sgd(h["lr"], momentum=h["momentum"])
    if recipe.name == "adam":
        return optax.adam(h["lr"], b1=h["beta1"], b2=h["beta2"], eps=h["eps"])
    if recipe.name == "adadelta":
        return optax.adadelta(h["lr"], rho=h["rho"], eps=h["eps"])
    raise ValueError(f"no optimizer for recipe {recipe.name}")


def make_step(optimizer):
    """One training step, step((params, opt_state), data, i, lr) -> (new state, loss), in the form
    jax.lax.scan wants. The loss is that of the parameters before the update."""

    def step(state, data, i, lr):
        params, opt_state = state
        X, Y, batches = data
        batch = batches[i]  # the data stays on the device; only the step number is sent each step
        loss, grads = jax.value_and_grad(loss_fn)(params, X[batch], Y[batch])
        if optimizer is None:  # the course's loop: plain gradient steps applied by hand
            params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        else:  # optax holds its own learning rate; lr is unused
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return (params, opt_state), loss

    return step


def train(problem, device, variant):
    # x64 is a process-wide switch, read when arrays are made and functions traced. The precision
    # belongs to the problem, not to the variant, so it is set here (both ways) rather than through
    # JAX_ENABLE_X64 in the adapter's VARIANT_ENVIRONMENT, which is keyed by variant.
    jax.config.update("jax_enable_x64", problem.precision == "float64")
    device = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    data = jax.device_put((problem.x_train, problem.y_train, problem.batches), device)
    params = jax.device_put(problem.params, device)
    optimizer = None if problem.recipe.name == "manual-sgd" else make_optimizer(problem.recipe)
    state = (params, None if optimizer is None else optimizer.init(params))
    step = make_step(optimizer)

    if variant == "jax-scan":
        @jax.jit
        def run(state, data, lrs):
            steps = jnp.arange(len(lrs))
            return jax.lax.scan(lambda s, xs: step(s, data, *xs), state, (steps, lrs))

        lrs = jax.device_put(np.array([problem.learning_rate(i) for i in range(problem.steps)],
                                      dtype=problem.precision), device)
        # Ahead-of-time: trace and compile now, and tell the worker (the empty yield) that compilation
        # ends here, so that the loop's time is the training's alone.
        compiled = run.lower(state, data, lrs).compile()
        yield Compiled()
        state, losses = compiled(state, data, lrs)
        yield Chunk(np.asarray(losses, dtype=np.float64))
    else:
        if variant == "jax":
            step = jax.jit(step)
        for i in range(problem.steps):
            # i and lr go in as traced arguments, not constants closed over: jit compiles the step
            # once, instead of once per step number and per rate of the schedule.
            state, loss = step(state, data, i, problem.learning_rate(i))
            yield float(loss)

    params = state[0]
    val_logits = predict(params, jax.device_put(problem.x_val, device))
    return Result(params={k: np.array(v) for k, v in params.items()}, val_logits=np.array(val_logits),
                  notes=differences(problem))


def differences(problem):
    if problem.recipe.name == "adam" and problem.precision == "float32":
        return ["optax computes Adam's bias corrections 1 - beta**t in float32 from betas rounded to float32 "
                "(1 - 0.999**t comes out about 2e-5 relative off), where the reference computes them in "
                "float64: this accounts for most of JAX's float32 deviation from numpy on adam."]
    return []
