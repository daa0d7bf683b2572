"""The CIFAR-10 tutorial's CNN in PyTorch, written as the tutorial writes it: an nn.Module with
nn.Conv2d, nn.MaxPool2d and nn.Linear, nn.CrossEntropyLoss and optim.SGD with momentum. PyTorch computes
in NCHW with OIHW kernels, the spec's layout; only nn.Linear's (out, in) weights need a transpose.
Net(width) widens the convolutions to 6*width and 16*width channels (width 1: the tutorial's).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from tasks.cnn import Result, width_of


class Net(nn.Module):
    def __init__(self, width=1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6 * width, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6 * width, 16 * width, 5)
        self.fc1 = nn.Linear(16 * width * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # all dimensions except the batch: C, H, W order, as the spec's fc1_w
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def load_spec_weights(net, params):
    """Start from the spec's weights rather than PyTorch's own initialization."""
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            getattr(net, name).weight.copy_(torch.from_numpy(params[f"{name}_w"]))  # OIHW already
            getattr(net, name).bias.copy_(torch.from_numpy(params[f"{name}_b"]))
        for name in ("fc1", "fc2", "fc3"):
            # nn.Linear stores its weight as (out, in): the transpose of the spec's (in, out)
            getattr(net, name).weight.copy_(torch.from_numpy(params[f"{name}_w"].T))
            getattr(net, name).bias.copy_(torch.from_numpy(params[f"{name}_b"]))


def spec_weights(net):
    params = {}
    for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        weight = getattr(net, name).weight.detach().cpu()
        params[f"{name}_w"] = (weight.T if name.startswith("fc") else weight).contiguous().numpy()
        params[f"{name}_b"] = getattr(net, name).bias.detach().cpu().numpy()
    return params


def train(problem, device, variant):
    device = torch.device("cuda" if device == "gpu" else "cpu")
    X = torch.from_numpy(problem.x_train).to(device)
    Y = torch.from_numpy(problem.y_train).to(device)
    batches = torch.from_numpy(problem.batches).to(device)

    net = Net(width_of(problem.params)).to(device=device, dtype=X.dtype)
    load_spec_weights(net, problem.params)
    criterion = nn.CrossEntropyLoss()
    h = problem.recipe.hyper
    optimizer = optim.SGD(net.parameters(), lr=h["lr"], momentum=h["momentum"])

    for batch in batches:
        inputs, labels = X[batch], Y[batch]
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        yield loss.item()

    net.eval()
    X_test = torch.from_numpy(problem.x_test)
    with torch.no_grad():  # in chunks: the whole test set at once would hold every activation at once
        test_logits = torch.cat([net(images.to(device)).cpu()
                                 for images in torch.split(X_test, problem.eval_batch_size)])
    return Result(params=spec_weights(net), test_logits=test_logits.numpy(), layout="NCHW")
