"""The 3-zone classifier in numpy: forward pass, backward pass and update rules written by hand.

This is the reference: every other backend's loss curve is compared with this one.
"""

import numpy as np

from tasks.classifier import Result


def forward(params, x):
    hidden_in = x @ params["W1"] + params["b1"]  # (B, 2) @ (2, H) + (H,) -> (B, H); H = 12 in the course
    hidden = np.maximum(hidden_in, 0)
    logits = hidden @ params["W2"] + params["b2"]  # (B, H) @ (H, 3) + (3,) -> (B, 3)
    return hidden_in, hidden, logits


def loss_and_gradients(params, x, y):
    hidden_in, hidden, logits = forward(params, x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = -log_probabilities[rows, y].mean()

    # d loss / d logits of a mean softmax cross-entropy: (softmax - one_hot) / batch
    d_logits = np.exp(log_probabilities)
    d_logits[rows, y] -= 1
    d_logits /= len(y)
    d_hidden = d_logits @ params["W2"].T
    d_hidden[hidden_in <= 0] = 0
    gradients = {
        "W2": hidden.T @ d_logits,
        "b2": d_logits.sum(axis=0),
        "W1": x.T @ d_hidden,
        "b1": d_hidden.sum(axis=0),
    }
    return loss, gradients


class SGDMomentum:
    """v <- momentum * v + g ;  p <- p - lr * v   (PyTorch's formulation; Keras folds lr into v)."""

    def __init__(self, params, lr, momentum):
        self.lr, self.momentum = lr, momentum
        self.velocity = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, params, gradients):
        for k, g in gradients.items():
            self.velocity[k] = self.momentum * self.velocity[k] + g
            params[k] -= self.lr * self.velocity[k]


class Adam:
    """Kingma & Ba, Algorithm 1: eps is added to the bias-corrected sqrt(v_hat).

    adam_epsilon="hat" is the paper's other form, the one TensorFlow's Adam implements: the step size takes
    both bias corrections, lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), and eps ("epsilon hat") is added
    to the raw sqrt(v): the reference with eps / sqrt(1 - beta2^t) in place of eps. It exists to check the
    difference frameworks declare against a simulation of their own rule."""

    def __init__(self, params, lr, beta1, beta2, eps, adam_epsilon="paper"):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.hat = adam_epsilon == "hat"
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, params, gradients):
        self.t += 1
        for k, g in gradients.items():
            self.m[k] = self.beta1 * self.m[k] + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v[k] + (1 - self.beta2) * g * g
            if self.hat:
                lr_t = self.lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
                params[k] -= lr_t * self.m[k] / (np.sqrt(self.v[k]) + self.eps)
                continue
            m_hat = self.m[k] / (1 - self.beta1 ** self.t)
            v_hat = self.v[k] / (1 - self.beta2 ** self.t)
            params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class Adadelta:
    """Zeiler (2012), Algorithm 1, with a learning rate scaling the step as PyTorch and Keras do."""

    def __init__(self, params, lr, rho, eps):
        self.lr, self.rho, self.eps = lr, rho, eps
        self.square_avg = {k: np.zeros_like(p) for k, p in params.items()}
        self.delta_avg = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, params, gradients):
        for k, g in gradients.items():
            self.square_avg[k] = self.rho * self.square_avg[k] + (1 - self.rho) * g * g
            delta = np.sqrt(self.delta_avg[k] + self.eps) / np.sqrt(self.square_avg[k] + self.eps) * g
            self.delta_avg[k] = self.rho * self.delta_avg[k] + (1 - self.rho) * delta * delta
            params[k] -= self.lr * delta


OPTIMIZERS = {"sgd-momentum": SGDMomentum, "adam": Adam, "adadelta": Adadelta}


def train(problem, device, variant):
    params = {k: v.copy() for k, v in problem.params.items()}
    recipe = problem.recipe
    optimizer = None if recipe.name == "manual-sgd" else OPTIMIZERS[recipe.name](params, **recipe.hyper)
    x, y = problem.x_train, problem.y_train

    for i, batch in enumerate(problem.batches):
        loss, gradients = loss_and_gradients(params, x[batch], y[batch])
        if optimizer is None:
            lr = problem.learning_rate(i)
            for k in params:
                params[k] -= lr * gradients[k]
        else:
            optimizer.step(params, gradients)
        yield float(loss)

    _, _, val_logits = forward(params, problem.x_val)
    return Result(params=params, val_logits=val_logits)
