"""The classifier's manual recipe in PaddlePaddle (dygraph: tensors with stop_gradient=False, backward, the
update by hand under no_grad), as a bare script: no rosetta code; runs in PaddlePaddle's own environment
(.envs/paddle). Same problem file, timing and output as numpy_manual_sgd.py."""

import argparse
import json
import statistics
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", required=True)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    import paddle
    import paddle.nn.functional as F

    if args.threads:
        from paddle.base import core
        core.set_num_threads(args.threads)
    problem = np.load(args.problem)
    paddle.set_device("cpu")
    paddle.set_default_dtype(str(problem["x_train"].dtype))
    X, Y = paddle.to_tensor(problem["x_train"]), paddle.to_tensor(problem["y_train"])
    batches = paddle.to_tensor(problem["batches"][:args.steps])
    steps = len(problem["batches"][:args.steps])
    params = {k: paddle.to_tensor(problem[k], stop_gradient=False) for k in ("W1", "b1", "W2", "b2")}
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    base_lr = float(problem["lr"])

    def learning_rate(i):  # the course's schedule
        return base_lr * 0.1 ** (max(i - 100, 0) // 1000)

    losses, seconds = [], []
    for i in range(steps):
        start = time.perf_counter()
        lr = learning_rate(i)
        x, y = paddle.gather(X, batches[i]), paddle.gather(Y, batches[i])
        z = F.relu(x @ W1 + b1) @ W2 + b2
        loss = -paddle.take_along_axis(F.log_softmax(z, axis=1), y.unsqueeze(1), axis=1).mean()
        loss.backward()
        with paddle.no_grad():
            for p in params.values():
                p.subtract_(lr * p.grad)
                p.clear_gradient()
        loss = loss.item()
        seconds.append(time.perf_counter() - start)
        losses.append(loss)
    report("paddle", paddle.__version__, seconds, losses)


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
