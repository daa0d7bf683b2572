"""Course 1's perceptron in numpy: forward pass, backward pass and update written by hand.

This is the reference: every other backend's parameter norms are compared with these.
"""

import numpy as np

from tasks.perceptron import Result


def train(problem, device, variant):
    params = {k: v.copy() for k, v in problem.params.items()}
    theta1, bias1, theta2, bias2 = params["theta1"], params["bias1"], params["theta2"], params["bias2"]
    norms = np.empty(problem.steps, dtype=problem.precision)

    for i, x in enumerate(problem.samples):
        lr = problem.learning_rate(i)
        h = theta1 @ x + bias1  # (32, 20) @ (20,) + (32,)
        y = np.maximum(h, 0)
        z = theta2 @ y + bias2
        s = z.sum()
        cost = s * s

        # d cost / d z = 2 s for every output; then back through the two layers
        dz = np.full_like(z, 2 * s)
        dy = theta2.T @ dz
        dh = np.where(h > 0, dy, 0)
        gradients = {"theta1": np.outer(dh, x), "bias1": dh, "theta2": np.outer(dz, y), "bias2": dz}
        for k, p in params.items():
            p -= lr * gradients[k]  # in place: theta1 ... bias2 are views of these arrays
        norms[i] = np.sqrt(sum(np.sum(p * p) for p in params.values()))
        yield float(cost)

    return Result(params=params, param_norms=norms.tolist())
