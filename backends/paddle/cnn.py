"""The CIFAR-10 CNN of the PyTorch tutorial, in PaddlePaddle 3.

What Paddle's tutorials write: a paddle.nn.Layer of Conv2D, MaxPool2D and Linear layers,
F.cross_entropy and paddle.optimizer.Momentum, one step per batch in dygraph mode. Paddle computes NCHW
with OIHW kernels and stores Linear weights as (in, out): the spec's layout, so the weights load as they
are. Variant "paddle-static" converts the same Layer with paddle.jit.to_static: its forward pass and the
matching backward run as one static program. Net(width) widens the convolutions to 6*width and 16*width
channels (width 1: the tutorial's).
"""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from tasks.cnn import Result, width_of


class Net(nn.Layer):
    def __init__(self, width=1):
        super().__init__()
        self.conv1 = nn.Conv2D(3, 6 * width, 5)
        self.pool = nn.MaxPool2D(2, 2)
        self.conv2 = nn.Conv2D(6 * width, 16 * width, 5)
        self.fc1 = nn.Linear(16 * width * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = paddle.flatten(x, 1)  # C, H, W order, as the spec's fc1_w rows expect
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


def make_net(problem):
    net = Net(width_of(problem.params))  # in paddle's default dtype, which train() sets to the problem's precision
    for name in LAYERS:
        layer = getattr(net, name)
        layer.weight.set_value(problem.params[f"{name}_w"])  # start from the spec's weights
        layer.bias.set_value(problem.params[f"{name}_b"])
    return net


def notes_for(problem):
    if problem.precision != "float64":
        return []
    momentum = problem.recipe.hyper["momentum"]
    return ["Paddle's Momentum kernel takes momentum as a float32 attribute even for float64 weights "
            f"({momentum} becomes {float(np.float32(momentum))!r}), so a float64 run follows a slightly different "
            "momentum: over 20 steps of batch 4 its loss drifts about 1e-10 from the reference's (which, given the "
            "same float32 momentum, it matches to 4e-16)."]


def train(problem, device, variant):
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    paddle.set_default_dtype(problem.precision)  # layers and Python scalars follow the problem's precision
    X = paddle.to_tensor(problem.x_train)  # to_tensor keeps a numpy array's dtype
    Y = paddle.to_tensor(problem.y_train)
    batches = paddle.to_tensor(problem.batches)
    X_test = paddle.to_tensor(problem.x_test)

    net = make_net(problem)
    if variant == "paddle-static":
        net = paddle.jit.to_static(net, full_graph=True)
    h = problem.recipe.hyper
    # Paddle's rule is PyTorch's: v <- momentum * v + g; p <- p - lr * v.
    optimizer = paddle.optimizer.Momentum(learning_rate=h["lr"], momentum=h["momentum"],
                                          parameters=net.parameters())
    for i in range(problem.steps):
        loss = F.cross_entropy(net(paddle.gather(X, batches[i])), paddle.gather(Y, batches[i]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        yield loss.item()

    net.eval()
    size = problem.eval_batch_size
    with paddle.no_grad():
        test_logits = paddle.concat([net(X_test[i:i + size]) for i in range(0, len(problem.x_test), size)])
    params = {}
    for name in LAYERS:
        layer = getattr(net, name)
        params[f"{name}_w"], params[f"{name}_b"] = layer.weight.numpy(), layer.bias.numpy()
    return Result(params=params, test_logits=test_logits.numpy(), layout="NCHW", notes=notes_for(problem))
