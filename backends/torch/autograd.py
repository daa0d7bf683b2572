"""The seeds' autograd examples in PyTorch: tensors with requires_grad, backward(), .grad, and a
torch.autograd.Function for the custom ReLU."""

import torch
import torch.nn.functional as F

# What the framework documents for a repeated backward (tasks/autograd.py compares the observed values).
ACCUMULATION = (
    "accumulates",
    "backward() adds into x.grad: 1, 2, 3 (retain_graph=True keeps the tensors the graph saved for the "
    "next backward, else backward through them again raises RuntimeError); training loops therefore zero "
    "the gradients every step (optimizer.zero_grad())"
)


def square(x):
    x.requires_grad_()
    y = x ** 2
    y.backward()
    return y, x.grad


def accumulate(x):
    x.requires_grad_()
    y = x.sum()
    grads = []
    for _ in range(3):
        # retain_graph=True, as the seed: backward frees the tensors the graph saved (sum saves none, x ** 2
        # would), and a second backward through them raises RuntimeError
        y.backward(retain_graph=True)
        grads.append(x.grad.clone())  # x.grad is added into in place: copy each value
    return grads


def vector_backward(x, upstream):
    x.requires_grad_()
    y = x ** 2
    y.backward(upstream)  # a non-scalar output needs its gradient given: the vector-Jacobian product
    return y, x.grad


def control_flow(x):
    x.requires_grad_()
    y = x
    while y < 10:  # plain Python: the graph is whatever ran
        y = y ** 2
    y.backward()
    return y, x.grad


def lecture(x, y, z):
    x.requires_grad_()
    y.requires_grad_()
    a = x * y
    b = a + z
    c = torch.sum(b)
    c.backward()
    return c, x.grad, y.grad


class MyReLU(torch.autograd.Function):
    backward_calls = 0  # lets the check see that this backward, not PyTorch's own, ran

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        MyReLU.backward_calls += 1
        x, = ctx.saved_tensors
        return grad_output * (x > 0)


def custom_relu(x, upstream):
    x.requires_grad_()
    calls = MyReLU.backward_calls
    y = MyReLU.apply(x)
    y.backward(upstream)
    return y, x.grad, MyReLU.backward_calls - calls


# Gradient check: a 5 -> 7 tanh -> 3 network, mean softmax cross-entropy.

def loss_of(params, x, y):
    h = torch.tanh(x @ params["W1"] + params["b1"])
    return F.cross_entropy(h @ params["W2"] + params["b2"], y)


def loss(params, x, y):
    with torch.no_grad():
        return loss_of(params, x, y).item()


def gradients(params, x, y):
    for p in params.values():
        p.requires_grad_()
    loss_of(params, x, y).backward()
    return {name: p.grad for name, p in params.items()}
