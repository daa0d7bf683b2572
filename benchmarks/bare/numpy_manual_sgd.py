"""The classifier's manual recipe (the course's loop) in numpy, as a bare script: no rosetta code.

Reads the problem (data, initial weights, batch order, base learning rate) from the .npz that
benchmarks/overhead.py writes from tasks/classifier.py, so it does exactly the work a rosetta worker
does; times each step with perf_counter; prints one line `BARE {json}` with the per-step figures.
"""

import argparse
import json
import statistics
import time

import numpy as np


def loss_and_gradients(params, x, y):
    hidden_in = x @ params["W1"] + params["b1"]
    hidden = np.maximum(hidden_in, 0)
    logits = hidden @ params["W2"] + params["b2"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = -log_probabilities[rows, y].mean()
    d_logits = np.exp(log_probabilities)
    d_logits[rows, y] -= 1
    d_logits /= len(y)
    d_hidden = d_logits @ params["W2"].T
    d_hidden[hidden_in <= 0] = 0
    return loss, {"W2": hidden.T @ d_logits, "b2": d_logits.sum(axis=0),
                  "W1": x.T @ d_hidden, "b1": d_hidden.sum(axis=0)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", required=True)
    parser.add_argument("--threads", type=int)  # numpy's BLAS reads OPENBLAS_NUM_THREADS before it loads
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    problem = np.load(args.problem)
    x, y, batches = problem["x_train"], problem["y_train"], problem["batches"][:args.steps]
    params = {k: problem[k].copy() for k in ("W1", "b1", "W2", "b2")}
    base_lr = float(problem["lr"])

    def learning_rate(i):  # the course's schedule
        return base_lr * 0.1 ** (max(i - 100, 0) // 1000)

    losses, seconds = [], []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        loss, gradients = loss_and_gradients(params, x[batch], y[batch])
        lr = learning_rate(i)
        for k in params:
            params[k] -= lr * gradients[k]
        loss = float(loss)
        seconds.append(time.perf_counter() - start)
        losses.append(loss)
    report("numpy", np.__version__, seconds, losses)


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
