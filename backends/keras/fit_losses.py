"""What Keras' fit() does not give per step, for the task modules that train with it (classifier, cnn):
each batch's own loss and the time fit() spends on each batch."""

import time

import keras
from keras import ops

from tasks.protocol import Chunk


class BatchLoss(keras.metrics.Metric):
    """The loss of the latest batch, from the predictions fit() made before that batch's update.

    Keras' logs["loss"] is the running mean over the epoch; recovering each batch from it
    (mean_i * n_i - mean_(i-1) * n_(i-1)) cancels digits as the epoch goes on, so this metric applies
    the compiled loss to the same predictions and reports the batch itself.
    """

    def __init__(self, loss_fn, name="batch_loss"):
        super().__init__(name=name)
        self.loss_fn = loss_fn
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.value.assign(self.loss_fn(y_true, y_pred))

    def result(self):
        return ops.convert_to_tensor(self.value)


class LossHistory(keras.callbacks.Callback):
    """Each batch's loss, and each batch's time as fit() spends it: from the end of the previous batch (for
    the first, from its start) to the end of this one, so fit()'s own work between batches is counted."""

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


def timed_losses(history) -> Chunk:
    """The losses of one fit() call, with each step's seconds: the worker times the steps inside the call
    with these, and counts the rest of the call (fit()'s set-up) apart from the steps."""
    return Chunk(history.losses, step_seconds=[b - a for a, b in zip(history.ends, history.ends[1:])])
