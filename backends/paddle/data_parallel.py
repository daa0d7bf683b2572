"""Data parallelism in PaddlePaddle 3: paddle.DataParallel, one process per replica.

What Paddle's data-parallel guide writes: paddle.distributed.spawn starts one process per replica (on the
CPU with the gloo backend, its rendezvous on 127.0.0.1), each calls paddle.distributed.init_parallel_env(),
wraps the single-device task's Layer (backends/paddle/classifier.py, backends/paddle/cnn.py) in
paddle.DataParallel and trains on its own shard of every batch: loss.backward() all-reduces the gradients
(summed, then divided by the number of replicas) and every replica applies the same Momentum step.

This process only starts the replicas and reads back, per step, each one's loss (their mean is the global
batch's loss) and its step time. Paddle's all-reduce runs inside backward(), fused into buckets: its time
is not visible apart from the step's.
"""

import os
import queue as queues
import time

import paddle
import paddle.distributed as dist
import paddle.nn.functional as F

from tasks.data_parallel import Chunk, Result, gpus_needed

from . import classifier, cnn

POLL_S = 1.0


def classifier_weights(net):
    return {"W1": net.lin1.weight.numpy(), "b1": net.lin1.bias.numpy(),
            "W2": net.lin2.weight.numpy(), "b2": net.lin2.bias.numpy()}


def cnn_weights(net):
    params = {}
    for name in cnn.LAYERS:
        layer = getattr(net, name)
        params[f"{name}_w"], params[f"{name}_b"] = layer.weight.numpy(), layer.bias.numpy()
    return params


def replica(problem, messages, gpu):
    """One replica, in a process of its own (paddle.distributed.spawn set its rank and endpoints)."""
    paddle.set_device("gpu" if gpu else "cpu")
    paddle.set_default_dtype(problem.precision)
    dist.init_parallel_env()
    rank = dist.get_rank()
    net = (classifier if problem.model == "classifier" else cnn).make_net(problem)
    model = paddle.DataParallel(net)
    optimizer = paddle.optimizer.Momentum(learning_rate=problem.hyper["lr"], momentum=problem.hyper["momentum"],
                                          parameters=model.parameters())
    X, Y = paddle.to_tensor(problem.x_train), paddle.to_tensor(problem.y_train)
    for step, rows in enumerate(problem.shard_batches(rank)):  # this replica's shard of every batch
        started = time.perf_counter()
        rows = paddle.to_tensor(rows)
        loss = F.cross_entropy(model(paddle.gather(X, rows)), paddle.gather(Y, rows))
        loss.backward()  # the gradients are all-reduced here
        optimizer.step()
        optimizer.clear_grad()
        value = loss.item()
        messages.put(("step", rank, step, value, time.perf_counter() - started))
    if rank == 0:
        weights = (classifier_weights if problem.model == "classifier" else cnn_weights)(net)
        messages.put(("weights", rank, weights))


def train(problem, device, variant):
    gpu = device == "gpu"
    n = problem.replicas
    if gpu:
        gpus_needed(n, paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0)
    import multiprocessing
    messages = multiprocessing.get_context("spawn").Queue()
    # spawn picks free ports on 127.0.0.1 (its default `ips`) for the replicas' endpoints.
    replicas = dist.spawn(replica, args=(problem, messages, gpu), nprocs=n, join=False,
                          backend="nccl" if gpu else "gloo", ips="127.0.0.1")
    arrived, weights = {}, None
    try:
        for step in range(problem.steps):
            while len(arrived.get(step, ())) < n:
                kind, rank, *content = receive(messages, replicas)
                if kind == "step":
                    arrived.setdefault(content[0], {})[rank] = content[1:]
                else:
                    weights = content[0]
            by_rank = [arrived[step][r] for r in range(n)]
            del arrived[step]
            loss = sum(loss for loss, _ in by_rank) / n  # the global batch's mean loss
            yield Chunk([loss], step_seconds=[max(seconds for _, seconds in by_rank)])  # the slowest replica's
        while weights is None:
            kind, rank, *content = receive(messages, replicas)
            if kind == "weights":
                weights = content[0]
        while not replicas.join(timeout=POLL_S):
            pass
    finally:
        for process in replicas.processes:  # a crashed, interrupted or closed training leaves no replica behind
            if process.is_alive():
                process.kill()
            process.join()
    mapping = {"replicas": n, "processes": n, "threads_per_replica": int(os.environ.get("OMP_NUM_THREADS", 0)) or "default",
               "devices": [f"gpu:{r}" for r in range(n)] if gpu else ["cpu"] * n,
               "collective": f"{'NCCL' if gpu else 'gloo'} all-reduce over 127.0.0.1",
               "api": "paddle.DataParallel, paddle.distributed.spawn (one process per replica)"}
    return Result(params=weights, mapping=mapping, sync_seconds=None, notes=notes_for(problem))


def receive(messages, replicas):
    """The next message of any replica; a replica that died is an error carrying its traceback."""
    while True:
        try:
            return messages.get(timeout=POLL_S)
        except queues.Empty:
            replicas.join(timeout=0)  # raises, with the replica's traceback, if one failed


def notes_for(problem):
    if problem.precision != "float64":
        return []
    return ["Paddle's Momentum kernel takes momentum as a float32 attribute even for float64 weights (0.9 becomes "
            "0.8999999761581421), so a float64 run follows a slightly different momentum (a declared difference)."]
