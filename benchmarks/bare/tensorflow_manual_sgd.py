"""The classifier's manual recipe in TensorFlow 2 (tf.Variables in a tf.Module, GradientTape, the step under
tf.function, updates by hand with assign_sub), as a bare script: no rosetta code. Same problem file, timing
and output as numpy_manual_sgd.py."""

import argparse
import json
import statistics
import time

import numpy as np
import tensorflow as tf


class MLP(tf.Module):
    def __init__(self, params):
        super().__init__()
        self.W1 = tf.Variable(params["W1"], name="W1")
        self.b1 = tf.Variable(params["b1"], name="b1")
        self.W2 = tf.Variable(params["W2"], name="W2")
        self.b2 = tf.Variable(params["b2"], name="b2")

    def __call__(self, x):
        return tf.nn.relu(x @ self.W1 + self.b1) @ self.W2 + self.b2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", required=True)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    problem = np.load(args.problem)
    batches = problem["batches"][:args.steps]
    base_lr = float(problem["lr"])
    with tf.device("/CPU:0"):
        X, Y = tf.constant(problem["x_train"]), tf.constant(problem["y_train"])
        model = MLP({k: problem[k] for k in ("W1", "b1", "W2", "b2")})

    def learning_rate(i):  # the course's schedule
        return base_lr * 0.1 ** (max(i - 100, 0) // 1000)

    @tf.function
    def train_step(rows, lr):
        with tf.GradientTape() as tape:
            logits = model(tf.gather(X, rows))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.gather(Y, rows),
                                                                                 logits=logits))
        gradients = tape.gradient(loss, model.trainable_variables)
        for variable, gradient in zip(model.trainable_variables, gradients):
            variable.assign_sub(lr * gradient)
        return loss

    losses, seconds = [], []
    for i, rows in enumerate(batches):
        start = time.perf_counter()
        with tf.device("/CPU:0"):
            loss = train_step(tf.constant(rows), tf.constant(learning_rate(i), X.dtype))
        loss = float(loss)
        seconds.append(time.perf_counter() - start)
        losses.append(loss)
    report("tensorflow", tf.__version__, seconds, losses)


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
