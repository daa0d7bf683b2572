"""The CIFAR-10 tutorial's CNN in numpy: convolution as im2col and one matrix product, max-pooling with an
argmax mask, the whole backward pass by hand, SGD with momentum.

This is the reference every other backend's loss curve is compared with. It computes in NCHW, the spec's
layout, so the weights need no conversion.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tasks.cnn import Result


def im2col(x, k):
    """(B, C, H, W) -> (B, C*k*k, Ho*Wo): every k x k patch as a column. The copy keeps each row of Wo
    output pixels contiguous (a fast copy, and a matrix BLAS takes as it is)."""
    batch, channels = x.shape[:2]
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (B, C, Ho, Wo, k, k), a view
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(batch, channels * k * k, -1)


def conv_forward(x, w, b):
    """Valid cross-correlation, stride 1: the flat kernels (O, C*k*k) times each image's columns."""
    out_channels, _, k, _ = w.shape
    cols = im2col(x, k)
    out = w.reshape(out_channels, -1) @ cols + b[:, None]  # (B, O, Ho*Wo): NCHW without a transpose
    return out.reshape(len(x), out_channels, x.shape[2] - k + 1, x.shape[3] - k + 1), cols


def conv_backward(d_out, cols, x_shape, w, need_dx=True):
    out_channels, _, k, _ = w.shape
    d_flat = d_out.reshape(len(d_out), out_channels, -1)  # (B, O, Ho*Wo)
    dw = (d_flat @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    db = d_flat.sum(axis=(0, 2))
    if not need_dx:
        return None, dw, db
    # col2im, the transpose of im2col: each column's gradient is added back onto the k x k pixels it was
    # copied from (overlapping patches add up).
    batch, channels = x_shape[:2]
    ho, wo = d_out.shape[2:]
    d_cols = (w.reshape(out_channels, -1).T @ d_flat).reshape(batch, channels, k, k, ho, wo)
    dx = np.zeros(x_shape, dtype=d_out.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + ho, j:j + wo] += d_cols[:, :, i, j]
    return dx, dw, db


def maxpool_forward(x):
    """2x2 windows, stride 2; argmax marks the one input each output came from (the first, on ties)."""
    batch, channels, h, w = x.shape
    windows = x.reshape(batch, channels, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    windows = windows.reshape(batch, channels, h // 2, w // 2, 4)
    argmax = windows.argmax(axis=-1)
    return np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0], argmax


def maxpool_backward(d_out, argmax):
    batch, channels, ho, wo = d_out.shape
    d_windows = (argmax[..., None] == np.arange(4)) * d_out[..., None]  # the gradient goes to the max only
    d_windows = d_windows.reshape(batch, channels, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return d_windows.reshape(batch, channels, ho * 2, wo * 2)


def forward(params, x, keep=False):
    """Logits of the network; with keep=True also everything the backward pass needs."""
    a1, cols1 = conv_forward(x, params["conv1_w"], params["conv1_b"])  # (B, 6w, 28, 28) at width w
    r1 = np.maximum(a1, 0)
    p1, arg1 = maxpool_forward(r1)  # (B, 6w, 14, 14)
    a2, cols2 = conv_forward(p1, params["conv2_w"], params["conv2_b"])  # (B, 16w, 10, 10)
    r2 = np.maximum(a2, 0)
    p2, arg2 = maxpool_forward(r2)  # (B, 16w, 5, 5)
    f = p2.reshape(len(x), -1)  # (B, 400w), in C, H, W order
    h1 = np.maximum(f @ params["fc1_w"] + params["fc1_b"], 0)
    h2 = np.maximum(h1 @ params["fc2_w"] + params["fc2_b"], 0)
    logits = h2 @ params["fc3_w"] + params["fc3_b"]
    if not keep:
        return logits
    return logits, (x.shape, cols1, a1, arg1, p1.shape, cols2, a2, arg2, p2.shape, f, h1, h2)


def loss_and_gradients(params, x, y):
    logits, (x_shape, cols1, a1, arg1, p1_shape, cols2, a2, arg2, p2_shape, f, h1, h2) = \
        forward(params, x, keep=True)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = -log_probabilities[rows, y].mean()

    # d loss / d logits of a mean softmax cross-entropy: (softmax - one_hot) / batch
    d_logits = np.exp(log_probabilities)
    d_logits[rows, y] -= 1
    d_logits /= len(y)
    g = {"fc3_w": h2.T @ d_logits, "fc3_b": d_logits.sum(axis=0)}
    d_h2 = (d_logits @ params["fc3_w"].T) * (h2 > 0)
    g["fc2_w"], g["fc2_b"] = h1.T @ d_h2, d_h2.sum(axis=0)
    d_h1 = (d_h2 @ params["fc2_w"].T) * (h1 > 0)
    g["fc1_w"], g["fc1_b"] = f.T @ d_h1, d_h1.sum(axis=0)
    d_p2 = (d_h1 @ params["fc1_w"].T).reshape(p2_shape)
    d_a2 = maxpool_backward(d_p2, arg2) * (a2 > 0)
    d_p1, g["conv2_w"], g["conv2_b"] = conv_backward(d_a2, cols2, p1_shape, params["conv2_w"])
    d_a1 = maxpool_backward(d_p1, arg1) * (a1 > 0)
    _, g["conv1_w"], g["conv1_b"] = conv_backward(d_a1, cols1, x_shape, params["conv1_w"], need_dx=False)
    return loss, g


def train(problem, device, variant):
    params = {k: v.copy() for k, v in problem.params.items()}
    lr, momentum = problem.recipe.hyper["lr"], problem.recipe.hyper["momentum"]
    velocity = {k: np.zeros_like(p) for k, p in params.items()}
    x, y = problem.x_train, problem.y_train

    for batch in problem.batches:
        loss, gradients = loss_and_gradients(params, x[batch], y[batch])
        for k, grad in gradients.items():  # PyTorch's SGD: v <- momentum * v + g ; p <- p - lr * v
            velocity[k] *= momentum
            velocity[k] += grad
            params[k] -= lr * velocity[k]
        yield float(loss)

    n = problem.eval_batch_size
    test_logits = np.concatenate([forward(params, problem.x_test[i:i + n])
                                  for i in range(0, len(problem.x_test), n)])
    return Result(params=params, test_logits=test_logits, layout="NCHW")
