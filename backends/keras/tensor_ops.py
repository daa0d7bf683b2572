"""The seed's table in Keras 3's backend-agnostic keras.ops (and keras.random): each function is one row of
the course's table (the report prints its body). The arrays are those of Keras' backend (TensorFlow, JAX or
PyTorch), so the bridge and in-place rows measure that backend's tensors."""

import keras


def framework_dtype(name):
    if name == "float64" and keras.backend.backend() == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)  # else JAX silently computes float64 requests in float32
    return name


def device_scope(device):
    return keras.device("gpu:0" if device == "gpu" else "cpu:0")


def ready(x):
    if hasattr(x, "block_until_ready"):  # the JAX backend dispatches asynchronously
        x.block_until_ready()


def about():
    return {"backend": keras.backend.backend()}


_NO_TRANSFER = ("keras.ops has no op that moves a tensor to another device (keras.distribution lays tensors out "
                "for multi-device training): keras.device() chooses where new tensors are made")
NOT_AVAILABLE = {"to_gpu": _NO_TRANSFER, "to_cpu": _NO_TRANSFER}


def array(data, dtype):
    return keras.ops.convert_to_tensor(data, dtype=dtype)


def empty(shape, dtype):
    return keras.ops.empty(shape, dtype=dtype)


def ones(shape, dtype):
    return keras.ops.ones(shape, dtype=dtype)


def zeros(shape, dtype):
    return keras.ops.zeros(shape, dtype=dtype)


def uniform(shape, dtype, seed):
    return keras.random.uniform(shape, dtype=dtype, seed=seed)


def normal(shape, dtype, seed):
    return keras.random.normal(shape, dtype=dtype, seed=seed)


def shape(x):
    return keras.ops.shape(x)


def add(x, y):
    return keras.ops.add(x, y)


def add_inplace(x, y):
    """keras.ops returns new tensors: what Keras updates in place is a keras.Variable (assign_add)."""
    v = keras.Variable(x)
    v.assign_add(y)
    return v


def column(x):
    return x[:, 1]


def matmul(a, b):
    return keras.ops.matmul(a, b)


def matvec(a, v):
    return keras.ops.matmul(a, v)


def reshape(x, shape):
    return keras.ops.reshape(x, shape)


def transpose(x):
    return keras.ops.transpose(x)


def concatenate(x, y):
    return keras.ops.concatenate([x, y])


def stack(x, y):
    return keras.ops.stack([x, y])


def expand_dims(x, axis):
    return keras.ops.expand_dims(x, axis)


def squeeze(x, axis):
    return keras.ops.squeeze(x, axis)


def arange(n, dtype):
    return keras.ops.arange(n, dtype=dtype)


def max_axis(x, axis):
    return keras.ops.max(x, axis=axis)


def maximum(x, y):
    return keras.ops.maximum(x, y)


def from_numpy(a):
    return keras.ops.convert_to_tensor(a)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)
