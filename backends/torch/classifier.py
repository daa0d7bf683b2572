"""The 3-zone classifier in PyTorch.

manual-sgd follows the course: raw tensors with requires_grad, loss.backward(), updates applied by hand
under torch.no_grad(). The other recipes are what a PyTorch user writes today: an nn.Module, a loss from
torch.nn, and an optimizer from torch.optim.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from tasks.classifier import Result


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(2, 12)
        self.lin2 = nn.Linear(12, 3)

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
    if problem.recipe.name == "manual-sgd":
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
    net = Net().to(device=device, dtype=X.dtype)
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
