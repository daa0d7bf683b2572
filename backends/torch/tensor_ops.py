"""The seed's PyTorch column, in today's PyTorch (the course used 0.4.1, where torch.Tensor(5,3) made an
uninitialized tensor): each function is one row of the course's table (the report prints its body)."""

import contextlib

import torch


def framework_dtype(name):
    return getattr(torch, name)  # torch takes torch.float32, not the string


def device_scope(device):
    # a torch.device is a context manager: tensors created inside it land on that device
    return torch.device("cuda") if device == "gpu" else contextlib.nullcontext()


def array(data, dtype):
    return torch.tensor(data, dtype=dtype)


def empty(shape, dtype):
    return torch.empty(shape, dtype=dtype)


def ones(shape, dtype):
    return torch.ones(shape, dtype=dtype)


def zeros(shape, dtype):
    return torch.zeros(shape, dtype=dtype)


def uniform(shape, dtype, seed):
    torch.manual_seed(seed)
    return torch.rand(shape, dtype=dtype)


def normal(shape, dtype, seed):
    torch.manual_seed(seed)
    return torch.randn(shape, dtype=dtype)


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
    return a @ b


def matvec(a, v):
    return a.mv(v)


def reshape(x, shape):
    """view() never copies: it shares x's memory and refuses a layout it cannot view (reshape() copies then)."""
    return x.view(shape)


def transpose(x):
    return x.T


def concatenate(x, y):
    return torch.cat([x, y])


def stack(x, y):
    return torch.stack([x, y])


def expand_dims(x, axis):
    return x.unsqueeze(axis)


def squeeze(x, axis):
    return x.squeeze(axis)


def arange(n, dtype):
    return torch.arange(n, dtype=dtype)


def max_axis(x, axis):
    """Along a dimension torch.max returns (values, indices): the course's torch.max(z, -1)[1] is the argmax."""
    return x.max(dim=axis).values


def maximum(x, y):
    return torch.maximum(x, y)


def from_numpy(a):
    return torch.from_numpy(a)


def to_numpy(x):
    return x.numpy()


def to_gpu(x):
    return x.to("cuda")


def to_cpu(x):
    return x.cpu()
