"""The seeds' autograd examples in numpy: every backward written by hand. This is the reference: what each
framework's automatic differentiation must reproduce."""

import numpy as np

# What the framework documents for a repeated backward (tasks/autograd.py compares the observed values).
ACCUMULATION = (
    "accumulates",
    "the hand-written backward adds each gradient into x_grad (x_grad += ...), which is what PyTorch does "
    "to x.grad"
)


def square(x):
    y = x ** 2
    grad = 2 * x  # d(x^2)/dx, times the output gradient 1
    return y, grad


def accumulate(x):
    x_grad = np.zeros_like(x)
    grads = []
    for _ in range(3):
        x_grad += np.ones_like(x)  # the backward of sum(x), added in as PyTorch adds into x.grad
        grads.append(x_grad.copy())
    return grads


def vector_backward(x, upstream):
    y = x ** 2
    return y, upstream * 2 * x  # the vector-Jacobian product: the Jacobian of x^2 is diag(2x)


def control_flow(x):
    # The forward pass records what it did (a tape), the backward replays it in reverse.
    y, tape = x, []
    while y < 10:
        tape.append(y)
        y = y ** 2
    grad = np.ones_like(x)
    for inputs in reversed(tape):
        grad = grad * 2 * inputs
    return y, grad


def lecture(x, y, z):
    a = x * y
    b = a + z
    c = np.sum(b)

    grad_c = 1.0
    grad_b = grad_c * np.ones_like(b)
    grad_a = grad_b.copy()
    grad_x = grad_a * y
    grad_y = grad_a * x
    return c, grad_x, grad_y


class ReLU:
    """A layer with a hand-written backward, as the other frameworks' custom-gradient APIs have."""

    def __init__(self):
        self.backward_calls = 0

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, upstream):
        self.backward_calls += 1
        return upstream * (self.x > 0)


def custom_relu(x, upstream):
    relu = ReLU()
    y = relu.forward(x)
    return y, relu.backward(upstream), relu.backward_calls


# Gradient check: a 5 -> 7 tanh -> 3 network, mean softmax cross-entropy.

def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    return float(-log_softmax(z)[np.arange(len(y)), y].mean())


def gradients(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    dz = np.exp(log_softmax(z))  # softmax - one_hot(y), over the batch mean
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    dh = dz @ params["W2"].T
    da = dh * (1 - h ** 2)  # tanh' = 1 - tanh^2
    return {"W1": x.T @ da, "b1": da.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}
