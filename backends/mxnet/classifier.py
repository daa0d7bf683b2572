"""The 3-zone classifier in MXNet 1.9.

Variant "mxnet" runs imperatively. manual-sgd follows the course: raw NDArrays with attach_grad(), the
forward pass under autograd.record(), loss.backward(), and the update written by hand. The other recipes
are what the Gluon tutorials write: an nn.HybridSequential of Dense layers, a loss from gluon.loss and a
gluon.Trainer. Variant "mxnet-hybrid" calls net.hybridize() on that same network, which turns it into one
cached symbolic graph; its manual-sgd applies the hand-written update to the Gluon parameters' data and grad.
"""

import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from tasks.classifier import Result


class AdaDelta(mx.optimizer.AdaDelta):
    # MXNet 1.9's AdaDelta allocates its two accumulators in float32 whatever the weight's dtype, and
    # fails on float64 weights ("expected float32, got float64"): allocate them like the weight.
    def create_state(self, index, weight):
        return (nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                nd.zeros(weight.shape, weight.context, dtype=weight.dtype))


def make_net(problem, ctx):
    hidden = problem.params["W1"].shape[1]  # the width the weights were made for (the course's: 12)
    net = nn.HybridSequential()
    net.add(nn.Dense(hidden, in_units=2, activation="relu"),
            nn.Dense(3, in_units=hidden))
    net.initialize(ctx=ctx)
    net.cast(problem.precision)
    # Start from the spec's weights. Dense stores its weight as (out, in): transpose the spec's (in, out).
    p = problem.params
    for layer, w, b in ((net[0], p["W1"], p["b1"]), (net[1], p["W2"], p["b2"])):
        layer.weight.set_data(nd.array(w.T, ctx=ctx, dtype=w.dtype))
        layer.bias.set_data(nd.array(b, ctx=ctx, dtype=b.dtype))
    return net


def make_trainer(recipe, net):
    h = recipe.hyper
    if recipe.name == "sgd-momentum":
        # MXNet folds the learning rate into the momentum buffer (v = momentum * v + lr * g; w -= v),
        # which is PyTorch's rule scaled by lr: the same steps while lr is constant.
        optimizer = mx.optimizer.SGD(learning_rate=h["lr"], momentum=h["momentum"], wd=0.0)
    elif recipe.name == "adam":
        # MXNet folds both bias corrections into the step size and adds epsilon to the raw sqrt(v).
        optimizer = mx.optimizer.Adam(learning_rate=h["lr"], beta1=h["beta1"], beta2=h["beta2"],
                                      epsilon=h["eps"], wd=0.0)
    elif recipe.name == "adadelta":
        # MXNet's AdaDelta has no learning rate: its step is Zeiler's, i.e. lr 1.0.
        optimizer = AdaDelta(rho=h["rho"], epsilon=h["eps"], wd=0.0)
    else:
        raise ValueError(f"no optimizer for recipe {recipe.name}")
    return gluon.Trainer(net.collect_params(), optimizer)


def recipe_notes(problem):
    h, name, notes = problem.recipe.hyper, problem.recipe.name, []
    if name == "adam":
        scale = 1 / (1 - h["beta2"]) ** 0.5
        notes.append("MXNet's Adam folds both bias corrections into the step size, "
                     "lr * sqrt(1 - beta2^t) / (1 - beta1^t), and adds eps to the uncorrected sqrt(v), so "
                     f"its eps acts as eps / sqrt(1 - beta2^t) in Kingma & Ba's form, {scale:.0f}x larger "
                     "at step 1.")
    if name == "adadelta" and h["lr"] != 1.0:
        notes.append(f"MXNet's AdaDelta has no learning rate: it steps as with lr 1.0, not {h['lr']}.")
    if name in ("sgd-momentum", "adam") and problem.precision == "float64":
        notes.append("MXNet's fused update kernels take lr, momentum, betas, eps and the 1/batch_size "
                     "gradient scale as float32 even for float64 weights (0.1 becomes 0.10000000149), so a "
                     "float64 run follows slightly different hyper-parameters.")
    if name == "adadelta" and problem.precision == "float64":
        notes.append("MXNet 1.9's AdaDelta allocates its accumulators in float32 and fails on float64 "
                     "weights; this backend subclasses it to allocate them in the weight's dtype.")
    return notes


def train(problem, device, variant):
    ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
    dtype = problem.precision
    X = nd.array(problem.x_train, ctx=ctx, dtype=dtype)  # nd.array makes float32 unless told otherwise
    Y = nd.array(problem.y_train, ctx=ctx, dtype="int64")
    # Batches are gathered with nd.take: X[batch] with an NDArray index goes through MXNet's general
    # advanced indexing, about 15 times slower per step.
    batches = nd.array(problem.batches, ctx=ctx, dtype="int64")
    X_val = nd.array(problem.x_val, ctx=ctx, dtype=dtype)

    if problem.recipe.name == "manual-sgd" and variant == "mxnet":
        params = yield from train_by_hand(problem, X, Y, batches, ctx)
        val_logits = nd.dot(nd.relu(nd.dot(X_val, params["W1"]) + params["b1"]), params["W2"]) + params["b2"]
    else:
        net = make_net(problem, ctx)
        if variant == "mxnet-hybrid":
            # Shapes never change here: static memory and shapes cut the cached graph's per-call overhead.
            net.hybridize(static_alloc=True, static_shape=True)
        if problem.recipe.name == "manual-sgd":
            yield from train_gluon_by_hand(problem, net, X, Y, batches)
        else:
            yield from train_with_trainer(problem, net, X, Y, batches)
        val_logits = net(X_val)
        params = {"W1": net[0].weight.data().T, "b1": net[0].bias.data(),
                  "W2": net[1].weight.data().T, "b2": net[1].bias.data()}

    return Result(params={k: v.asnumpy() for k, v in params.items()}, val_logits=val_logits.asnumpy(),
                  notes=recipe_notes(problem))


def train_by_hand(problem, X, Y, batches, ctx):
    params = {k: nd.array(v, ctx=ctx, dtype=v.dtype) for k, v in problem.params.items()}
    for p in params.values():
        p.attach_grad()
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    for i, batch in enumerate(batches):
        lr = problem.learning_rate(i)
        x, y = nd.take(X, batch), nd.take(Y, batch)
        with autograd.record():
            z = nd.dot(nd.relu(nd.dot(x, W1) + b1), W2) + b2
            loss = -nd.pick(nd.log_softmax(z), y).mean()
        loss.backward()
        for p in params.values():
            p -= lr * p.grad  # in place: the NDArray keeps its attached gradient buffer
        yield loss.asscalar()
    return params


def train_gluon_by_hand(problem, net, X, Y, batches):
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for i, batch in enumerate(batches):
        lr = problem.learning_rate(i)
        with autograd.record():
            loss = loss_fn(net(nd.take(X, batch)), nd.take(Y, batch))  # one loss per sample
        loss.backward()  # on a vector: the gradient of the SUM of the losses
        for p in net.collect_params().values():
            weight = p.data()
            weight -= lr * p.grad() / problem.batch_size
        yield loss.mean().asscalar()


def train_with_trainer(problem, net, X, Y, batches):
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = make_trainer(problem.recipe, net)
    for batch in batches:
        with autograd.record():
            loss = loss_fn(net(nd.take(X, batch)), nd.take(Y, batch))
        loss.backward()
        trainer.step(problem.batch_size)  # scales the summed gradient by 1 / batch_size: the mean's
        yield loss.mean().asscalar()
