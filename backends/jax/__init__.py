"""JAX: a pure loss function, jax.value_and_grad, optax; the step jitted, eager, or the whole loop scanned."""

NAME = "jax"
DISPLAY_NAME = "JAX"
IMPORT_NAME = "jax"
ENVIRONMENT = "shared"
VARIANTS = {
    "jax": "jax.value_and_grad, the step compiled with jax.jit",
    "jax-nojit": "the same step without jit, dispatched op by op",
    "jax-scan": "the whole training loop compiled as one jax.lax.scan (its losses come back at the end)",
}
# Every variant trains the perceptron; the CNN has a compiled and an eager form; tensor-ops and autograd
# are written once, in the default style.
TASK_VARIANTS = {
    "tensor-ops": ["jax"],
    "autograd": ["jax"],
    "cnn": ["jax", "jax-nojit"],
    "data-parallel": ["jax"],  # the sharding API needs jax.jit
    "ladder": ["jax"],  # the levels are the recipes, each step under jax.jit
}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True  # through jax_enable_x64, switched on by train() for float64 problems
DEVICE_ENVIRONMENT = {
    # A CPU cell must not start CUDA: JAX would reserve most of a GPU's memory at its first op.
    "cpu": {"JAX_PLATFORMS": "cpu"},
    # Allocate on demand, so that the peak JAX reports is what the training needed, not a reservation.
    "gpu": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
}


def version():
    import jax
    return jax.__version__


def _gpu():
    import jax
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:  # no GPU backend: a CPU-only jaxlib, or no device visible
        return None


def gpu_name():
    gpu = _gpu()
    return gpu.device_kind if gpu is not None else None


def synchronize(device):
    import jax
    # JAX dispatches asynchronously, on the CPU too: wait for every array still being computed.
    for array in jax.live_arrays():
        array.block_until_ready()


def step_barrier(device):
    """Nothing more after a step: its loss, read back with float(), was waited for, and in a jitted step
    (jax, jax-scan) the XLA execution that produced the loss produced the new parameters too, so they are
    ready with it. Waiting on every live array instead (synchronize) measured 7 us a step on this project's
    machine (60.5 against 53.6 us for the course's step), 13 % of what is being measured. jax-nojit's last
    ops of a step may still be queued when its loss is read; the next step waits for them, so each
    steady-state step still holds one step's work."""


def set_threads(n):
    """XLA has no thread-count setting: its CPU client sizes its thread pool from the CPUs the process
    may run on when the client is created (at the first op; XLA_FLAGS' --xla_cpu_multi_thread_eigen=false
    no longer changes that). So restrict the affinity of this thread, which creates the client, to n of
    its CPUs; threads started afterwards inherit it. Must run before the first JAX op."""
    import os
    if not hasattr(os, "sched_setaffinity"):  # macOS, Windows: nothing to do
        return
    cpus = sorted(os.sched_getaffinity(0))
    if 0 < n < len(cpus):
        os.sched_setaffinity(0, cpus[:n])


def threads_in_effect():
    import os
    # XLA's CPU client sizes its thread pool from the CPUs this process may run on (see set_threads).
    return {"xla cpu pool (cpus)": len(os.sched_getaffinity(0))} if hasattr(os, "sched_getaffinity") else {}


def peak_device_memory(device):
    if device != "gpu":
        return None
    gpu = _gpu()
    stats = gpu.memory_stats() if gpu is not None else None
    return stats.get("peak_bytes_in_use") if stats else None


def build_info():
    import jax
    import jaxlib
    return {"jaxlib": jaxlib.__version__, "platforms": ", ".join(sorted({d.platform for d in jax.devices()}))}


def from_numpy(array, device):
    import jax
    if array.dtype.itemsize == 8:  # without x64, JAX silently makes float64 float32 and int64 int32
        jax.config.update("jax_enable_x64", True)
    return jax.device_put(array, _gpu() if device == "gpu" else jax.devices("cpu")[0])


def to_numpy(x):
    import numpy as np
    return np.asarray(x)
