"""TensorFlow: TF2 (GradientTape; the step compiled by tf.function, or eager) and TF1's graph and session."""

NAME = "tensorflow"
DISPLAY_NAME = "TensorFlow"
IMPORT_NAME = "tensorflow"
ENVIRONMENT = "shared"
VARIANTS = {
    "tensorflow": "TF2: GradientTape, the training step compiled into a graph by tf.function",
    "tensorflow-eager": "TF2: the same GradientTape step, run eagerly op by op",
    "tensorflow-v1": "TF1 style through tf.compat.v1: placeholders, optimizer.minimize, Session.run",
    "tensorflow-loop": "TF2: the whole training loop (tf.range) compiled by one tf.function, losses returned at the end",
}
# Every variant trains the perceptron; the CNN has a compiled and an eager form; tensor-ops and autograd
# are written once, in the default style.
TASK_VARIANTS = {
    "tensor-ops": ["tensorflow"],
    "autograd": ["tensorflow"],
    "cnn": ["tensorflow", "tensorflow-eager"],
    "data-parallel": ["tensorflow"],  # MirroredStrategy around the tf.function step
    "ladder": ["tensorflow"],  # the levels are the recipes (each written as the lecture does)
}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True
# Read when TensorFlow's runtime starts, which may be before set_threads() can still change anything.
THREAD_ENVIRONMENT = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

# Where TensorFlow's own rules give another curve than numpy's, measured (bands: the max relative deviation
# over the 200 steps the report judges, from docs/results/classifier-variants-float64, widened about 3x each
# side so that run-to-run and size-to-size changes stay inside). rosetta/judge.py reads them.
_TF2 = ("tensorflow", "tensorflow-eager", "tensorflow-loop")
DECLARED_DIFFERENCES = [
    {"task": "classifier", "recipes": ("sgd-momentum",), "precisions": ("float64",), "variants": _TF2,
     "why": "Keras' SGD (TF2's optimizer) casts the Python-float momentum to float64 through float32: it steps with "
            "momentum 0.8999999761581421; numpy run with that momentum reproduces the curve",
     "band": (1e-9, 1e-6), "simulation": {"momentum": 0.8999999761581421}},
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": ("tensorflow-v1",),
     "why": "tf.compat.v1.train.AdamOptimizer folds both bias corrections into the step size and adds epsilon to "
            "the uncorrected sqrt(v) (Kingma & Ba's 'epsilon hat' form): its eps acts as eps / sqrt(1 - beta2^t)",
     "band": (1e-6, 2e-4), "simulation": {"adam_epsilon": "hat"}},
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": _TF2,
     "why": "Keras' Adam (TF2's optimizer) uses the 'epsilon hat' form (eps added to the uncorrected sqrt(v)) and, "
            "on TensorFlow, computes the bias corrections' powers through float32 (the epsilon-hat simulation "
            "alone leaves 2e-7): https://github.com/keras-team/keras/blob/v3.15.1/keras/src/optimizers/adam.py",
     "band": (1e-6, 2e-4)},
    # float32: the same "epsilon hat" rule, which numpy reproduces to float32 rounding. Its deviation grows with the
    # steps: 5.5e-6 over 40 steps and 4.3e-5 over 200 at 20,000 points, 2.0e-4 over the first 200 steps of the
    # main job's 200,000 (docs/results/classifier-variants-float32, reports/example-classifier).
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float32",), "variants": "*",
     "why": "TensorFlow's Adam adds epsilon to the uncorrected sqrt(v) (Kingma & Ba's 'epsilon hat' form): its eps acts as "
            "eps / sqrt(1 - beta2^t)",
     "band": (2e-6, 1e-3), "simulation": {"adam_epsilon": "hat"}},
]
# TensorFlow's C++ runtime logs INFO/WARNING lines (CPU features, CUDA probing) unless told otherwise.
# TF 2.21 still prints its "oneDNN custom operations are on" line, logged before absl's logging starts.
VARIANT_ENVIRONMENT = {variant: {"TF_CPP_MIN_LOG_LEVEL": "2"} for variant in VARIANTS}


def version():
    import tensorflow as tf
    return tf.__version__


def gpu_name():
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)


def synchronize(device):
    # Called before the clock is read at every step. On the CPU, eager ops and tf.function calls have run
    # when they return (and the loss is read back with float()): nothing to wait for.
    if device == "gpu":
        import tensorflow as tf
        tf.test.experimental.sync_devices()


def set_threads(n):
    import tensorflow as tf
    # Must run before the runtime starts; tf.compat.v1.Session() without a config inherits these too.
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def threads_in_effect():
    import tensorflow as tf
    # 0 is TensorFlow's "not set": one thread per core, unless TF_NUM_INTRAOP_THREADS says otherwise.
    return {"tensorflow intra-op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tensorflow inter-op": tf.config.threading.get_inter_op_parallelism_threads()}


def peak_device_memory(device):
    import tensorflow as tf
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] if device == "gpu" else None


def build_info():
    import tensorflow as tf
    info = tf.sysconfig.get_build_info()
    return {"CUDA": info.get("cuda_version", "none (CPU build)"), "cuDNN": info.get("cudnn_version", "none")}


def from_numpy(array, device):
    import tensorflow as tf
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        return tf.identity(tf.constant(array))  # tf.constant alone stays on the host


def to_numpy(x):
    return x.numpy()
