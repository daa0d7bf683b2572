"""The classifier's manual recipe in Keras 3 (Sequential, compile(), fit() with SGD and the course's schedule
as a PiecewiseConstantDecay, a metric and a callback that record each batch's loss), as a bare script: no
rosetta code. Same problem file and output as numpy_manual_sgd.py. fit() runs all the steps in one call:
the callback times each step inside it (from the end of one batch to the end of the next), as the
rosetta backend does."""

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
    import keras
    from keras import layers, ops

    if args.threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    class BatchLoss(keras.metrics.Metric):
        def __init__(self, loss_fn, name="batch_loss"):
            super().__init__(name=name)
            self.loss_fn = loss_fn
            self.value = self.add_variable(shape=(), initializer="zeros", name="value")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.value.assign(self.loss_fn(y_true, y_pred))

        def result(self):
            return ops.convert_to_tensor(self.value)

    class LossHistory(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []
            self.ends = []

        def on_train_batch_begin(self, batch, logs=None):
            if not self.ends:
                self.ends.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(logs["batch_loss"])
            self.ends.append(time.perf_counter())

    problem = np.load(args.problem)
    x_train, y_train = problem["x_train"], problem["y_train"]
    batches = problem["batches"][:args.steps]
    steps, batch_size = batches.shape
    base_lr = float(problem["lr"])
    keras.config.set_floatx(str(x_train.dtype))

    rates = [base_lr * 0.1 ** (max(i - 100, 0) // 1000) for i in range(steps)]  # the course's schedule
    changes = [i for i in range(1, steps) if rates[i] != rates[i - 1]]
    if changes:
        values = [ops.convert_to_tensor(r, dtype=keras.config.floatx()) for r in [rates[0]] + [rates[i] for i in changes]]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[i - 1 for i in changes], values=values)
    else:
        schedule = rates[0]

    with keras.device("cpu"):
        hidden = problem["W1"].shape[1]  # the problem's hidden width (W1 is (2, hidden))
        model = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(hidden, activation="relu"), layers.Dense(3)])
        model.layers[0].set_weights([problem["W1"], problem["b1"]])
        model.layers[1].set_weights([problem["W2"], problem["b2"]])
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.0, nesterov=False),
                      loss=loss, metrics=[BatchLoss(loss)])
        steps_per_epoch = len(x_train) // batch_size
        losses, seconds = [], []
        for epoch, start_step in enumerate(range(0, steps, steps_per_epoch)):
            rows = batches[start_step:start_step + steps_per_epoch].reshape(-1)
            history = LossHistory()
            model.fit(x_train[rows], y_train[rows], batch_size=batch_size, initial_epoch=epoch, epochs=epoch + 1,
                      shuffle=False, verbose=0, callbacks=[history])
            seconds += [b - a for a, b in zip(history.ends, history.ends[1:])]
            losses += [float(v) for v in history.losses]
    report("keras", f"{keras.__version__} ({keras.backend.backend()} backend)", seconds, losses)


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
