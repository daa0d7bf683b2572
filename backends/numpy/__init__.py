"""numpy, forward and backward written by hand: the reference every other backend is compared to."""

NAME = "numpy"
DISPLAY_NAME = "numpy"
IMPORT_NAME = "numpy"
ENVIRONMENT = "shared"
VARIANTS = {"numpy": "forward and backward by hand, update rules by hand"}
SUPPORTS_GPU = False
SUPPORTS_FLOAT64 = True
REFERENCE = True  # every other backend is compared with this one


def version():
    import numpy
    return numpy.__version__


def gpu_name():
    return None


def synchronize(device):
    pass  # numpy computes eagerly on the CPU


def set_threads(n):
    pass  # the BLAS reads OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, which the worker sets before importing


def peak_device_memory(device):
    return None


def from_numpy(array, device):
    import numpy as np
    return np.array(array, copy=True)


def to_numpy(x):
    import numpy as np
    return np.asarray(x)
