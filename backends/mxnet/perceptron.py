"""Course 1's perceptron in MXNet 1.9.

Variant "mxnet" is the course's loop with raw NDArrays: attach_grad(), the forward pass under
autograd.record(), c.backward(), the update written by hand. Variant "mxnet-hybrid" puts the two layers in
Gluon Dense blocks (whose weights are (out, in), the course's layout) and hybridizes them into one cached
graph; the update is still the course's, applied to the parameters' data and grad.
"""

import mxnet as mx
from mxnet import autograd, nd
from mxnet.gluon import nn

from tasks.perceptron import Result

NAMES = ("theta1", "bias1", "theta2", "bias2")


def norm(arrays):
    return nd.sqrt(sum(nd.sum(p * p) for p in arrays))


def train(problem, device, variant):
    ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
    samples = nd.array(problem.samples, ctx=ctx, dtype=problem.precision)  # nd.array makes float32 unless told
    if variant == "mxnet-hybrid":
        params, norms = yield from train_hybrid(problem, samples, ctx)
    else:
        params, norms = yield from train_by_hand(problem, samples, ctx)
    return Result(params={k: v.asnumpy() for k, v in params.items()},
                  param_norms=nd.concat(*norms, dim=0).asnumpy().tolist())


def train_by_hand(problem, samples, ctx):
    params = {k: nd.array(v, ctx=ctx, dtype=v.dtype) for k, v in problem.params.items()}
    for p in params.values():
        p.attach_grad()  # grad_req "write": each backward() overwrites the gradient, nothing to zero
    theta1, bias1, theta2, bias2 = (params[k] for k in NAMES)
    norms = []  # NDArrays, read back once at the end
    for i in range(problem.steps):
        lr = problem.learning_rate(i)
        x = samples[i]
        with autograd.record():
            y = nd.relu(nd.dot(theta1, x) + bias1)
            z = nd.dot(theta2, y) + bias2
            c = nd.sum(z) ** 2
        c.backward()
        for p in params.values():
            p -= lr * p.grad  # in place: the NDArray keeps its attached gradient buffer
        norms.append(norm(params.values()))
        yield float(c.asscalar())  # asscalar() gives a numpy scalar
    return params, norms


def train_hybrid(problem, samples, ctx):
    net = nn.HybridSequential()
    net.add(nn.Dense(32, in_units=samples.shape[1], activation="relu"), nn.Dense(32, in_units=32))
    net.initialize(ctx=ctx)
    net.cast(problem.precision)
    p = problem.params
    for layer, w, b in ((net[0], p["theta1"], p["bias1"]), (net[1], p["theta2"], p["bias2"])):
        layer.weight.set_data(nd.array(w, ctx=ctx, dtype=w.dtype))
        layer.bias.set_data(nd.array(b, ctx=ctx, dtype=b.dtype))
    # Shapes never change here: static memory and shapes cut the cached graph's per-call overhead.
    net.hybridize(static_alloc=True, static_shape=True)
    weights = [net[0].weight, net[0].bias, net[1].weight, net[1].bias]

    norms = []
    for i in range(problem.steps):
        lr = problem.learning_rate(i)
        x = samples[i].reshape((1, -1))  # Dense takes a batch: a batch of one sample
        with autograd.record():
            c = nd.sum(net(x)) ** 2
        c.backward()
        for w in weights:
            data = w.data()
            data -= lr * w.grad()
        norms.append(norm(w.data() for w in weights))
        yield float(c.asscalar())  # asscalar() gives a numpy scalar
    return dict(zip(NAMES, (w.data() for w in weights))), norms
