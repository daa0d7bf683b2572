"""The seed's numpy column, in today's numpy: each function is one row of the course's table (the report
prints its body). numpy is the reference the other frameworks' rows are checked against."""

import numpy as np

# numpy arrays live in host memory; CuPy is the numpy-compatible library for GPUs.
NOT_AVAILABLE = {"to_gpu": "numpy arrays live in host memory only", "to_cpu": "numpy arrays live in host memory only"}


def array(data, dtype):
    return np.array(data, dtype=dtype)


def empty(shape, dtype):
    return np.empty(shape, dtype)


def ones(shape, dtype):
    return np.ones(shape, dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype)


def uniform(shape, dtype, seed):
    return np.random.default_rng(seed).random(shape, dtype)


def normal(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape, dtype)


def shape(x):
    return x.shape


def add(x, y):
    return x + y


def add_inplace(x, y):
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
    return np.concatenate([x, y])


def stack(x, y):
    return np.stack([x, y])


def expand_dims(x, axis):
    return np.expand_dims(x, axis)


def squeeze(x, axis):
    return np.squeeze(x, axis)


def arange(n, dtype):
    return np.arange(n, dtype=dtype)


def max_axis(x, axis):
    return x.max(axis=axis)


def maximum(x, y):
    return np.maximum(x, y)


def from_numpy(a):
    return np.asarray(a)


def to_numpy(x):
    return np.asarray(x)
