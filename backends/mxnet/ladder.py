"""Lecture 4's ladder in MXNet 1.9, every level it has: NDArrays with the gradients by hand; autograd
(attach_grad, autograd.record, backward); an autograd.Function of one's own (a ReLU and its backward); Gluon
layers with the update by hand; gluon.Trainer; a Gluon Block of one's own; Gluon's Estimator.fit (its training
loop); and MXNet's define-then-run graph, the Symbol API bound to an executor.

Gluon's L2Loss is half the mean over the outputs: the sum of squared errors is written out. gluon.Trainer's
step(batch_size) divides the gradient by batch_size: the loops call step(1); the Estimator calls step(N), so
its learning rate is N times the problem's (a power of two at N = 64: the same steps, bit for bit).
"""

import time

import mxnet as mx
from mxnet import autograd as ag, gluon, nd

from tasks.ladder import Chunk, Result


def arrays(problem, device):
    ctx = mx.gpu() if device == "gpu" else mx.cpu()
    return ctx, [nd.array(a, ctx=ctx, dtype=a.dtype) for a in (problem.x, problem.y, problem.w1, problem.w2)]


def by_hand(problem, device):
    ctx, (x, y, w1, w2) = arrays(problem, device)
    learning_rate = problem.lr
    for t in range(problem.steps):
        h = nd.dot(x, w1)
        h_relu = nd.maximum(h, 0)
        y_pred = nd.dot(h_relu, w2)
        loss = ((y_pred - y) ** 2).sum().asscalar()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = nd.dot(h_relu.T, grad_y_pred)
        grad_h_relu = nd.dot(grad_y_pred, w2.T)
        grad_h = nd.where(h < 0, nd.zeros_like(grad_h_relu), grad_h_relu)
        grad_w1 = nd.dot(x.T, grad_h)

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
        yield float(loss)
    return Result(w1.asnumpy(), w2.asnumpy())


def autograd(problem, device):
    ctx, (x, y, w1, w2) = arrays(problem, device)
    w1.attach_grad()
    w2.attach_grad()
    learning_rate = problem.lr
    for t in range(problem.steps):
        with ag.record():
            y_pred = nd.dot(nd.relu(nd.dot(x, w1)), w2)
            loss = ((y_pred - y) ** 2).sum()

        loss.backward()

        w1[:] -= learning_rate * w1.grad
        w2[:] -= learning_rate * w2.grad
        yield float(loss.asscalar())
    return Result(w1.asnumpy(), w2.asnumpy())


