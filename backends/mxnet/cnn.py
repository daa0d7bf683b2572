"""The CIFAR-10 CNN of the PyTorch tutorial, in MXNet 1.9 Gluon.

What the Gluon tutorials write: an nn.HybridSequential of Conv2D, MaxPool2D and Dense blocks, a loss from
gluon.loss and a gluon.Trainer, each step under autograd.record(). MXNet computes NCHW with OIHW kernels,
as the spec does; only its Dense weights are stored (out, in). Variant "mxnet-hybrid" calls
net.hybridize() on the same network, which runs it as one cached symbolic graph. The convolutions have
6*width and 16*width channels (width 1: the tutorial's), read from the spec's weights.
"""

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from tasks.cnn import Result, width_of


def make_net(problem, ctx):
    width = width_of(problem.params)
    net = nn.HybridSequential()
    # in_channels / in_units given, so the weights exist right after initialize() and can be set.
    net.add(nn.Conv2D(6 * width, kernel_size=5, in_channels=3, activation="relu"),
            nn.MaxPool2D(pool_size=2, strides=2),
            nn.Conv2D(16 * width, kernel_size=5, in_channels=6 * width, activation="relu"),
            nn.MaxPool2D(pool_size=2, strides=2),
            # Dense flattens its (N, 16 * width, 5, 5) input in C, H, W order: the spec's order for fc1's rows.
            nn.Dense(120, in_units=16 * width * 5 * 5, activation="relu"),
            nn.Dense(84, in_units=120, activation="relu"),
            nn.Dense(10, in_units=84))
    net.initialize(ctx=ctx)
    net.cast(problem.precision)
    p = problem.params
    for layer, name in ((net[0], "conv1"), (net[2], "conv2")):
        layer.weight.set_data(nd.array(p[f"{name}_w"], ctx=ctx, dtype=problem.precision))  # OIHW, as is
        layer.bias.set_data(nd.array(p[f"{name}_b"], ctx=ctx, dtype=problem.precision))
    for layer, name in ((net[4], "fc1"), (net[5], "fc2"), (net[6], "fc3")):
        # Dense stores its weight as (out, in): transpose the spec's (in, out).
        layer.weight.set_data(nd.array(p[f"{name}_w"].T, ctx=ctx, dtype=problem.precision))
        layer.bias.set_data(nd.array(p[f"{name}_b"], ctx=ctx, dtype=problem.precision))
    return net


def spec_params(net):
    params = {}
    for layer, name in ((net[0], "conv1"), (net[2], "conv2")):
        params[f"{name}_w"], params[f"{name}_b"] = layer.weight.data(), layer.bias.data()
    for layer, name in ((net[4], "fc1"), (net[5], "fc2"), (net[6], "fc3")):
        params[f"{name}_w"], params[f"{name}_b"] = layer.weight.data().T, layer.bias.data()
    return {k: v.asnumpy() for k, v in params.items()}


def notes_for(problem):
    if problem.precision != "float64":
        return []
    h = problem.recipe.hyper
    rounded = f"lr {h['lr']} becomes {float(np.float32(h['lr']))!r}, momentum {h['momentum']} becomes " \
              f"{float(np.float32(h['momentum']))!r}"
    if float(np.float32(1 / problem.batch_size)) != 1 / problem.batch_size:
        rounded += f", the gradient scale 1/{problem.batch_size} is rounded too"
    return ["MXNet's fused SGD-momentum kernels (multi_sgd_mom_update, sgd_mom_update) take their hyper-parameters "
            f"as float32 even for float64 weights ({rounded}), so a float64 run follows slightly different ones: "
            "over 20 steps of batch 4 its loss drifts about 1e-10 from the reference's (which, given the same "
            "float32-rounded values, it matches to 2e-16)."]


def train(problem, device, variant):
    ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
    dtype = problem.precision
    X = nd.array(problem.x_train, ctx=ctx, dtype=dtype)  # nd.array makes float32 unless told otherwise
    Y = nd.array(problem.y_train, ctx=ctx, dtype="int64")
    batches = nd.array(problem.batches, ctx=ctx, dtype="int64")
    X_test = nd.array(problem.x_test, ctx=ctx, dtype=dtype)

    net = make_net(problem, ctx)
    if variant == "mxnet-hybrid":
        net.hybridize(static_alloc=True, static_shape=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    h = problem.recipe.hyper
    # MXNet folds lr into the momentum buffer (mom <- 0.9 mom - lr g; w <- w + mom): PyTorch's steps for a
    # constant lr, up to rounding.
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": h["lr"], "momentum": h["momentum"], "wd": 0.0})
    for batch in batches:
        # nd.take gathers the batch on the device (X[batch] goes through slower advanced indexing)
        with autograd.record():
            loss = loss_fn(net(nd.take(X, batch)), nd.take(Y, batch))  # one loss per image
        loss.backward()  # on a vector: the gradient of the SUM of the losses
        trainer.step(problem.batch_size)  # scales that gradient by 1 / batch_size: the mean's
        yield loss.mean().asscalar()

    n, size = len(problem.x_test), problem.eval_batch_size
    test_logits = nd.concat(*[net(X_test[i:i + size]) for i in range(0, n, size)], dim=0)
    return Result(params=spec_params(net), test_logits=test_logits.asnumpy(), layout="NCHW",
                  notes=notes_for(problem))
