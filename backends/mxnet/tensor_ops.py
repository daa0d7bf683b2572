"""The seed's table in MXNet 1.9's NDArray API: each function is one row of the course's table (the report
prints its body). MXNet's engine runs ops asynchronously: ready() waits for a result."""

import mxnet as mx


def device_scope(device):
    # a Context is a context manager: arrays created inside it land on that device
    return mx.gpu(0) if device == "gpu" else mx.cpu()


def ready(x):
    x.wait_to_read()


def array(data, dtype):
    return mx.nd.array(data, dtype=dtype)


def empty(shape, dtype):
    return mx.nd.empty(shape, dtype=dtype)


def ones(shape, dtype):
    return mx.nd.ones(shape, dtype=dtype)


def zeros(shape, dtype):
    return mx.nd.zeros(shape, dtype=dtype)


def uniform(shape, dtype, seed):
    mx.random.seed(seed)
    return mx.nd.random.uniform(shape=shape, dtype=dtype)


def normal(shape, dtype, seed):
    mx.random.seed(seed)
    return mx.nd.random.normal(shape=shape, dtype=dtype)


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
    return mx.nd.dot(a, b)


def matvec(a, v):
    return mx.nd.dot(a, v)


def reshape(x, shape):
    return x.reshape(shape)


def transpose(x):
    return x.T


def concatenate(x, y):
    return mx.nd.concat(x, y, dim=0)


def stack(x, y):
    return mx.nd.stack(x, y)


def expand_dims(x, axis):
    return x.expand_dims(axis)


def squeeze(x, axis):
    return x.squeeze(axis=axis)


def arange(n, dtype):
    return mx.nd.arange(n, dtype=dtype)


def max_axis(x, axis):
    return x.max(axis=axis)


def maximum(x, y):
    return mx.nd.maximum(x, y)


def from_numpy(a):
    """nd.array makes float32 from any numpy array unless given its dtype."""
    return mx.nd.array(a, dtype=a.dtype)


def to_numpy(x):
    return x.asnumpy()


def to_gpu(x):
    return x.as_in_context(mx.gpu(0))


def to_cpu(x):
    return x.as_in_context(mx.cpu())