def custom_function(problem, device):
    class MyReLU(ag.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return nd.maximum(x, 0)

        def backward(self, grad_y):
            x, = self.saved_tensors
            return nd.where(x < 0, nd.zeros_like(grad_y), grad_y)

    def my_relu(x):
        return MyReLU()(x)  # a Function object is used once

    ctx, (x, y, w1, w2) = arrays(problem, device)
    w1.attach_grad()
    w2.attach_grad()
    learning_rate = problem.lr
    for t in range(problem.steps):
        with ag.record():
            y_pred = nd.dot(my_relu(nd.dot(x, w1)), w2)
            loss = ((y_pred - y) ** 2).sum()

        loss.backward()

        w1[:] -= learning_rate * w1.grad
        w2[:] -= learning_rate * w2.grad
        yield float(loss.asscalar())
    return Result(w1.asnumpy(), w2.asnumpy())


def layers(problem, device):
    ctx, (x, y, w1, w2) = arrays(problem, device)
    N, D_in, H, D_out = problem.sizes
    net = gluon.nn.Sequential()
    net.add(gluon.nn.Dense(H, activation="relu", use_bias=False, in_units=D_in, dtype=problem.precision),
            gluon.nn.Dense(D_out, use_bias=False, in_units=H, dtype=problem.precision))
    net.initialize(ctx=ctx)
    net[0].weight.set_data(w1.T)  # Dense's weight is (out, in)
    net[1].weight.set_data(w2.T)

    learning_rate = problem.lr
    for t in range(problem.steps):
        with ag.record():
            y_pred = net(x)
            loss = ((y_pred - y) ** 2).sum()

        loss.backward()

        for param in net.collect_params().values():
            param.data()[:] -= learning_rate * param.grad()
        yield float(loss.asscalar())
    return Result(net[0].weight.data().T.asnumpy(), net[1].weight.data().T.asnumpy())


def optimizer(problem, device):
    ctx, (x, y, w1, w2) = arrays(problem, device)
    N, D_in, H, D_out = problem.sizes
    net = gluon.nn.Sequential()
    net.add(gluon.nn.Dense(H, activation="relu", use_bias=False, in_units=D_in, dtype=problem.precision),
            gluon.nn.Dense(D_out, use_bias=False, in_units=H, dtype=problem.precision))
    net.initialize(ctx=ctx)
    net[0].weight.set_data(w1.T)  # Dense's weight is (out, in)
    net[1].weight.set_data(w2.T)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": problem.lr})

    for t in range(problem.steps):
        with ag.record():
            y_pred = net(x)
            loss = ((y_pred - y) ** 2).sum()

        loss.backward()

        trainer.step(1)  # the loss is already the sum: no division by the batch size
        yield float(loss.asscalar())
    return Result(net[0].weight.data().T.asnumpy(), net[1].weight.data().T.asnumpy())


def model_class(problem, device):
    class TwoLayerNet(gluon.Block):
        def __init__(self, D_in, H, D_out, dtype):
            super(TwoLayerNet, self).__init__()
            self.linear1 = gluon.nn.Dense(H, use_bias=False, in_units=D_in, dtype=dtype)
            self.linear2 = gluon.nn.Dense(D_out, use_bias=False, in_units=H, dtype=dtype)

        def forward(self, x):
            h_relu = nd.relu(self.linear1(x))
            y_pred = self.linear2(h_relu)
            return y_pred

    ctx, (x, y, w1, w2) = arrays(problem, device)
    N, D_in, H, D_out = problem.sizes
    net = TwoLayerNet(D_in, H, D_out, problem.precision)
    net.initialize(ctx=ctx)
    net.linear1.weight.set_data(w1.T)  # Dense's weight is (out, in)
    net.linear2.weight.set_data(w2.T)

    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": problem.lr})
    for t in range(problem.steps):
        with ag.record():
            y_pred = net(x)
            loss = ((y_pred - y) ** 2).sum()

        loss.backward()
        trainer.step(1)
        yield float(loss.asscalar())
    return Result(net.linear1.weight.data().T.asnumpy(), net.linear2.weight.data().T.asnumpy())


def fit(problem, device):
    from mxnet.gluon.contrib.estimator import BatchBegin, BatchEnd, Estimator

    class SumSquaredError(gluon.loss.Loss):
        def __init__(self):
            super().__init__(weight=None, batch_axis=0)

        def hybrid_forward(self, F, pred, label):
            return F.sum(F.square(pred - label), axis=1)

    class StepLosses(BatchBegin, BatchEnd):
        """Each step's loss and its time inside fit()."""
        def batch_begin(self, estimator, *args, **kwargs):
            self.began = time.perf_counter()

        def batch_end(self, estimator, *args, **kwargs):
            losses.append(float(sum(l.sum().asscalar() for l in kwargs["loss"])))
            seconds.append(time.perf_counter() - self.began)

    ctx, (x, y, w1, w2) = arrays(problem, device)
    N, D_in, H, D_out = problem.sizes
    net = gluon.nn.Sequential()
    net.add(gluon.nn.Dense(H, activation="relu", use_bias=False, in_units=D_in, dtype=problem.precision),
            gluon.nn.Dense(D_out, use_bias=False, in_units=H, dtype=problem.precision))
    net.initialize(ctx=ctx)
    net[0].weight.set_data(w1.T)  # Dense's weight is (out, in)
    net[1].weight.set_data(w2.T)
    # The Estimator calls trainer.step(N), which divides the gradient by N: N times the learning rate.
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": problem.lr * N})

    data = gluon.data.DataLoader(gluon.data.ArrayDataset(x, y), batch_size=N, shuffle=False)
    estimator = Estimator(net, SumSquaredError(), trainer=trainer, context=ctx)
    losses, seconds = [], []
    estimator.fit(train_data=data, epochs=problem.steps, event_handlers=[StepLosses()])
    yield Chunk(losses, step_seconds=seconds)
    return Result(net[0].weight.data().T.asnumpy(), net[1].weight.data().T.asnumpy())


def graph(problem, device):
    ctx, _ = arrays(problem, device)
    N, D_in, H, D_out = problem.sizes
    x = mx.sym.var("x")
    y = mx.sym.var("y")
    w1 = mx.sym.var("w1")
    w2 = mx.sym.var("w2")

    h = mx.sym.relu(mx.sym.dot(x, w1))
    y_pred = mx.sym.dot(h, w2)
    diff = y_pred - y
    loss = mx.sym.MakeLoss(mx.sym.sum(mx.sym.square(diff)))
    executor = loss.simple_bind(ctx, x=(N, D_in), y=(N, D_out), w1=(D_in, H), w2=(H, D_out),
                                type_dict={name: problem.precision for name in ("x", "y", "w1", "w2")},
                                grad_req={"x": "null", "y": "null", "w1": "write", "w2": "write"})
    executor.copy_params_from({"x": nd.array(problem.x, dtype=problem.precision),
                               "y": nd.array(problem.y, dtype=problem.precision),
                               "w1": nd.array(problem.w1, dtype=problem.precision),
                               "w2": nd.array(problem.w2, dtype=problem.precision)})
    weights, grads = executor.arg_dict, executor.grad_dict
    learning_rate = problem.lr
    for t in range(problem.steps):
        loss_val = executor.forward(is_train=True)[0]
        executor.backward()
        weights["w1"][:] -= learning_rate * grads["w1"]
        weights["w2"][:] -= learning_rate * grads["w2"]
        yield float(loss_val.asscalar())
    return Result(weights["w1"].asnumpy(), weights["w2"].asnumpy())


LEVELS = {"by-hand": by_hand, "autograd": autograd, "custom-function": custom_function, "layers": layers,
          "optimizer": optimizer, "model-class": model_class, "fit": fit, "graph": graph}


def train(problem, device, variant):
    return (yield from LEVELS[problem.recipe.name](problem, device))
