"""Keras 3: a Sequential model trained with compile() and fit(), on the JAX, PyTorch or TensorFlow backend."""

NAME = "keras"
DISPLAY_NAME = "Keras"
IMPORT_NAME = "keras"
ENVIRONMENT = "shared"
VARIANTS = {
    "keras": "compile() + fit() on the environment's Keras backend (KERAS_BACKEND, else Keras' default)",
    "keras-jax": "compile() + fit() on the JAX backend (jit-compiled train step)",
    "keras-torch": "compile() + fit() on the PyTorch backend (eager train step)",
    "keras-tensorflow": "compile() + fit() on the TensorFlow backend (tf.function train step)",
}
# tensor-ops and cnn are written once for Keras and run on any of its backends (keras-torch computes some
# float64 ops in float32: DECLARED_DIFFERENCES). autograd is not Keras' own API (see tasks/autograd.py).
TASK_VARIANTS = {
    "tensor-ops": ["keras", "keras-jax", "keras-tensorflow"],
    "ladder": ["keras", "keras-jax"],  # the levels are the recipes (not keras-torch: #23704)
}
VARIANT_ENVIRONMENT = {
    "keras-jax": {"KERAS_BACKEND": "jax"},
    "keras-torch": {"KERAS_BACKEND": "torch"},
    "keras-tensorflow": {"KERAS_BACKEND": "tensorflow"},
}
DOES_NOT_IMPLEMENT = {
    "autograd": "Keras 3 has no autograd API of its own: its gradients come from the backend framework it runs on "
                "(TensorFlow's GradientTape, JAX's grad, PyTorch's backward), whose columns these are.",
}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True
# On its TensorFlow backend, read when TensorFlow's runtime starts (before set_threads() can change it).
THREAD_ENVIRONMENT = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
# Where Keras' own rules give another curve than numpy's, measured (bands: the max relative deviation over
# the 200 steps the report judges, from docs/results/classifier-variants-float64, widened about 3x each side).
_ON_TF = ("keras", "keras-tensorflow")  # Keras' default backend here is TensorFlow
_TORCH_FLOAT32 = ("Keras 3.15.1 on PyTorch computes Dense's matmul and the loss's batch mean in float32 even in a "
                  "float64 run, so its curve differs from the first forward pass: "
                  "https://github.com/keras-team/keras/issues/23704")
DECLARED_DIFFERENCES = [
    {"task": "classifier", "recipes": ("manual-sgd", "sgd-momentum", "adadelta"), "precisions": ("float64",),
     "variants": ("keras-torch",), "why": _TORCH_FLOAT32, "band": (1e-9, 1e-6), "from_first_step": True},
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": ("keras-torch",),
     "why": _TORCH_FLOAT32 + "; and Keras' Adam adds epsilon to the uncorrected sqrt(v) ('epsilon hat')",
     "band": (1e-6, 2e-4), "from_first_step": True},
    {"task": "perceptron", "recipes": "*", "precisions": ("float64",), "variants": ("keras-torch",),
     "why": _TORCH_FLOAT32, "band": (3e-11, 3e-9), "from_first_step": True},
    {"task": "classifier", "recipes": ("sgd-momentum",), "precisions": ("float64",), "variants": _ON_TF,
     "why": "On TensorFlow, Keras' SGD casts the Python-float momentum to float64 through float32: it steps with "
            "momentum 0.8999999761581421; numpy run with that momentum reproduces the curve",
     "band": (1e-9, 1e-6), "simulation": {"momentum": 0.8999999761581421}},
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": ("keras-jax",),
     "why": "Keras' Adam folds both bias corrections into the step size and adds epsilon to the uncorrected "
            "sqrt(v) (Kingma & Ba's 'epsilon hat' form): its eps acts as eps / sqrt(1 - beta2^t)",
     "band": (1e-6, 2e-4), "simulation": {"adam_epsilon": "hat"}},
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": _ON_TF,
     "why": "Keras' Adam uses the 'epsilon hat' form and, on TensorFlow, computes the bias corrections' powers "
            "through float32 (the epsilon-hat simulation alone leaves 2e-7): "
            "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/optimizers/adam.py",
     "band": (1e-6, 2e-4)},
    {"task": "cnn", "recipes": "*", "precisions": ("float64",), "variants": ("keras-torch",),
     "why": _TORCH_FLOAT32, "band": (1e-8, 3e-7), "from_first_step": True},
    # float32: the same "epsilon hat" rule, which numpy reproduces to float32 rounding. Its deviation grows with the
    # steps: 5.5e-6 over 40 steps and 4.3e-5 over 200 at 20,000 points, 2.0e-4 over the first 200 steps of the
    # main job's 200,000 (docs/results/classifier-variants-float32, reports/example-classifier).
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float32",), "variants": "*",
     "why": "Keras's Adam adds epsilon to the uncorrected sqrt(v) (Kingma & Ba's 'epsilon hat' form): its eps acts as "
            "eps / sqrt(1 - beta2^t)",
     "band": (2e-6, 1e-3), "simulation": {"adam_epsilon": "hat"}},
]


