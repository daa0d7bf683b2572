"""The seed's table in PaddlePaddle 3 (dygraph): each function is one row of the course's table (the
report prints its body). Paddle follows PyTorch's naming closely (add_, unsqueeze, mv, cuda/cpu)."""

import contextlib

import paddle


@contextlib.contextmanager
def device_scope(device):
    # Paddle has a global device rather than a scope: set it, and restore it afterwards
    previous = paddle.get_device()
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    try:
        yield
    finally:
        paddle.set_device(previous)


def array(data, dtype):
    return paddle.to_tensor(data, dtype=dtype)


def empty(shape, dtype):
    return paddle.empty(shape, dtype)


def ones(shape, dtype):
    return paddle.ones(shape, dtype)


def zeros(shape, dtype):
    return paddle.zeros(shape, dtype)


def uniform(shape, dtype, seed):
    paddle.seed(seed)
    return paddle.rand(shape, dtype)


def normal(shape, dtype, seed):
    paddle.seed(seed)
    return paddle.randn(shape, dtype)


def shape(x):
    return x.shape


def add(x, y):
    return x + y


def add_inplace(x, y):
    x.add_(y)
    return x


def column(x):
    return x[:, 1]


def matmul(a, b):
    return paddle.matmul(a, b)


def matvec(a, v):
    return paddle.mv(a, v)


def reshape(x, shape):
    return paddle.reshape(x, shape)


def transpose(x):
    return x.T


def concatenate(x, y):
    return paddle.concat([x, y])


def stack(x, y):
    return paddle.stack([x, y])


def expand_dims(x, axis):
    return paddle.unsqueeze(x, axis)


def squeeze(x, axis):
    return paddle.squeeze(x, axis)


def arange(n, dtype):
    return paddle.arange(n, dtype=dtype)


def max_axis(x, axis):
    return paddle.max(x, axis=axis)


def maximum(x, y):
    return paddle.maximum(x, y)


def from_numpy(a):
    return paddle.to_tensor(a)


def to_numpy(x):
    return x.numpy()


def to_gpu(x):
    return x.cuda()


def to_cpu(x):
    return x.cpu()
