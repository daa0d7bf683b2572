"""TensorFlow: TF2 (GradientTape; the step compiled by tf.function, or eager) and TF1's graph and session."""

NAME = "tensorflow"
DISPLAY_NAME = "TensorFlow"
IMPORT_NAME = "tensorflow"
ENVIRONMENT = "shared"
VARIANTS = {
    "tensorflow": "TF2: GradientTape, the training step compiled into a graph by tf.function",
    "tensorflow-eager": "TF2: the same GradientTape step, run eagerly op by op",
    "tensorflow-v1": "TF1 style through tf.compat.v1: placeholders, optimizer.minimize, Session.run",
}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True
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
    import tensorflow as tf
    if device == "gpu":
        tf.test.experimental.sync_devices()


def set_threads(n):
    import tensorflow as tf
    # Must run before the runtime starts; tf.compat.v1.Session() without a config inherits these too.
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def peak_device_memory(device):
    import tensorflow as tf
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] if device == "gpu" else None
