"""The seeds' autograd examples in TensorFlow 2: tf.GradientTape records the operations, tape.gradient()
returns the gradients (nothing is stored on the tensors), tf.custom_gradient for the custom ReLU, and
tf.function for the loop compiled into a graph."""

import tensorflow as tf

# What the framework documents for a repeated backward (tasks/autograd.py compares the observed values).
ACCUMULATION = (
    "fresh",
    "tape.gradient() returns a new gradient each call: 1, 1, 1 (a tape allows one call unless "
    "persistent=True); nothing accumulates unless you add the results"
)


def square(x):
    with tf.GradientTape() as tape:
        tape.watch(x)  # a constant is not watched by default; a tf.Variable would be
        y = x ** 2
    return y, tape.gradient(y, x)


def accumulate(x):
    with tf.GradientTape(persistent=True) as tape:  # a plain tape allows one gradient() call
        tape.watch(x)
        y = tf.reduce_sum(x)
    # Each call returns a new gradient: nothing accumulates (sum them yourself to accumulate).
    return [tape.gradient(y, x) for _ in range(3)]


def vector_backward(x, upstream):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x ** 2
    return y, tape.gradient(y, x, output_gradients=upstream)


def control_flow(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x
        while y < 10:  # eager: plain Python, the tape records what ran
            y = y ** 2
    return y, tape.gradient(y, x)


@tf.function
def control_flow_compiled(x):
    # AutoGraph turns this loop, whose condition depends on a tensor, into a tf.while_loop in the graph,
    # and the tape differentiates the while_loop.
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x
        while y < 10:
            y = y ** 2
    return y, tape.gradient(y, x)


def lecture(x, y, z):
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        a = x * y
        b = a + z
        c = tf.reduce_sum(b)
    grad_x, grad_y = tape.gradient(c, [x, y])
    return c, grad_x, grad_y


backward_calls = 0  # lets the check see that this backward, not TensorFlow's own, ran


@tf.custom_gradient
def my_relu(x):
    def backward(upstream):
        global backward_calls
        backward_calls += 1
        return upstream * tf.cast(x > 0, upstream.dtype)
    return tf.maximum(x, 0), backward


def custom_relu(x, upstream):
    calls = backward_calls
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = my_relu(x)
    grad = tape.gradient(y, x, output_gradients=upstream)
    return y, grad, backward_calls - calls


# Gradient check: a 5 -> 7 tanh -> 3 network, mean softmax cross-entropy.

def loss_of(params, x, y):
    h = tf.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def loss(params, x, y):
    return float(loss_of(params, x, y))


def gradients(params, x, y):
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = loss_of(params, x, y)
    return tape.gradient(value, params)
