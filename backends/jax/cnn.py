"""The CNN of PyTorch's CIFAR-10 tutorial in JAX: a dict of arrays for the parameters, jax.lax's
convolution and max-pool, jax.value_and_grad, optax's SGD with momentum, the step compiled by jax.jit
("jax-nojit": the same step, dispatched op by op).

The layout is the spec's own: NCHW images and OIHW kernels, which are jax.lax.conv's defaults. The
dimension numbers only name the logical axes; XLA picks the physical layout of each array itself, so
there is nothing to gain from converting to NHWC, and the weights need no conversion either way.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tasks.cnn import Result

DIMENSIONS = ("NCHW", "OIHW", "NCHW")  # images, kernels, outputs


def conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, window_strides=(1, 1), padding="VALID", dimension_numbers=DIMENSIONS)
    return y + b[:, None, None]


def max_pool(x):  # 2x2, stride 2, over H and W
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def predict(params, x):  # x: (batch, 3, 32, 32)
    x = max_pool(jax.nn.relu(conv(x, params["conv1_w"], params["conv1_b"])))
    x = max_pool(jax.nn.relu(conv(x, params["conv2_w"], params["conv2_b"])))
    x = x.reshape(x.shape[0], -1)  # C, H, W order: fc1_w's rows as the spec has them
    x = jax.nn.relu(x @ params["fc1_w"] + params["fc1_b"])
    x = jax.nn.relu(x @ params["fc2_w"] + params["fc2_b"])
    return x @ params["fc3_w"] + params["fc3_b"]


def loss_fn(params, x, y):
    return optax.losses.softmax_cross_entropy_with_integer_labels(predict(params, x), y).mean()


def train(problem, device, variant):
    # x64 is a process-wide switch, read when arrays are made and functions traced.
    jax.config.update("jax_enable_x64", problem.precision == "float64")
    device = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    data = jax.device_put((problem.x_train, problem.y_train, problem.batches), device)
    params = jax.device_put(problem.params, device)
    # optax's momentum is PyTorch's: trace v = g + momentum * v (from 0), update -lr * v.
    optimizer = optax.sgd(problem.recipe.hyper["lr"], momentum=problem.recipe.hyper["momentum"])
    opt_state = optimizer.init(params)

    def step(params, opt_state, data, i):
        X, Y, batches = data
        batch = batches[i]  # the data stays on the device; only the step number is sent each step
        loss, grads = jax.value_and_grad(loss_fn)(params, X[batch], Y[batch])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    forward = predict
    if variant == "jax":  # "jax-nojit" runs the same functions op by op
        step, forward = jax.jit(step), jax.jit(predict)
    for i in range(problem.steps):
        params, opt_state, loss = step(params, opt_state, data, i)
        yield float(loss)

    x_test = jax.device_put(problem.x_test, device)
    chunk = problem.eval_batch_size
    test_logits = jnp.concatenate([forward(params, x_test[i:i + chunk]) for i in range(0, len(x_test), chunk)])
    return Result(params={k: np.array(v) for k, v in params.items()}, test_logits=np.array(test_logits),
                  layout="NCHW")
