"""The classifier's manual recipe in MXNet 1.9 (NDArrays with attach_grad, autograd.record, the update by
hand), as a bare script: no rosetta code; runs in MXNet's own environment (.envs/mxnet). Same problem file,
timing and output as numpy_manual_sgd.py. MXNet's engine runs operators asynchronously, the CPU included:
each step is timed until its loss is read back and the engine is idle (mx.nd.waitall)."""

import argparse
import json
import statistics
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", required=True)
    parser.add_argument("--threads", type=int)  # MXNet reads OMP_NUM_THREADS and MXNET_CPU_WORKER_NTHREADS
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    import mxnet as mx
    from mxnet import autograd, nd

    problem = np.load(args.problem)
    ctx = mx.cpu()
    dtype = problem["x_train"].dtype
    X = nd.array(problem["x_train"], ctx=ctx, dtype=dtype)
    Y = nd.array(problem["y_train"], ctx=ctx, dtype="int64")
    batches = nd.array(problem["batches"][:args.steps], ctx=ctx, dtype="int64")
    params = {k: nd.array(problem[k], ctx=ctx, dtype=dtype) for k in ("W1", "b1", "W2", "b2")}
    for p in params.values():
        p.attach_grad()
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    base_lr = float(problem["lr"])

    def learning_rate(i):  # the course's schedule
        return base_lr * 0.1 ** (max(i - 100, 0) // 1000)

    losses, seconds = [], []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        lr = learning_rate(i)
        x, y = nd.take(X, batch), nd.take(Y, batch)
        with autograd.record():
            z = nd.dot(nd.relu(nd.dot(x, W1) + b1), W2) + b2
            loss = -nd.pick(nd.log_softmax(z), y).mean()
        loss.backward()
        for p in params.values():
            p -= lr * p.grad
        loss = loss.asscalar()
        mx.nd.waitall()
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss))
    report("mxnet", mx.__version__, seconds, losses)


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
