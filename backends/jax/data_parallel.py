"""Data parallelism in JAX: the sharding API. One jitted step over a mesh of N devices.

What JAX's "distributed arrays and automatic parallelization" guide writes: a jax.sharding.Mesh of the
devices with one axis, "batch"; the weights and the optimizer's state placed on every device
(NamedSharding with PartitionSpec(), replicated); each global batch placed split along its first
dimension (PartitionSpec("batch")), device r holding rows [r B/N, (r + 1) B/N). The step is the
single-device task's own function (backends/jax/classifier.py, backends/jax/cnn.py): jax.jit compiles it
for those shardings, and XLA's SPMD partitioner computes each shard's part on its device and inserts the
all-reduce of the gradients where the global mean needs it. No line of the step names a collective.

On the CPU, JAX sees one device unless told otherwise: jax_num_cpu_devices (the config option behind
XLA_FLAGS=--xla_force_host_platform_device_count) splits the host into N devices, and must be set before
JAX's CPU backend starts, which the worker has not done yet (each cell is a fresh process). XLA's CPU client
sizes its thread pool from the CPUs the process may use: the worker's --threads pinned it to that many, so
here it gets that many per replica. The all-reduce runs inside the compiled step: its time is not visible.
"""

import os

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tasks.data_parallel import Result, gpus_needed

from . import classifier, cnn


def use_cpus(count):
    """Let this process (and the XLA client about to start) run on `count` CPUs: one thread per replica."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        everything = sorted(os.sched_getaffinity(os.getppid()))
    except OSError:
        everything = sorted(os.sched_getaffinity(0))
    chosen = everything[:max(1, min(count, len(everything)))]
    os.sched_setaffinity(0, chosen)
    return len(chosen)


def train(problem, device, variant):
    n = problem.replicas
    jax.config.update("jax_enable_x64", problem.precision == "float64")
    if device == "gpu":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:  # no GPU platform
            gpus = []
        gpus_needed(n, len(gpus))
        devices = gpus[:n]
        threads = None
    else:
        threads_each = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        threads = use_cpus(threads_each * n)
        jax.config.update("jax_num_cpu_devices", n)  # before the CPU backend starts
        devices = jax.devices("cpu")[:n]
    mesh = Mesh(np.array(devices), axis_names=("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec("batch"))  # first dimension split over the devices

    model = classifier if problem.model == "classifier" else cnn
    optimizer = optax.sgd(problem.hyper["lr"], momentum=problem.hyper["momentum"])  # PyTorch's rule
    params = jax.device_put(problem.params, replicated)
    opt_state = jax.device_put(optimizer.init(problem.params), replicated)

    @jax.jit  # compiled for the arguments' shardings: the gradient all-reduce is XLA's
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(model.loss_fn)(params, x, y)  # the GLOBAL batch's mean loss
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for rows in problem.batches:
        x = jax.device_put(problem.x_train[rows], split)  # device r gets shard r of this batch
        y = jax.device_put(problem.y_train[rows], split)
        params, opt_state, loss = step(params, opt_state, x, y)
        yield float(loss)

    mapping = {"replicas": len(params[next(iter(params))].sharding.device_set), "processes": 1,
               "threads_per_replica": 1 if threads is None else max(threads // n, 1),
               "devices": [str(d) for d in devices],
               "collective": "all-reduce inserted by XLA's SPMD partitioner, in-process",
               "api": "jax.sharding.Mesh + NamedSharding, jax.jit"
               + (", jax_num_cpu_devices" if device == "cpu" else "")}
    return Result(params={k: np.array(v) for k, v in params.items()}, mapping=mapping, sync_seconds=None)
