"""The 3-zone classifier in PyTorch.

manual-sgd follows the course: raw tensors with requires_grad, loss.backward(), updates applied by hand
under torch.no_grad(). The other recipes are what a PyTorch user writes today: an nn.Module, a loss from
torch.nn, and an optimizer from torch.optim.

Variant "torch-compile" is the fastest way PyTorch offers to run the same training: the whole step
(forward, backward, update) as one function of tensors, compiled by torch.compile into a single graph.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.adadelta import adadelta
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from tasks.classifier import HIDDEN, Result


class Net(nn.Module):
    def __init__(self, hidden=HIDDEN):  # the course's 12 unless the problem says otherwise
        super().__init__()
        self.lin1 = nn.Linear(2, hidden)
        self.lin2 = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.lin2(F.relu(self.lin1(x)))


def make_optimizer(recipe, parameters):
    h = recipe.hyper
    if recipe.name == "sgd-momentum":
        return torch.optim.SGD(parameters, lr=h["lr"], momentum=h["momentum"])
    if recipe.name == "adam":
        return torch.optim.Adam(parameters, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    if recipe.name == "adadelta":
        return torch.optim.Adadelta(parameters, lr=h["lr"], rho=h["rho"], eps=h["eps"])
    raise ValueError(f"no optimizer for recipe {recipe.name}")


def train(problem, device, variant):
    device = torch.device("cuda" if device == "gpu" else "cpu")
    X = torch.from_numpy(problem.x_train).to(device)
    Y = torch.from_numpy(problem.y_train).to(device)
    batches = torch.from_numpy(problem.batches).to(device)
    if variant == "torch-compile":
        params = yield from train_compiled(problem, X, Y, batches)
        forward = lambda x: predict(params, x)
    elif problem.recipe.name == "manual-sgd":
        params = yield from train_by_hand(problem, X, Y, batches, device)
        forward = lambda x: torch.relu(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    else:
        net = yield from train_with_optimizer(problem, X, Y, batches, device)
        forward = net
        # nn.Linear stores its weight as (out, in): transpose back to the spec's (in, out) layout.
        params = {"W1": net.lin1.weight.T, "b1": net.lin1.bias, "W2": net.lin2.weight.T, "b2": net.lin2.bias}

    with torch.no_grad():
        val_logits = forward(torch.from_numpy(problem.x_val).to(device))
    return Result(params={k: v.detach().cpu().numpy() for k, v in params.items()},
                  val_logits=val_logits.cpu().numpy())


def train_by_hand(problem, X, Y, batches, device):
    params = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in problem.params.items()}
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    for i, batch in enumerate(batches):
        lr = problem.learning_rate(i)
        z = torch.relu(X[batch] @ W1 + b1) @ W2 + b2
        # log_softmax rather than log(softmax(z)) as the course wrote it: the same value, without overflow
        loss = -torch.log_softmax(z, dim=1).gather(1, Y[batch].unsqueeze(1)).mean()
        loss.backward()
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad.zero_()
        yield loss.item()
    return params


def train_with_optimizer(problem, X, Y, batches, device):
    net = Net(problem.hidden).to(device=device, dtype=X.dtype)
    with torch.no_grad():  # start from the spec's weights, not PyTorch's own initialization
        net.lin1.weight.copy_(torch.from_numpy(problem.params["W1"].T))
        net.lin1.bias.copy_(torch.from_numpy(problem.params["b1"]))
        net.lin2.weight.copy_(torch.from_numpy(problem.params["W2"].T))
        net.lin2.bias.copy_(torch.from_numpy(problem.params["b2"]))
    criterion = nn.CrossEntropyLoss()
    optimizer = make_optimizer(problem.recipe, net.parameters())
    for batch in batches:
        optimizer.zero_grad()
        loss = criterion(net(X[batch]), Y[batch])
        loss.backward()
        optimizer.step()
        yield loss.item()
    return net


# -------------------------------------------------------------------------------------- torch.compile
#
# Dynamo cannot put loss.backward() or torch.optim's step() into a graph: each is a graph break, and on
# a CPU at this size the compiled pieces between the breaks ran slower than eager PyTorch (float64,
# batch 500: sgd-momentum 0.42 against 0.28 ms a step, adam 0.75 against 0.38). So the step is written
# as a function of tensors: torch.func.grad_and_value takes the gradients inside the graph, and the
# update is the course's by hand or torch.optim's own, in the functional form its optimizers' step()
# calls (torch.optim.adam.adam and so on). Then fullgraph=True holds: one graph per step, in which
# Inductor fuses forward, backward and update into a few C++ loops.

def predict(params, x):
    return torch.relu(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


def loss_of(params, x, y):
    return F.cross_entropy(predict(params, x), y)


def functional_update(recipe, params):
    """update(params, grads): torch.optim's update rule for the recipe, applied in place, with its state."""
    h, weights = recipe.hyper, list(params.values())
    state = lambda: [torch.zeros_like(w) for w in weights]
    # Step counts in the weights' dtype: Adam's bias corrections are then computed in float64 for float64
    # runs, as torch.optim.Adam does from its Python-number steps.
    counts = [torch.zeros((), dtype=weights[0].dtype, device=weights[0].device) for _ in weights]
    if recipe.name == "sgd-momentum":
        velocity = state()  # torch.optim.SGD starts its buffer at the first gradient: 0.9 * 0 + g, the same
        return lambda p, g: sgd(p, g, velocity, foreach=False, lr=h["lr"], momentum=h["momentum"],
                                dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False)
    if recipe.name == "adam":
        m, v = state(), state()
        # capturable: the step count stays a tensor in the graph (else each step's count is a new constant)
        return lambda p, g: adam(p, g, m, v, [], counts, foreach=False, capturable=True, lr=h["lr"],
                                 beta1=h["beta1"], beta2=h["beta2"], eps=h["eps"], amsgrad=False,
                                 weight_decay=0.0, maximize=False)
    if recipe.name == "adadelta":
        square_avg, acc_delta = state(), state()
        return lambda p, g: adadelta(p, g, square_avg, acc_delta, counts, foreach=False, lr=h["lr"],
                                     rho=h["rho"], eps=h["eps"], weight_decay=0.0, maximize=False)
    raise ValueError(f"no optimizer for recipe {recipe.name}")


def train_compiled(problem, X, Y, batches):
    params = {k: torch.tensor(v, device=X.device) for k, v in problem.params.items()}
    manual = problem.recipe.name == "manual-sgd"
    update = None if manual else functional_update(problem.recipe, params)

    @torch.compile(fullgraph=True)
    def step(params, batch, lr):
        grads, loss = torch.func.grad_and_value(loss_of)(params, X[batch], Y[batch])
        with torch.no_grad():
            if manual:  # the course's update, by hand
                for name, p in params.items():
                    p -= lr * grads[name]
            else:
                update(list(params.values()), [grads[name] for name in params])
        return loss

    # The rate goes in as a 0-d tensor: a Python float would be a constant of the graph, and each new
    # rate of the schedule would compile the step again.
    rates = torch.tensor([problem.learning_rate(i) for i in range(problem.steps)], dtype=X.dtype, device=X.device)
    for batch, lr in zip(batches, rates):  # the first call traces and compiles: the worker times it apart
        yield step(params, batch, lr).item()
    return params
