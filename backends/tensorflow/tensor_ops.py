"""The seed's table in TensorFlow 2 (eager): each function is one row of the course's table (the report
prints its body). tf.Tensor is immutable: what changes in place is a tf.Variable."""

import tensorflow as tf


def device_scope(device):
    return tf.device("/GPU:0" if device == "gpu" else "/CPU:0")


def array(data, dtype):
    return tf.constant(data, dtype=dtype)


def empty(shape, dtype):
    """TensorFlow has no uninitialized tensor (an immutable tensor is filled when it is made): zeros instead."""
    return tf.zeros(shape, dtype)


def ones(shape, dtype):
    return tf.ones(shape, dtype)


def zeros(shape, dtype):
    return tf.zeros(shape, dtype)


def uniform(shape, dtype, seed):
    return tf.random.Generator.from_seed(seed).uniform(shape, dtype=dtype)


def normal(shape, dtype, seed):
    return tf.random.Generator.from_seed(seed).normal(shape, dtype=dtype)


def shape(x):
    return x.shape


def add(x, y):
    return x + y


def add_inplace(x, y):
    """A tf.Tensor cannot change: the in-place update is a tf.Variable's assign_add."""
    v = tf.Variable(x)
    v.assign_add(y)
    return v


def column(x):
    return x[:, 1]


def matmul(a, b):
    return tf.matmul(a, b)


def matvec(a, v):
    return tf.linalg.matvec(a, v)


def reshape(x, shape):
    return tf.reshape(x, shape)


def transpose(x):
    return tf.transpose(x)


def concatenate(x, y):
    return tf.concat([x, y], axis=0)


def stack(x, y):
    return tf.stack([x, y])


def expand_dims(x, axis):
    return tf.expand_dims(x, axis)


def squeeze(x, axis):
    return tf.squeeze(x, axis)


def arange(n, dtype):
    return tf.range(n, dtype=dtype)


def max_axis(x, axis):
    return tf.reduce_max(x, axis=axis)


def maximum(x, y):
    return tf.maximum(x, y)


def from_numpy(a):
    return tf.convert_to_tensor(a)


def to_numpy(x):
    return x.numpy()


def to_gpu(x):
    with tf.device("/GPU:0"):
        return tf.identity(x)


def to_cpu(x):
    with tf.device("/CPU:0"):
        return tf.identity(x)
