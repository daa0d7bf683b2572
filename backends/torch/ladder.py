"""Lecture 4's ladder in PyTorch, slide by slide: tensors with the gradients by hand; autograd; a new autograd
Function (its own ReLU and its backward); nn.Sequential with a loss module and the update by hand; optim; a
custom nn.Module. Each level is one function, the lecture's code with the task's problem: no biases
(nn.Linear(bias=False); its weight is (out, in), so it holds w.T), the sum of squared errors, plain SGD.

PyTorch has no fit() and no define-then-run graph: those levels are skipped rows naming what comes closest.
"""

import torch

from tasks.ladder import CannotRun, Result

CLOSEST = {
    "fit": "PyTorch has no fit(): the training loop is the user's own (the optimizer level); closest: "
           "PyTorch Lightning's Trainer.fit, or Keras' fit() on the PyTorch backend",
    "graph": "PyTorch builds its graph as the code runs (define-by-run); closest: torch.compile or torch.export, "
             "which capture a graph from Python code, with no placeholders or session",
}


def tensors(problem, device):
    device = torch.device("cuda" if device == "gpu" else "cpu")
    return [torch.from_numpy(a).to(device) for a in (problem.x, problem.y, problem.w1, problem.w2)]


def by_hand(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    w1, w2 = w1.clone(), w2.clone()
    learning_rate = problem.lr
    for t in range(problem.steps):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        loss = (y_pred - y).pow(2).sum().item()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h_relu = grad_y_pred.mm(w2.t())
        grad_h = grad_h_relu.clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
        yield loss
    return Result(w1.cpu().numpy(), w2.cpu().numpy())


def autograd(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    w1 = w1.clone().requires_grad_(True)
    w2 = w2.clone().requires_grad_(True)
    learning_rate = problem.lr
    for t in range(problem.steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()

        loss.backward()

        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
        yield loss.item()
    return Result(w1.detach().cpu().numpy(), w2.detach().cpu().numpy())


def custom_function(problem, device):
    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_y):
            x, = ctx.saved_tensors
            grad_input = grad_y.clone()
            grad_input[x < 0] = 0
            return grad_input

    def my_relu(x):
        return MyReLU.apply(x)

    x, y, w1, w2 = tensors(problem, device)
    w1 = w1.clone().requires_grad_(True)
    w2 = w2.clone().requires_grad_(True)
    learning_rate = problem.lr
    for t in range(problem.steps):
        y_pred = my_relu(x.mm(w1)).mm(w2)
        loss = (y_pred - y).pow(2).sum()

        loss.backward()

        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
        yield loss.item()
    return Result(w1.detach().cpu().numpy(), w2.detach().cpu().numpy())


def layers(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes

    model = torch.nn.Sequential(
        torch.nn.Linear(D_in, H, bias=False),
        torch.nn.ReLU(),
        torch.nn.Linear(H, D_out, bias=False)).to(x)
    with torch.no_grad():  # the problem's weights; nn.Linear's are (out, in)
        model[0].weight.copy_(w1.t())
        model[2].weight.copy_(w2.t())

    loss_fn = torch.nn.MSELoss(reduction="sum")

    learning_rate = problem.lr
    for t in range(problem.steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)

        model.zero_grad()

        loss.backward()

        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
        yield loss.item()
    return Result(model[0].weight.detach().t().cpu().numpy(), model[2].weight.detach().t().cpu().numpy())


def optimizer(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes

    model = torch.nn.Sequential(
        torch.nn.Linear(D_in, H, bias=False),
        torch.nn.ReLU(),
        torch.nn.Linear(H, D_out, bias=False)).to(x)
    with torch.no_grad():  # the problem's weights; nn.Linear's are (out, in)
        model[0].weight.copy_(w1.t())
        model[2].weight.copy_(w2.t())

    loss_fn = torch.nn.MSELoss(reduction="sum")

    learning_rate = problem.lr
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

    for t in range(problem.steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        optimizer.zero_grad()

        loss.backward()

        optimizer.step()
        yield loss.item()
    return Result(model[0].weight.detach().t().cpu().numpy(), model[2].weight.detach().t().cpu().numpy())


def model_class(problem, device):
    class TwoLayerNet(torch.nn.Module):
        def __init__(self, D_in, H, D_out):
            super(TwoLayerNet, self).__init__()
            self.linear1 = torch.nn.Linear(D_in, H, bias=False)
            self.linear2 = torch.nn.Linear(H, D_out, bias=False)

        def forward(self, x):
            h_relu = self.linear1(x).clamp(min=0)
            y_pred = self.linear2(h_relu)
            return y_pred

    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes
    model = TwoLayerNet(D_in, H, D_out).to(x)
    with torch.no_grad():
        model.linear1.weight.copy_(w1.t())  # nn.Linear's weight is (out, in)
        model.linear2.weight.copy_(w2.t())
    loss_fn = torch.nn.MSELoss(reduction="sum")

    optimizer = torch.optim.SGD(model.parameters(), lr=problem.lr)
    for t in range(problem.steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        yield loss.item()
    return Result(model.linear1.weight.detach().t().cpu().numpy(), model.linear2.weight.detach().t().cpu().numpy())


LEVELS = {"by-hand": by_hand, "autograd": autograd, "custom-function": custom_function, "layers": layers,
          "optimizer": optimizer, "model-class": model_class}


def train(problem, device, variant):
    level = LEVELS.get(problem.recipe.name)
    if level is None:
        raise CannotRun(CLOSEST[problem.recipe.name])
    return (yield from level(problem, device))
