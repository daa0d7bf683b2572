"""The classifier's manual recipe in PyTorch (raw tensors, autograd, updates by hand under no_grad), as a
bare script: no rosetta code. Same problem file, timing and output as numpy_manual_sgd.py."""

import argparse
import json
import statistics
import time

import numpy as np
import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", required=True)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    problem = np.load(args.problem)
    X, Y = torch.from_numpy(problem["x_train"]), torch.from_numpy(problem["y_train"])
    batches = torch.from_numpy(problem["batches"][:args.steps])
    params = {k: torch.tensor(problem[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")}
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    base_lr = float(problem["lr"])

    def learning_rate(i):  # the course's schedule
        return base_lr * 0.1 ** (max(i - 100, 0) // 1000)

    losses, seconds = [], []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        lr = learning_rate(i)
        z = torch.relu(X[batch] @ W1 + b1) @ W2 + b2
        loss = -torch.log_softmax(z, dim=1).gather(1, Y[batch].unsqueeze(1)).mean()
        loss.backward()
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad.zero_()
        loss = loss.item()
        seconds.append(time.perf_counter() - start)
        losses.append(loss)
    report("torch", torch.__version__, seconds, losses)


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
