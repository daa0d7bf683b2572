"""The seeds' autograd examples in PaddlePaddle (dygraph): tensors with stop_gradient=False, backward(),
.grad (accumulated as in PyTorch), and a paddle.autograd.PyLayer for the custom ReLU."""

import paddle
import paddle.nn.functional as F
from paddle.autograd import PyLayer

# What the framework documents for a repeated backward (tasks/autograd.py compares the observed values).
ACCUMULATION = (
    "accumulates",
    "backward() adds into x.grad as in PyTorch (retain_graph=True to run it again); clear_grad() / "
    "optimizer.clear_grad() resets it"
)


def square(x):
    x.stop_gradient = False  # Paddle's requires_grad: tensors start with stop_gradient=True
    y = x ** 2
    y.backward()
    return y, x.grad


def accumulate(x):
    x.stop_gradient = False
    y = x.sum()
    grads = []
    for _ in range(3):
        y.backward(retain_graph=True)
        grads.append(x.grad.clone())  # x.grad is added into in place: copy each value
    return grads


def vector_backward(x, upstream):
    x.stop_gradient = False
    y = x ** 2
    y.backward(upstream)  # a non-scalar output needs its gradient given: the vector-Jacobian product
    return y, x.grad


def control_flow(x):
    x.stop_gradient = False
    y = x
    while y < 10:  # dygraph: plain Python, the graph is whatever ran
        y = y ** 2
    y.backward()
    return y, x.grad


def lecture(x, y, z):
    x.stop_gradient = False
    y.stop_gradient = False
    a = x * y
    b = a + z
    c = paddle.sum(b)
    c.backward()
    return c, x.grad, y.grad


class MyReLU(PyLayer):
    backward_calls = 0  # lets the check see that this backward, not Paddle's own, ran

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return paddle.clip(x, min=0)

    @staticmethod
    def backward(ctx, dy):
        MyReLU.backward_calls += 1
        x, = ctx.saved_tensor()
        return dy * (x > 0).astype(dy.dtype)


def custom_relu(x, upstream):
    x.stop_gradient = False
    calls = MyReLU.backward_calls
    y = MyReLU.apply(x)
    y.backward(upstream)
    return y, x.grad, MyReLU.backward_calls - calls


# Gradient check: a 5 -> 7 tanh -> 3 network, mean softmax cross-entropy.

def loss_of(params, x, y):
    h = paddle.tanh(x @ params["W1"] + params["b1"])
    return F.cross_entropy(h @ params["W2"] + params["b2"], y)


def loss(params, x, y):
    with paddle.no_grad():
        return loss_of(params, x, y).item()


def gradients(params, x, y):
    for p in params.values():
        p.stop_gradient = False
    loss_of(params, x, y).backward()
    return {name: p.grad for name, p in params.items()}