def _backend():
    import keras
    return keras.backend.backend()


def version():
    import importlib
    import keras
    backend = keras.backend.backend()  # the three backends are named after their framework's module
    framework = importlib.import_module(backend)
    return f"{keras.__version__} ({backend} backend, {backend} {framework.__version__})"


def gpu_name():
    backend = _backend()
    if backend == "jax":
        import jax
        try:
            return jax.devices("gpu")[0].device_kind
        except RuntimeError:  # no GPU platform in this jaxlib, or no device
            return None
    if backend == "torch":
        import torch
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return None


def synchronize(device):
    if device != "gpu":
        return  # every backend computes synchronously enough on the CPU once a loss is read back
    backend = _backend()
    if backend == "jax":
        import jax
        for array in jax.live_arrays():  # JAX has no device-wide barrier: wait for every live result
            array.block_until_ready()
    elif backend == "torch":
        import torch
        torch.cuda.synchronize()
    elif backend == "tensorflow":
        import tensorflow as tf
        tf.test.experimental.sync_devices()


def set_threads(n):
    backend = _backend()
    if backend == "torch":
        import torch
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # only settable before torch's first parallel work
            pass
    elif backend == "tensorflow":
        import tensorflow as tf
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:  # TensorFlow's runtime already started: it read TF_NUM_INTRAOP_THREADS instead
            pass
    elif backend == "jax":
        # XLA has no thread setting: its CPU pool is sized from the CPUs the process may run on when its
        # client starts, so pin this process to n of them first (as backends/jax does).
        import os
        if hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            if 0 < n < len(cpus):
                os.sched_setaffinity(0, cpus[:n])


def threads_in_effect():
    backend = _backend()
    if backend == "torch":
        import torch
        return {"torch intra-op": torch.get_num_threads(), "torch inter-op": torch.get_num_interop_threads()}
    if backend == "tensorflow":
        import tensorflow as tf
        return {"tensorflow intra-op": tf.config.threading.get_intra_op_parallelism_threads(),
                "tensorflow inter-op": tf.config.threading.get_inter_op_parallelism_threads()}
    return {}  # JAX: the worker records the CPUs the process may run on, which size XLA's pool


def peak_device_memory(device):
    if device != "gpu":
        return None
    backend = _backend()
    if backend == "jax":
        import jax
        stats = jax.devices("gpu")[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    if backend == "torch":
        import torch
        return torch.cuda.max_memory_allocated()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    return None


def from_numpy(array, device):
    import keras
    if _backend() == "jax" and array.dtype.itemsize == 8:  # JAX makes float64 float32 without x64
        import jax
        jax.config.update("jax_enable_x64", True)
    # Keras places tensors on its backend's default device (the GPU where one is visible).
    return keras.ops.convert_to_tensor(array, dtype=str(array.dtype))


def to_numpy(x):
    import keras
    return keras.ops.convert_to_numpy(x)
