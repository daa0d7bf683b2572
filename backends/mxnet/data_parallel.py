"""Data parallelism in MXNet 1.9 Gluon: one copy of the network per context, a Trainer over a kvstore.

What the Gluon multi-device tutorial writes: the parameters live on a list of contexts (mx.gpu(0..N-1),
here N CPU contexts mx.cpu(0..N-1), each with its own engine worker), gluon.utils.split_and_load cuts
every batch into one consecutive slice per context, each slice's forward and backward run on its context,
and the gluon.Trainer's kvstore ("device": the reduction runs on the devices, not on a parameter server)
sums the copies' gradients before the identical update of every copy. The network is the single-device
task's (backends/mxnet/classifier.py, backends/mxnet/cnn.py); "mxnet-hybrid" hybridizes it.

The Trainer is made with update_on_kvstore=False so that its two halves can be called, and timed, apart:
trainer.allreduce_grads() (the synchronization) and trainer.update(batch_size) (the SGD step, which scales
the summed gradient by 1/batch_size: the global batch's mean).
"""

import os
import time

import mxnet as mx
from mxnet import autograd, gluon, nd

from tasks.data_parallel import Result, gpus_needed

from . import classifier, cnn


def train(problem, device, variant):
    n = problem.replicas
    if device == "gpu":
        gpus_needed(n, mx.context.num_gpus())
        contexts = [mx.gpu(i) for i in range(n)]
    else:
        contexts = [mx.cpu(i) for i in range(n)]
    dtype = problem.precision

    # The single-device network, built on the first context, then copied to every replica's.
    net = (classifier if problem.model == "classifier" else cnn).make_net(problem, contexts[0])
    net.collect_params().reset_ctx(contexts)
    if variant == "mxnet-hybrid":
        net.hybridize(static_alloc=True, static_shape=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    h = problem.hyper
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": h["lr"], "momentum": h["momentum"],
                                                          "wd": 0.0}, kvstore="device", update_on_kvstore=False)

    X = nd.array(problem.x_train, dtype=dtype)  # on the host; each step's slices go to their contexts
    Y = nd.array(problem.y_train, dtype="int64")
    sync_seconds = []
    for rows in problem.batches:
        batch = nd.array(rows, dtype="int64")
        # One consecutive slice of the batch per context: replica r gets rows [r B/N, (r + 1) B/N).
        xs = gluon.utils.split_and_load(nd.take(X, batch), contexts, even_split=True)
        ys = gluon.utils.split_and_load(nd.take(Y, batch), contexts, even_split=True)
        with autograd.record():
            losses = [loss_fn(net(x), y) for x, y in zip(xs, ys)]  # one loss per image, per context
        autograd.backward(losses)  # each context's gradient of its slice's SUMMED loss
        nd.waitall()
        started = time.perf_counter()
        trainer.allreduce_grads()  # the kvstore sums the contexts' gradients and hands the sum back to each
        nd.waitall()
        sync_seconds.append(time.perf_counter() - started)
        trainer.update(problem.batch_size)  # the sum scaled by 1/batch_size: the global mean's gradient
        yield sum(loss.mean().asscalar() for loss in losses) / n  # the global batch's mean loss

    params = (classifier_weights if problem.model == "classifier" else cnn.spec_params)(net)
    mapping = {"replicas": len(next(iter(net.collect_params().values())).list_ctx()), "processes": 1,
               "threads_per_replica": int(os.environ.get("MXNET_CPU_WORKER_NTHREADS", 1)),
               "devices": [str(c) for c in contexts],
               "collective": "kvstore 'device': the gradients summed on the devices, in-process",
               "api": "gluon.Trainer(kvstore='device'), gluon.utils.split_and_load"}
    return Result(params=params, mapping=mapping, sync_seconds=sync_seconds, notes=notes_for(problem))


def classifier_weights(net):
    # Dense stores (out, in): transpose back to the spec's (in, out).
    return {"W1": net[0].weight.data().T.asnumpy(), "b1": net[0].bias.data().asnumpy(),
            "W2": net[1].weight.data().T.asnumpy(), "b2": net[1].bias.data().asnumpy()}


def notes_for(problem):
    if problem.precision != "float64":
        return []
    return ["MXNet's fused SGD-momentum kernel takes lr, momentum and the 1/batch_size rescale as float32 even for "
            "float64 weights, so a float64 run follows slightly different hyper-parameters (a declared difference)."]
