"""Course 1's perceptron in PyTorch, as the course writes it: raw tensors with requires_grad, the forward
pass with mv, c.backward(), the update applied by hand under torch.no_grad(), then grad.zero_().

Variant "torch-compile" compiles the whole step (torch.func gradients, the update, the norm) into one
graph with torch.compile.
"""

import torch

from tasks.perceptron import Result


def forward(params, x):
    y = torch.relu(params["theta1"].mv(x) + params["bias1"])
    return params["theta2"].mv(y) + params["bias2"]


def cost(z):
    return z.sum() ** 2


def train(problem, device, variant):
    device = torch.device("cuda" if device == "gpu" else "cpu")
    samples = torch.from_numpy(problem.samples).to(device)
    # The norms stay on the device, one slot per step: reading each back would add a host sync to the step.
    norms = torch.empty(problem.steps, dtype=samples.dtype, device=device)
    if variant == "torch-compile":
        params = yield from train_compiled(problem, samples, norms)
    else:
        params = yield from train_by_hand(problem, samples, norms)
    return Result(params={k: v.detach().cpu().numpy() for k, v in params.items()},
                  param_norms=norms.cpu().numpy().tolist())


def train_by_hand(problem, samples, norms):
    params = {k: torch.tensor(v, device=samples.device, requires_grad=True) for k, v in problem.params.items()}
    for i, x in enumerate(samples):
        lr = problem.learning_rate(i)
        c = cost(forward(params, x))
        c.backward()
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad.zero_()
            norms[i] = sum((p * p).sum() for p in params.values()).sqrt()
        yield c.item()
    return params


def train_compiled(problem, samples, norms):
    params = {k: torch.tensor(v, device=samples.device) for k, v in problem.params.items()}

    @torch.compile(fullgraph=True)
    def step(params, x, lr):
        # loss.backward() would break the graph: torch.func takes the gradients inside it instead
        grads, c = torch.func.grad_and_value(lambda p: cost(forward(p, x)))(params)
        with torch.no_grad():
            for name, p in params.items():
                p -= lr * grads[name]
        return c, sum((p * p).sum() for p in params.values()).sqrt()

    # The rate goes in as a 0-d tensor: a Python float would be a constant of the graph, compiled anew
    # for each rate of the schedule.
    rates = torch.tensor([problem.learning_rate(i) for i in range(problem.steps)],
                         dtype=samples.dtype, device=samples.device)
    for i, (x, lr) in enumerate(zip(samples, rates)):  # the first call compiles: the worker times it apart
        c, norms[i] = step(params, x, lr)
        yield c.item()
    return params
