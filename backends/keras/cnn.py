"""The CIFAR-10 CNN of the PyTorch tutorial, in Keras 3.

What a Keras user writes: a Sequential model of Conv2D, MaxPooling2D, Flatten and Dense layers, compile()
with a loss and keras.optimizers.SGD, then fit() and predict(). Keras computes images channels-last
(NHWC, Conv2D's default data_format), so the spec's NCHW images and OIHW kernels are converted here, and
back for the Result. The same code runs on the JAX, PyTorch or TensorFlow backend. The convolutions have
6*width and 16*width filters (width 1: the tutorial's), read from the spec's weights.
"""

import keras
import numpy as np
from keras import layers

from tasks.cnn import Result, width_of

from .fit_losses import BatchLoss, LossHistory, timed_losses  # per-step losses and times out of fit()


# The spec's layout is PyTorch's (NCHW images, OIHW kernels, fc1's 16*width*5*5 inputs flattened C, H, W);
# Keras' is channels-last (NHWC images, HWIO kernels, Flatten of a 5x5x(16*width) map gives H, W, C order).
def nchw_to_nhwc(x):
    return x.transpose(0, 2, 3, 1)


def oihw_to_hwio(w):
    return w.transpose(2, 3, 1, 0)


def hwio_to_oihw(w):
    return w.transpose(3, 2, 0, 1)


def fc1_chw_to_hwc(w):
    channels = len(w) // 25  # 16 * width
    return w.reshape(channels, 5, 5, -1).transpose(1, 2, 0, 3).reshape(len(w), -1)


def fc1_hwc_to_chw(w):
    channels = len(w) // 25
    return w.reshape(5, 5, channels, -1).transpose(2, 0, 1, 3).reshape(len(w), -1)


def make_model(problem):
    width = width_of(problem.params)
    model = keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        layers.Conv2D(6 * width, 5, activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(16 * width, 5, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(120, activation="relu", name="fc1"),
        layers.Dense(84, activation="relu", name="fc2"),
        layers.Dense(10, name="fc3"),
    ])
    p = problem.params
    model.get_layer("conv1").set_weights([oihw_to_hwio(p["conv1_w"]), p["conv1_b"]])
    model.get_layer("conv2").set_weights([oihw_to_hwio(p["conv2_w"]), p["conv2_b"]])
    # Dense kernels are (in, out) as in the spec; only fc1's rows follow the other flatten order.
    model.get_layer("fc1").set_weights([fc1_chw_to_hwc(p["fc1_w"]), p["fc1_b"]])
    model.get_layer("fc2").set_weights([p["fc2_w"], p["fc2_b"]])
    model.get_layer("fc3").set_weights([p["fc3_w"], p["fc3_b"]])
    return model


def spec_params(model):
    (c1w, c1b), (c2w, c2b), (f1w, f1b), (f2w, f2b), (f3w, f3b) = (
        model.get_layer(name).get_weights() for name in ("conv1", "conv2", "fc1", "fc2", "fc3"))
    return {"conv1_w": hwio_to_oihw(c1w), "conv1_b": c1b, "conv2_w": hwio_to_oihw(c2w), "conv2_b": c2b,
            "fc1_w": fc1_hwc_to_chw(f1w), "fc1_b": f1b, "fc2_w": f2w, "fc2_b": f2b, "fc3_w": f3w, "fc3_b": f3b}


def notes_for(problem):
    if keras.backend.backend() == "torch" and problem.precision == "float64":
        return ["On PyTorch, Keras computes Dense's matmul and the loss in float32 even in a float64 run (its "
                "type promotion maps float64 to float32 outside TensorFlow, keras-team/keras#23704; the "
                "convolutions stay float64), so this run agrees with the reference only to float32 rounding."]
    return []


def train(problem, device, variant):
    # Keras builds weights, optimizer slots and metrics in floatx: set it before building anything.
    keras.config.set_floatx(problem.precision)
    if keras.backend.backend() == "jax" and problem.precision == "float64":
        import jax
        jax.config.update("jax_enable_x64", True)  # without it JAX silently computes float64 in float32

    # "cpu", not "cpu:0": Keras' torch backend would copy each weight to "cpu:0" and lose its gradient.
    with keras.device("gpu:0" if device == "gpu" else "cpu"):
        model = make_model(problem)
        h = problem.recipe.hyper
        # Keras folds lr into the velocity (v <- 0.9 v - lr g; p <- p + v): PyTorch's steps for a constant lr,
        # up to rounding. The momentum goes in as a numpy float64 (still a Python float): TensorFlow's tf.cast
        # would first make a plain 0.9 a float32 constant, and a float64 run would use 0.8999999761581421.
        optimizer = keras.optimizers.SGD(learning_rate=h["lr"], momentum=np.float64(h["momentum"]))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss, metrics=[BatchLoss(loss)])

        # One fit() per epoch of the spec's batch order; shuffle=False keeps that order.
        per_epoch = problem.steps_per_epoch
        for epoch, start in enumerate(range(0, problem.steps, per_epoch)):
            rows = problem.batches[start:start + per_epoch].reshape(-1)
            history = LossHistory()
            model.fit(nchw_to_nhwc(problem.x_train[rows]), problem.y_train[rows], batch_size=problem.batch_size,
                      initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=0, callbacks=[history])
            yield timed_losses(history)

        test_logits = model.predict(nchw_to_nhwc(problem.x_test), batch_size=problem.eval_batch_size, verbose=0)
    return Result(params=spec_params(model), test_logits=np.asarray(test_logits), layout="NHWC",
                  notes=notes_for(problem))
