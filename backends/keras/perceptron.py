"""Course 1's perceptron in Keras 3.

What a Keras user writes: a Sequential model of two Dense layers, compile() with the course's cost as a
custom loss and SGD under the course's schedule, then fit() with batch_size=1, one sample a step. The
parameter norm after each step comes from a callback, computed with keras.ops on the model's weights
between steps (outside the step's time). The same code runs on the JAX, PyTorch or TensorFlow backend.
"""

import time

import keras
import numpy as np
from keras import layers, ops

from tasks.perceptron import Chunk, Result


def sum_squared(y_true, y_pred):
    """The course's cost, (sum of the outputs)^2; Keras' loss signature wants a target, which it ignores."""
    return ops.sum(y_pred, axis=-1) ** 2


class BatchCost(keras.metrics.Metric):
    """The cost of the latest sample, from fit()'s forward pass before the update (logs["loss"] is the
    running mean over the epoch)."""

    def __init__(self, name="cost"):
        super().__init__(name=name)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true, y_pred, sample_weight=None):
        # The batch holds one sample. Not ops.mean: on JAX, Keras 3.15 computes the mean of float64 values in
        # float32 (its type promotion maps 64-bit to 32-bit dtypes, keras-team/keras#23704).
        self.value.assign(ops.sum(sum_squared(y_true, y_pred)))

    def result(self):
        return ops.convert_to_tensor(self.value)


class Recorder(keras.callbacks.Callback):
    """Each step's cost, its time, and the parameter norm after its update. The time runs from
    on_train_batch_begin to on_train_batch_end (fetching the sample, the train step, reading the logs back):
    the norm is computed after it, between steps, so that the step time stays fit()'s own."""

    def __init__(self):
        super().__init__()
        self.costs, self.norms, self.step_seconds = [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.step_seconds.append(time.perf_counter() - self.began)
        self.costs.append(logs["cost"])
        # On JAX, self.model first writes fit()'s current weights back into the model's variables.
        weights = self.model.trainable_weights
        self.norms.append(ops.sqrt(sum(ops.sum(ops.square(w)) for w in weights)))  # kept as tensors


def timed_costs(recorder) -> Chunk:
    """The costs of one fit() call, with each step's seconds (the worker counts the rest of the call,
    fit()'s set-up and the norms, apart from the steps)."""
    return Chunk(recorder.costs, step_seconds=recorder.step_seconds)


def course_schedule(problem):
    """The course's step decay as Keras' piecewise-constant schedule, its values taken from the spec."""
    rates = [problem.learning_rate(i) for i in range(problem.steps)]
    changes = [i for i in range(1, problem.steps) if rates[i] != rates[i - 1]]
    if not changes:  # a short run that ends before the first decay
        return rates[0]
    # Typed values: TensorFlow would turn a Python 0.001 into a float32 constant, even in a float64 run.
    values = [ops.convert_to_tensor(rate, dtype=keras.config.floatx()) for rate in
              [rates[0]] + [rates[i] for i in changes]]
    # PiecewiseConstantDecay uses values[k] while step <= boundaries[k]; Keras counts steps from 0.
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[i - 1 for i in changes], values=values)


def notes_for(problem):
    notes = ["Keras has no hand-written loop: fit() with batch_size=1 runs the course's steps and "
             "keras.optimizers.SGD applies the update, with the course's schedule as a PiecewiseConstantDecay.",
             "The parameter norm comes from a callback between fit()'s steps (fit() offers no hook inside its "
             "train step that sees the updated weights on every backend), so Keras' step time, unlike the "
             "other frameworks', leaves the norm's few operations out."]
    if keras.backend.backend() == "torch" and problem.precision == "float64":
        notes.append("On PyTorch, Keras computes Dense's matmul in float32 even in a float64 run "
                     "(keras-team/keras#23704), so this run agrees with the reference only to float32 rounding.")
    return notes


def train(problem, device, variant):
    # Keras builds weights, optimizer slots and metrics in floatx: set it before building anything.
    keras.config.set_floatx(problem.precision)
    if keras.backend.backend() == "jax" and problem.precision == "float64":
        import jax
        jax.config.update("jax_enable_x64", True)  # without it JAX silently computes float64 in float32

    # "cpu", not "cpu:0": Keras' torch backend would copy each weight to "cpu:0" and lose its gradient.
    with keras.device("gpu:0" if device == "gpu" else "cpu"):
        model = keras.Sequential([
            keras.Input(shape=(problem.samples.shape[1],)),
            layers.Dense(32, activation="relu"),
            layers.Dense(32),
        ])
        # Dense kernels are (in, out), the transpose of the course's theta (out, in).
        p = problem.params
        model.layers[0].set_weights([p["theta1"].T, p["bias1"]])
        model.layers[1].set_weights([p["theta2"].T, p["bias2"]])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=course_schedule(problem)),
                      loss=sum_squared, metrics=[BatchCost()])

        recorder = Recorder()
        targets = np.zeros((problem.steps, 32), dtype=problem.precision)  # unused by the cost
        model.fit(problem.samples, targets, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
        yield timed_costs(recorder)
        norms = ops.convert_to_numpy(ops.stack(recorder.norms))

    (theta1, bias1), (theta2, bias2) = model.layers[0].get_weights(), model.layers[1].get_weights()
    return Result(params={"theta1": theta1.T, "bias1": bias1, "theta2": theta2.T, "bias2": bias2},
                  param_norms=norms.tolist(), notes=notes_for(problem))
