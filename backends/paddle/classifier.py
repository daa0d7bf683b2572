"""The 3-zone classifier in PaddlePaddle 3.

Variant "paddle" runs in dygraph mode, op by op. manual-sgd follows the course: raw tensors with
stop_gradient=False, loss.backward(), and the update written by hand under paddle.no_grad(). The other
recipes are what Paddle's tutorials write: a paddle.nn.Layer, paddle.nn.functional.cross_entropy and an
optimizer from paddle.optimizer. Variant "paddle-static" converts that same Layer with paddle.jit.to_static,
Paddle's dynamic-to-static path: its forward pass and the matching backward run as one static program;
its manual-sgd applies the hand-written update to the Layer's parameters.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from tasks.classifier import Result


class Net(nn.Layer):
    def __init__(self, hidden):
        super().__init__()
        self.lin1 = nn.Linear(2, hidden)  # Paddle stores a Linear weight as (in, out): the spec's layout
        self.lin2 = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.lin2(F.relu(self.lin1(x)))


def make_net(problem):
    p = problem.params
    # The width the weights were made for (the course's: 12); the layers are created in paddle's default
    # dtype, which train() sets to the problem's precision.
    net = Net(hidden=p["W1"].shape[1])
    for layer, w, b in ((net.lin1, p["W1"], p["b1"]), (net.lin2, p["W2"], p["b2"])):
        layer.weight.set_value(w)  # start from the spec's weights, not Paddle's own initialization
        layer.bias.set_value(b)
    return net


def make_optimizer(recipe, parameters):
    h = recipe.hyper
    if recipe.name == "sgd-momentum":
        return paddle.optimizer.Momentum(learning_rate=h["lr"], momentum=h["momentum"], parameters=parameters)
    if recipe.name == "adam":
        return paddle.optimizer.Adam(learning_rate=h["lr"], beta1=h["beta1"], beta2=h["beta2"],
                                     epsilon=h["eps"], parameters=parameters)
    if recipe.name == "adadelta":
        return paddle.optimizer.Adadelta(learning_rate=h["lr"], rho=h["rho"], epsilon=h["eps"],
                                         parameters=parameters)
    raise ValueError(f"no optimizer for recipe {recipe.name}")


def recipe_notes(problem):
    name, notes = problem.recipe.name, []
    if name == "sgd-momentum" and problem.precision == "float64":
        notes.append("Paddle's Momentum kernel takes momentum as a float32 attribute even for float64 weights "
                     "(0.9 becomes 0.8999999761581421), so a float64 run follows a slightly different momentum.")
    if name == "adadelta" and problem.precision == "float64":
        notes.append("Paddle's Adadelta kernel takes rho and epsilon as float32 attributes even for float64 "
                     "weights (rho 0.9 becomes 0.8999999761581421), so a float64 run follows slightly different "
                     "hyper-parameters.")
    return notes


def train(problem, device, variant):
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    paddle.set_default_dtype(problem.precision)  # layers and Python scalars follow the problem's precision
    X = paddle.to_tensor(problem.x_train)  # to_tensor keeps a numpy array's dtype
    Y = paddle.to_tensor(problem.y_train)
    batches = paddle.to_tensor(problem.batches)
    X_val = paddle.to_tensor(problem.x_val)

    if problem.recipe.name == "manual-sgd" and variant == "paddle":
        params = yield from train_by_hand(problem, X, Y, batches)
        with paddle.no_grad():
            val_logits = F.relu(X_val @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    else:
        net = make_net(problem)
        if variant == "paddle-static":
            net = paddle.jit.to_static(net, full_graph=True)
        if problem.recipe.name == "manual-sgd":
            yield from train_layer_by_hand(problem, net, X, Y, batches)
        else:
            yield from train_with_optimizer(problem, net, X, Y, batches)
        net.eval()
        with paddle.no_grad():
            val_logits = net(X_val)
        params = {"W1": net.lin1.weight, "b1": net.lin1.bias, "W2": net.lin2.weight, "b2": net.lin2.bias}

    return Result(params={k: v.numpy() for k, v in params.items()}, val_logits=val_logits.numpy(),
                  notes=recipe_notes(problem))


def train_by_hand(problem, X, Y, batches):
    params = {k: paddle.to_tensor(v, stop_gradient=False) for k, v in problem.params.items()}
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    for i in range(problem.steps):
        lr = problem.learning_rate(i)
        x, y = paddle.gather(X, batches[i]), paddle.gather(Y, batches[i])
        z = F.relu(x @ W1 + b1) @ W2 + b2
        # log_softmax rather than log(softmax(z)) as the course wrote it: the same value, without overflow
        loss = -paddle.take_along_axis(F.log_softmax(z, axis=1), y.unsqueeze(1), axis=1).mean()
        loss.backward()
        with paddle.no_grad():
            for p in params.values():
                p.subtract_(lr * p.grad)
                p.clear_gradient()
        yield loss.item()
    return params


def train_layer_by_hand(problem, net, X, Y, batches):
    for i in range(problem.steps):
        lr = problem.learning_rate(i)
        loss = F.cross_entropy(net(paddle.gather(X, batches[i])), paddle.gather(Y, batches[i]))
        loss.backward()
        with paddle.no_grad():
            for p in net.parameters():
                p.subtract_(lr * p.grad)
                p.clear_gradient()
        yield loss.item()


def train_with_optimizer(problem, net, X, Y, batches):
    optimizer = make_optimizer(problem.recipe, net.parameters())
    for i in range(problem.steps):
        loss = F.cross_entropy(net(paddle.gather(X, batches[i])), paddle.gather(Y, batches[i]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        yield loss.item()
