"""Course 1's perceptron in PaddlePaddle 3.

Variant "paddle" is the course's loop in dygraph mode: raw tensors with stop_gradient=False, c.backward(),
the update written by hand under paddle.no_grad(), then clear_gradient(). Variant "paddle-static" puts the
forward pass in a paddle.nn.Layer converted by paddle.jit.to_static, so that it and its backward run as
one static program; the update is still the course's, applied to the Layer's parameters.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from tasks.perceptron import Result

NAMES = ("theta1", "bias1", "theta2", "bias2")


def perceptron(theta1, bias1, theta2, bias2, x):
    y = F.relu(paddle.mv(theta1, x) + bias1)
    return paddle.mv(theta2, y) + bias2


def norm(tensors):
    return paddle.sqrt(sum((p * p).sum() for p in tensors))


class Perceptron(nn.Layer):
    def __init__(self, params):
        super().__init__()
        # Parameters in the course's (out, in) layout; paddle.nn.Linear would store (in, out).
        for name in NAMES:
            setattr(self, name, self.create_parameter(params[name].shape, dtype=str(params[name].dtype)))
            getattr(self, name).set_value(params[name])

    def forward(self, x):
        return perceptron(self.theta1, self.bias1, self.theta2, self.bias2, x)


def train(problem, device, variant):
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    paddle.set_default_dtype(problem.precision)
    samples = paddle.to_tensor(problem.samples)  # to_tensor keeps a numpy array's dtype
    if variant == "paddle-static":
        net = paddle.jit.to_static(Perceptron(problem.params), full_graph=True)
        params = dict(zip(NAMES, (getattr(net, name) for name in NAMES)))
        cost = lambda x: net(x).sum() ** 2
    else:
        params = {k: paddle.to_tensor(v, stop_gradient=False) for k, v in problem.params.items()}
        cost = lambda x: perceptron(*(params[k] for k in NAMES), x).sum() ** 2

    norms = []  # tensors, read back once at the end
    for i in range(problem.steps):
        lr = problem.learning_rate(i)
        c = cost(samples[i])
        c.backward()
        with paddle.no_grad():
            for p in params.values():
                p.subtract_(lr * p.grad)
                p.clear_gradient()
            norms.append(norm(params.values()))
        yield c.item()

    return Result(params={k: v.numpy() for k, v in params.items()},
                  param_norms=paddle.stack(norms).numpy().tolist())
