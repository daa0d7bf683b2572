"""The 3-zone classifier in Keras 3.

What a Keras user writes: a Sequential model, compile() with a loss and an optimizer, then fit(). Keras
tutorials have no hand-written update loop, so the course's manual-sgd is keras.optimizers.SGD with the
course's schedule as a LearningRateSchedule. The same code runs on the JAX, PyTorch or TensorFlow backend.
"""

import keras
from keras import layers, ops

from tasks.classifier import Result

from .fit_losses import BatchLoss, LossHistory, timed_losses  # per-step losses and times out of fit()


def course_schedule(problem):
    """The course's step decay as Keras' piecewise-constant schedule, its values taken from the spec."""
    rates = [problem.learning_rate(i) for i in range(problem.steps)]
    changes = [i for i in range(1, problem.steps) if rates[i] != rates[i - 1]]
    if not changes:  # a short run that ends before the first decay
        return rates[0]
    # Typed values: TensorFlow would turn a Python 0.05 into a float32 constant, even in a float64 run.
    values = [ops.convert_to_tensor(rate, dtype=keras.config.floatx()) for rate in
              [rates[0]] + [rates[i] for i in changes]]
    # PiecewiseConstantDecay uses values[k] while step <= boundaries[k]; Keras counts steps from 0.
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[i - 1 for i in changes], values=values)


def make_optimizer(problem):
    h = problem.recipe.hyper
    name = problem.recipe.name
    if name == "manual-sgd":
        return keras.optimizers.SGD(learning_rate=course_schedule(problem), momentum=0.0, nesterov=False)
    if name == "sgd-momentum":
        return keras.optimizers.SGD(learning_rate=h["lr"], momentum=h["momentum"], nesterov=False)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=h["lr"], beta_1=h["beta1"], beta_2=h["beta2"],
                                     epsilon=h["eps"], amsgrad=False)
    if name == "adadelta":
        return keras.optimizers.Adadelta(learning_rate=h["lr"], rho=h["rho"], epsilon=h["eps"])
    raise ValueError(f"no optimizer for recipe {name}")


def notes_for(problem):
    backend = keras.backend.backend()
    float64 = problem.precision == "float64"
    notes = []
    if problem.recipe.name == "manual-sgd":
        notes.append("Keras has no hand-written loop: keras.optimizers.SGD applies the update itself, "
                     "with the course's schedule as a PiecewiseConstantDecay.")
    if problem.recipe.name == "sgd-momentum":
        notes.append("Keras folds the learning rate into the velocity (v <- momentum * v - lr * g; p <- p + v): "
                     "the reference's steps for a constant lr, up to rounding.")
        if backend == "tensorflow" and float64:
            notes.append("On TensorFlow, Keras casts the Python-float momentum to float64 through float32 "
                         "(tf.cast), so this float64 run uses momentum 0.8999999761581421.")
    if problem.recipe.name == "adam":
        notes.append("Keras' Adam adds epsilon to sqrt(v) before bias correction ('epsilon hat'): an effective "
                     "epsilon of eps * sqrt(1 - beta2^t) in the reference's formula.")
        if backend == "tensorflow" and float64:
            notes.append("On TensorFlow, Keras' Adam bias-corrects with beta1 and beta2 cast to float64 through "
                         "float32 (tf.cast), e.g. beta2 = 0.9990000128746033.")
    if backend == "torch" and float64:
        notes.append("On PyTorch, Keras computes matmul and the loss's batch mean in float32 even in a float64 run "
                     "(its type promotion maps float64 to float32 outside TensorFlow, keras-team/keras#23704), "
                     "so this run agrees with the reference only to float32 rounding.")
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
            keras.Input(shape=(2,)),
            layers.Dense(problem.hidden, activation="relu"),
            layers.Dense(3),
        ])
        # Keras' Dense kernels are (in, out), the spec's layout: the weights load as they are.
        model.layers[0].set_weights([problem.params["W1"], problem.params["b1"]])
        model.layers[1].set_weights([problem.params["W2"], problem.params["b2"]])
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=make_optimizer(problem), loss=loss, metrics=[BatchLoss(loss)])

        # One fit() per epoch of the spec's batch order; shuffle=False keeps that order.
        steps_per_epoch = len(problem.x_train) // problem.batch_size
        for epoch, start in enumerate(range(0, problem.steps, steps_per_epoch)):
            rows = problem.batches[start:start + steps_per_epoch].reshape(-1)
            history = LossHistory()
            model.fit(problem.x_train[rows], problem.y_train[rows], batch_size=problem.batch_size,
                      initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=0, callbacks=[history])
            yield timed_losses(history)

        val_logits = model.predict(problem.x_val, batch_size=len(problem.x_val), verbose=0)
    (W1, b1), (W2, b2) = model.layers[0].get_weights(), model.layers[1].get_weights()
    return Result(params={"W1": W1, "b1": b1, "W2": W2, "b2": b2}, val_logits=val_logits,
                  notes=notes_for(problem))
