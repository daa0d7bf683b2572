"""The seed's table in JAX (jax.numpy, eager): each function is one row of the course's table (the report
prints its body). jax.Array is immutable, and JAX dispatches asynchronously: ready() waits for a result."""

import jax
import jax.numpy as jnp
import numpy as np


def framework_dtype(name):
    if name == "float64":
        jax.config.update("jax_enable_x64", True)  # else JAX silently computes float64 requests in float32
    return jnp.dtype(name)


def device_scope(device):
    return jax.default_device(jax.devices("gpu" if device == "gpu" else "cpu")[0])


def ready(x):
    x.block_until_ready()


def array(data, dtype):
    return jnp.array(data, dtype=dtype)


def empty(shape, dtype):
    """jnp.empty returns zeros: XLA has no uninitialized buffers."""
    return jnp.empty(shape, dtype)


def ones(shape, dtype):
    return jnp.ones(shape, dtype)


def zeros(shape, dtype):
    return jnp.zeros(shape, dtype)


def uniform(shape, dtype, seed):
    return jax.random.uniform(jax.random.key(seed), shape, dtype)


def normal(shape, dtype, seed):
    return jax.random.normal(jax.random.key(seed), shape, dtype)


def shape(x):
    return x.shape


def add(x, y):
    return x + y


def add_inplace(x, y):
    """A jax.Array cannot change: x += y rebinds the name x to a new array (as x.at[i].add(y) makes a new
    array for an update of part of it)."""
    x += y
    return x


def column(x):
    return x[:, 1]


def matmul(a, b):
    return a @ b


def matvec(a, v):
    return a @ v


def reshape(x, shape):
    return x.reshape(shape)


def transpose(x):
    return x.T


def concatenate(x, y):
    return jnp.concatenate([x, y])


def stack(x, y):
    return jnp.stack([x, y])


def expand_dims(x, axis):
    return jnp.expand_dims(x, axis)


def squeeze(x, axis):
    return jnp.squeeze(x, axis)


def arange(n, dtype):
    return jnp.arange(n, dtype=dtype)


def max_axis(x, axis):
    return x.max(axis=axis)


def maximum(x, y):
    return jnp.maximum(x, y)


def from_numpy(a):
    return jnp.asarray(a)


def to_numpy(x):
    return np.asarray(x)


def to_gpu(x):
    return jax.device_put(x, jax.devices("gpu")[0])


def to_cpu(x):
    return jax.device_put(x, jax.devices("cpu")[0])
