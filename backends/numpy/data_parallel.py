"""Data parallelism written out in numpy: the reference.

Each step splits the global batch into the replicas' shards, computes each shard's mean loss and its
gradients in turn (what N devices would do at once), and averages the N gradients by hand: that average is
the all-reduce every framework's data-parallel API performs. Then one SGD-momentum update, the same on
every replica, so one copy of the weights stands for all of them. The forward and backward passes are the
single-device reference's own (backends/numpy/classifier.py, backends/numpy/cnn.py).
"""

import time

import numpy as np

from tasks.data_parallel import Result

from . import classifier, cnn


def all_reduce_mean(values):
    """The all-reduce written out: the element-wise mean of the replicas' gradients, name by name."""
    return {name: sum(v[name] for v in values) / len(values) for name in values[0]}


def train(problem, device, variant):
    model = classifier if problem.model == "classifier" else cnn
    params = {k: v.copy() for k, v in problem.params.items()}
    lr, momentum = problem.hyper["lr"], problem.hyper["momentum"]
    velocity = {k: np.zeros_like(p) for k, p in params.items()}
    x, y = problem.x_train, problem.y_train
    sync_seconds = []

    for rows in problem.batches:
        shards = [problem.shard(rows, rank) for rank in range(problem.replicas)]
        # Each replica: the mean loss of its shard and the gradients of that loss.
        results = [model.loss_and_gradients(params, x[shard], y[shard]) for shard in shards]
        synced = time.perf_counter()
        if problem.replicas == 1:
            gradients = results[0][1]  # one device: nothing to synchronize
        else:
            gradients = all_reduce_mean([g for _, g in results])
        sync_seconds.append(time.perf_counter() - synced)
        for k, g in gradients.items():  # PyTorch's SGD: v <- momentum * v + g ; p <- p - lr * v
            velocity[k] = momentum * velocity[k] + g
            params[k] -= lr * velocity[k]
        loss = sum(loss for loss, _ in results) / problem.replicas  # the global batch's mean loss
        yield float(loss)

    mapping = {"replicas": problem.replicas, "processes": 1, "threads_per_replica": 1,
               "devices": ["cpu"], "collective": "a mean over the shards' gradients, by hand",
               "api": "none: the shards in turn, in one process"}
    return Result(params=params, mapping=mapping, sync_seconds=sync_seconds)
