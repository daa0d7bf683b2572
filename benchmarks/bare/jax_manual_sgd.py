"""The classifier's manual recipe in JAX (a pure loss, jax.value_and_grad, the step under jax.jit, the update
by hand with tree_map), as a bare script: no rosetta code. Same problem file, timing and output as
numpy_manual_sgd.py. JAX dispatches asynchronously: each step is timed until its loss is read back
(float() waits for the XLA execution that produced it, and with it the new parameters)."""

import argparse
import json
import os
import statistics
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", required=True)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    if args.threads and hasattr(os, "sched_setaffinity"):
        # XLA has no thread setting: its CPU pool is sized from the CPUs this process may use at its first op.
        cpus = sorted(os.sched_getaffinity(0))
        if args.threads < len(cpus):
            os.sched_setaffinity(0, cpus[:args.threads])
    import jax
    import optax

    problem = np.load(args.problem)
    jax.config.update("jax_enable_x64", problem["x_train"].dtype == np.float64)
    device = jax.devices("cpu")[0]
    data = jax.device_put((problem["x_train"], problem["y_train"], problem["batches"][:args.steps]), device)
    params = jax.device_put({k: problem[k] for k in ("W1", "b1", "W2", "b2")}, device)
    steps = len(problem["batches"][:args.steps])
    base_lr = float(problem["lr"])

    def learning_rate(i):  # the course's schedule
        return base_lr * 0.1 ** (max(i - 100, 0) // 1000)

    def predict(params, x):
        return jax.nn.relu(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]

    def loss_fn(params, x, y):
        return optax.losses.softmax_cross_entropy_with_integer_labels(predict(params, x), y).mean()

    @jax.jit
    def step(params, data, i, lr):
        X, Y, batches = data
        batch = batches[i]
        loss, grads = jax.value_and_grad(loss_fn)(params, X[batch], Y[batch])
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), loss

    losses, seconds = [], []
    for i in range(steps):
        start = time.perf_counter()
        params, loss = step(params, data, i, learning_rate(i))
        loss = float(loss)
        seconds.append(time.perf_counter() - start)
        losses.append(loss)
    jax.block_until_ready(params)
    report("jax", jax.__version__, seconds, losses)


def report(framework, version, seconds, losses):
    """The same summary as the rosetta worker's: warm-up (first 10 %, 1..50 steps) left out."""
    warm = min(max(len(seconds) // 10, 1), 50) if len(seconds) > 1 else 0
    steady = seconds[warm:] or seconds
    q1, median, q3 = statistics.quantiles(steady, n=4, method="inclusive") if len(steady) > 1 else steady * 3
    print("BARE " + json.dumps({"framework": framework, "version": version, "steps": len(seconds),
                                "warmup_steps": warm, "first_step_s": seconds[0], "step_median_s": median,
                                "step_iqr_s": q3 - q1, "losses": losses}), flush=True)


if __name__ == "__main__":
    main()
