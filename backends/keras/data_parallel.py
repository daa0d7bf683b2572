"""Data parallelism in Keras 3: the distribution API, keras.distribution.DataParallel.

What Keras' distribution guide writes: keras.distribution.set_distribution(DataParallel(devices=...)) before
the model is built; then the same Sequential model, compile() and fit() as on one device. Keras places the
weights on every device and splits each batch fit() draws along its first dimension over them; the
gradients' all-reduce is the backend's. The model is the single-device task's (backends/keras/classifier.py,
backends/keras/cnn.py).

Keras 3.15 implements the distribution API on the JAX backend only (keras-jax); on its other backends the
cell is a row that says why.
"""

import os

import keras
import numpy as np
from keras import layers

from tasks.data_parallel import CannotRun, Result, gpus_needed

from . import cnn
from .fit_losses import BatchLoss, LossHistory, timed_losses

GUIDE = "https://keras.io/guides/distribution/"
NOT_ON = {
    "torch": ("Keras 3.15's distribution API has no PyTorch implementation: keras/src/backend/torch has no "
              "distribution_lib, and keras.distribution.list_devices() fails with \"AttributeError: 'NoneType' "
              f"object has no attribute 'list_devices'\" ({GUIDE} runs on JAX); PyTorch's own data parallelism "
              "(DistributedDataParallel) is PyTorch's row"),
    "tensorflow": ("on the TensorFlow backend Keras 3.15's fit() never reads keras.distribution (its "
                   "distribution_lib is a prototype marked 'DO NOT USE', keras/src/backend/tensorflow/"
                   f"distribution_lib.py; {GUIDE} runs on JAX); Keras on TensorFlow distributes through "
                   "tf.distribute.MirroredStrategy, TensorFlow's row"),
}


def classifier_model(problem):
    model = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(12, activation="relu"), layers.Dense(3)])
    model.layers[0].set_weights([problem.params["W1"], problem.params["b1"]])
    model.layers[1].set_weights([problem.params["W2"], problem.params["b2"]])
    return model


def train(problem, device, variant):
    backend = keras.backend.backend()
    if backend != "jax":
        raise CannotRun(NOT_ON.get(backend, f"Keras' distribution API is implemented for JAX only, not {backend}"))
    import jax
    n = problem.replicas
    if device == "gpu":
        gpus_needed(n, len(keras.distribution.list_devices("gpu")))
        devices = keras.distribution.list_devices("gpu")[:n]
    else:
        jax.config.update("jax_num_cpu_devices", n)  # the host split into n devices, before JAX's CPU backend starts
        if hasattr(os, "sched_setaffinity"):  # one CPU per replica for XLA's pool (see backends/jax/data_parallel.py)
            cpus = sorted(os.sched_getaffinity(os.getppid()))
            os.sched_setaffinity(0, cpus[:max(1, min(n * len(os.sched_getaffinity(0)), len(cpus)))])
        devices = keras.distribution.list_devices("cpu")[:n]
    keras.config.set_floatx(problem.precision)
    jax.config.update("jax_enable_x64", problem.precision == "float64")

    # The whole data-parallel part: the weights replicated, each batch split over the devices.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))

    if problem.model == "classifier":
        model, x = classifier_model(problem), problem.x_train
    else:
        model, x = cnn.make_model(problem), cnn.nchw_to_nhwc(problem.x_train)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(learning_rate=problem.hyper["lr"], momentum=np.float64(problem.hyper["momentum"]))
    model.compile(optimizer=optimizer, loss=loss, metrics=[BatchLoss(loss)])

    rows = problem.batches.reshape(-1)  # the global batches in order; fit() splits each over the replicas
    history = LossHistory()
    model.fit(x[rows], problem.y_train[rows], batch_size=problem.batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[history])
    yield timed_losses(history)

    if problem.model == "classifier":
        (W1, b1), (W2, b2) = model.layers[0].get_weights(), model.layers[1].get_weights()
        params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    else:
        params = cnn.spec_params(model)
    kernel = model.layers[0].kernel.value
    mapping = {"replicas": len(kernel.sharding.device_set), "processes": 1, "threads_per_replica": 1,
               "devices": [str(d) for d in devices], "collective": "all-reduce inserted by XLA (JAX backend)",
               "api": "keras.distribution.DataParallel" + (", jax_num_cpu_devices" if device == "cpu" else "")}
    return Result(params=params, mapping=mapping, sync_seconds=None)
