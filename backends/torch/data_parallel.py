"""Data parallelism in PyTorch: DistributedDataParallel, one process per replica.

What the PyTorch DDP tutorial writes: torch.multiprocessing starts one process per replica, each joins a
process group (gloo on the CPU, NCCL on GPUs) over a TCP rendezvous at 127.0.0.1, wraps the same nn.Module
as the single-device task (backends/torch/classifier.py, backends/torch/cnn.py) in DistributedDataParallel,
and trains on its own shard of every batch. loss.backward() all-reduces the gradients, bucket by bucket,
while the backward pass still runs; every replica then applies the same optimizer step to the same weights.

This process only starts the replicas and reads back, per step, each replica's loss (their mean is the
global batch's loss), its step time and its time in the all-reduce (a DDP communication hook that times
the default one).
"""

import os
import queue as queues
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP

from tasks.data_parallel import Chunk, Result, gpus_needed

from . import classifier, cnn

POLL_S = 1.0  # how often the parent looks whether a replica died while it waits for the next step


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # loopback only
        return s.getsockname()[1]


def make_net(problem):
    dtype = torch.float64 if problem.precision == "float64" else torch.float32
    if problem.model == "classifier":
        net = classifier.Net().to(dtype)  # in the problem's precision before the weights are copied in
        with torch.no_grad():  # the spec's weights; nn.Linear stores (out, in)
            net.lin1.weight.copy_(torch.from_numpy(problem.params["W1"].T))
            net.lin1.bias.copy_(torch.from_numpy(problem.params["b1"]))
            net.lin2.weight.copy_(torch.from_numpy(problem.params["W2"].T))
            net.lin2.bias.copy_(torch.from_numpy(problem.params["b2"]))
        return net
    net = cnn.Net().to(dtype)
    cnn.load_spec_weights(net, problem.params)
    return net


def spec_weights(problem, net):
    if problem.model == "classifier":
        return {"W1": net.lin1.weight.detach().cpu().T.numpy(), "b1": net.lin1.bias.detach().cpu().numpy(),
                "W2": net.lin2.weight.detach().cpu().T.numpy(), "b2": net.lin2.bias.detach().cpu().numpy()}
    return cnn.spec_weights(net)


def timed_allreduce(state, bucket):
    """DDP's own all-reduce hook (divide by the world size, sum over the replicas), timed until it is done."""
    started = time.perf_counter()

    def done(future):
        state["sync_s"] += time.perf_counter() - started
        return future.value()[0] if isinstance(future.value(), list) else future.value()

    return default_hooks.allreduce_hook(None, bucket).then(done)


def replica(rank, problem, world_size, port, messages, gpu):
    """One replica, in a process of its own."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device = torch.device(f"cuda:{rank}" if gpu else "cpu")
    if gpu:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if gpu else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world_size)
    try:
        dtype = torch.float64 if problem.precision == "float64" else torch.float32
        net = make_net(problem).to(device=device, dtype=dtype)
        model = DDP(net, device_ids=[rank] if gpu else None)
        state = {"sync_s": 0.0}
        model.register_comm_hook(state, timed_allreduce)
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=problem.hyper["lr"], momentum=problem.hyper["momentum"])
        # This replica's shard of every batch, on its device.
        rows = torch.from_numpy(problem.shard_batches(rank))
        X = torch.from_numpy(problem.x_train).to(device)
        Y = torch.from_numpy(problem.y_train).to(device)
        for step, batch in enumerate(rows):
            started = time.perf_counter()
            state["sync_s"] = 0.0
            optimizer.zero_grad()
            loss = criterion(model(X[batch.to(device)]), Y[batch.to(device)])
            loss.backward()  # the gradients are all-reduced here, overlapping the backward pass
            optimizer.step()
            value = loss.item()  # waits for the device
            messages.put(("step", rank, step, value, time.perf_counter() - started, state["sync_s"]))
        if rank == 0:
            messages.put(("weights", rank, spec_weights(problem, net)))
    finally:
        dist.destroy_process_group()


def train(problem, device, variant):
    gpu = device == "gpu"
    if gpu:
        gpus_needed(problem.replicas, torch.cuda.device_count())
    n = problem.replicas
    messages = mp.get_context("spawn").Queue()
    replicas = mp.start_processes(replica, args=(problem, n, free_port(), messages, gpu), nprocs=n, join=False,
                                  start_method="spawn")
    sync_seconds, arrived, weights = [], {}, None
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
            loss = sum(loss for loss, _, _ in by_rank) / n  # the global batch's mean loss
            # A step takes as long as its slowest replica; the sync time is that replica's.
            _, step_s, sync_s = max(by_rank, key=lambda m: m[1])
            sync_seconds.append(sync_s)
            yield Chunk([loss], step_seconds=[step_s])
        while weights is None:
            kind, rank, *content = receive(messages, replicas)
            if kind == "weights":
                weights = content[0]
        replicas.join()
    finally:
        for process in replicas.processes:  # a crashed, interrupted or closed training leaves no replica behind
            if process.is_alive():
                process.kill()
            process.join()
    mapping = {"replicas": n, "processes": n, "threads_per_replica": torch.get_num_threads(),
               "devices": [f"cuda:{r}" for r in range(n)] if gpu else ["cpu"] * n,
               "collective": f"{'NCCL' if gpu else 'gloo'} all-reduce over 127.0.0.1",
               "api": "torch.nn.parallel.DistributedDataParallel, one process per replica (torch.multiprocessing)"}
    return Result(params=weights, mapping=mapping, sync_seconds=sync_seconds)


def receive(messages, replicas):
    """The next message of any replica; a replica that died is an error carrying its traceback."""
    while True:
        try:
            return messages.get(timeout=POLL_S)
        except queues.Empty:
            replicas.join(timeout=0)  # raises ProcessRaisedException / ProcessExitedException if one failed
