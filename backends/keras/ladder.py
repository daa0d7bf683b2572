"""Lecture 4's ladder in Keras 3, backend-neutral: variant "keras" runs it on the default backend
(TensorFlow here), "keras-jax" on JAX (`--backend keras-jax`); not on PyTorch, whose float64 Dense computes in
float32 (keras-team/keras#23704). Keras' own levels: gradients by hand in keras.ops, the backend-neutral
NumPy-like API; a model class of one's own (a keras.Model subclass); and the lecture's last slide,
Sequential + compile() + fit(), "Keras can handle the training loop for you!".

Keras 3 takes no gradient outside fit(): a loop of one's own needs the backend's gradient API (the lecture's
Keras slide uses tf.GradientTape), so the autograd, custom-function, layers and optimizer levels are skipped
rows naming where that code is. Keras' predefined losses average over the outputs; the sum of squared errors
is a Loss of one's own whose reduction is "sum".
"""

import time

import keras
from keras import layers, ops

from tasks.ladder import CannotRun, Chunk, Result

_GRADIENTS = ("Keras 3 has no gradient API of its own outside fit(): a loop of one's own takes the backend's "
              "(tf.GradientTape, jax.grad, torch's backward), as the lecture's Keras slide does with "
              "tf.GradientTape")
CLOSEST = {
    "autograd": _GRADIENTS + "; see the TensorFlow and JAX columns",
    "custom-function": "keras.ops.custom_gradient gives a function its own gradient, but only the backend's "
                       "autograd or fit() ever takes it; " + _GRADIENTS,
    "layers": "Keras layers with the update by hand need the backend's gradients: " + _GRADIENTS
              + "; the TensorFlow column's layers level is that slide",
    "optimizer": "keras.optimizers.SGD.apply(grads) needs the backend's gradients: " + _GRADIENTS
                 + "; the TensorFlow column's optimizer level is that slide",
    "graph": "Keras has no graph API of its own; closest: the backend's compilation of fit()'s train step "
             "(tf.function on TensorFlow, jax.jit on JAX)",
}


def setup(problem):
    # Keras builds weights, optimizer slots and metrics in floatx: set it before building anything.
    keras.config.set_floatx(problem.precision)
    if keras.backend.backend() == "jax" and problem.precision == "float64":
        import jax
        jax.config.update("jax_enable_x64", True)  # without it JAX silently computes float64 in float32


def by_hand(problem, device):
    setup(problem)
    x, y = ops.convert_to_tensor(problem.x), ops.convert_to_tensor(problem.y)
    w1, w2 = keras.Variable(problem.w1), keras.Variable(problem.w2)
    learning_rate = problem.lr
    for t in range(problem.steps):
        h = ops.matmul(x, w1)
        h_relu = ops.maximum(h, 0)
        y_pred = ops.matmul(h_relu, w2)
        loss = ops.sum((y_pred - y) ** 2)

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = ops.matmul(ops.transpose(h_relu), grad_y_pred)
        grad_h_relu = ops.matmul(grad_y_pred, ops.transpose(w2))
        grad_h = ops.where(h < 0, 0, grad_h_relu)
        grad_w1 = ops.matmul(ops.transpose(x), grad_h)

        w1.assign(w1 - learning_rate * grad_w1)
        w2.assign(w2 - learning_rate * grad_w2)
        yield float(loss)
    return Result(ops.convert_to_numpy(w1), ops.convert_to_numpy(w2))


class SumSquaredError(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ops.sum((y_pred - y_true) ** 2, axis=-1)


class StepLosses(keras.callbacks.Callback):
    """Each step's loss (logs["loss"]: one batch an epoch, so not a running mean) and its time inside fit()."""

    def __init__(self):
        super().__init__()
        self.losses, self.seconds = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self.began)
        self.losses.append(float(logs["loss"]))


def model_class(problem, device):
    class TwoLayerNet(keras.Model):
        def __init__(self, H, D_out):
            super().__init__()
            self.linear1 = layers.Dense(H, use_bias=False)
            self.linear2 = layers.Dense(D_out, use_bias=False)

        def call(self, x):
            h_relu = ops.maximum(self.linear1(x), 0)
            y_pred = self.linear2(h_relu)
            return y_pred

    setup(problem)
    N, D_in, H, D_out = problem.sizes
    model = TwoLayerNet(H, D_out)
    model(problem.x[:1])  # a first call builds the layers' weights
    model.set_weights([problem.w1, problem.w2])
    optimizer = keras.optimizers.SGD(problem.lr)

    model.compile(loss=SumSquaredError(reduction="sum"), optimizer=optimizer)
    steps = StepLosses()
    model.fit(problem.x, problem.y, epochs=problem.steps, batch_size=N, shuffle=False, verbose=0,
              callbacks=[steps])
    yield Chunk(steps.losses, step_seconds=steps.seconds)
    return Result(*model.get_weights())


def fit(problem, device):
    setup(problem)
    N, D_in, H, D_out = problem.sizes
    model = keras.Sequential()
    model.add(keras.Input(shape=(D_in,)))
    model.add(layers.Dense(H, activation="relu", use_bias=False))
    model.add(layers.Dense(D_out, use_bias=False))
    model.set_weights([problem.w1, problem.w2])
    optimizer = keras.optimizers.SGD(problem.lr)

    model.compile(loss=SumSquaredError(reduction="sum"), optimizer=optimizer)
    steps = StepLosses()
    model.fit(problem.x, problem.y, epochs=problem.steps, batch_size=N, shuffle=False, verbose=0,
              callbacks=[steps])
    yield Chunk(steps.losses, step_seconds=steps.seconds)
    return Result(*model.get_weights())


LEVELS = {"by-hand": by_hand, "model-class": model_class, "fit": fit}


def train(problem, device, variant):
    level = LEVELS.get(problem.recipe.name)
    if level is None:
        raise CannotRun(CLOSEST[problem.recipe.name])
    with keras.device("gpu:0" if device == "gpu" else "cpu"):
        return (yield from level(problem, device))
