"""Apache MXNet 1.9.1, the last release: imperative NDArray + autograd, and Gluon hybridized into a graph."""

NAME = "mxnet"
DISPLAY_NAME = "MXNet"
IMPORT_NAME = "mxnet"
# MXNet 1.9.1 uses np.bool, which numpy 1.24 removed: it needs a numpy the other backends cannot share.
ENVIRONMENT = "mxnet"
VARIANTS = {
    "mxnet": "imperative: NDArray + autograd by hand, Gluon blocks + gluon.Trainer run op by op",
    "mxnet-hybrid": "the same Gluon network after net.hybridize(): one cached symbolic graph",
}
# Every variant trains the perceptron and the CNN; tensor-ops and autograd are written once, in the default style.
TASK_VARIANTS = {
    "tensor-ops": ["mxnet"],
    "autograd": ["mxnet"],
    "data-parallel": ["mxnet", "mxnet-hybrid"],
    "ladder": ["mxnet"],  # the levels are the recipes (Symbol executors included)
}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True
# MXNet's engine reads its worker count once, at import.
THREAD_ENVIRONMENT = ("MXNET_CPU_WORKER_NTHREADS",)
# Its wheels link GNU's OpenMP and quad-precision runtimes from the system (ldd libmxnet.so).
SYSTEM_REQUIREMENTS = [
    {"library": "libgomp.so.1", "apt": "libgomp1", "why": "MXNet's CPU operators run on GNU OpenMP"},
    {"library": "libquadmath.so.0", "apt": "libquadmath0", "why": "libmxnet.so links GCC's quad-precision library"},
]
# mxnet-cu112, the last CUDA build, needs the CUDA 11.2 runtime and cuDNN 8.
CUDA_IMAGE = "nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04"

# Where MXNet's own kernels give another curve than numpy's, measured (bands: the max relative deviation over
# the 200 steps the report judges, from docs/results/classifier-variants-float64, widened about 3x each side).
_FUSED = ("MXNet's fused update kernels take lr, momentum, the betas, eps and the gradient's rescale factor as "
          "float32 attributes even for float64 weights (0.1 becomes 0.10000000149): "
          "https://mxnet.apache.org/versions/1.9.1/api/python/docs/api/ndarray/op/index.html#mxnet.ndarray.op.sgd_mom_update")
DECLARED_DIFFERENCES = [
    {"task": "classifier", "recipes": ("sgd-momentum",), "precisions": ("float64",), "variants": "*",
     "why": _FUSED, "band": (1e-9, 1e-6)},
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": "*",
     "why": "MXNet's Adam adds eps to the uncorrected sqrt(v) ('epsilon hat': its eps acts as eps / sqrt(1 - beta2^t)); "
            "and " + _FUSED, "band": (1e-6, 2e-4)},
    # The CNN's first 20 steps, from docs/results/cnn-first-steps-float64 (real CIFAR-10) and the tests' small
    # look-alike data: 9.1e-12 to 1.4e-10, by the data and the recipe.
    {"task": "cnn", "recipes": "*", "precisions": ("float64",), "variants": "*", "why": _FUSED,
     "band": (3e-12, 1e-9)},
    # The data-parallel task (against numpy's single device; the same with 1 and 2 replicas, so the optimizer's
    # difference, not the all-reduce's): classifier 5.3e-10 (3 steps, size 2000) to 1.1e-7 (95 steps, size
    # 50,000); the CNN's first 20 steps 9.1e-12 (real CIFAR-10) to 2.4e-11 (the tests' look-alike data).
    {"task": "data-parallel", "recipes": ("classifier",), "precisions": ("float64",), "variants": "*",
     "why": _FUSED, "band": (1.5e-10, 3.5e-7)},
    {"task": "data-parallel", "recipes": ("cnn",), "precisions": ("float64",), "variants": "*",
     "why": _FUSED, "band": (3e-12, 7e-11)},
    # float32: the same "epsilon hat" rule, which numpy reproduces to float32 rounding. Its deviation grows with the
    # steps: 5.5e-6 over 40 steps and 4.3e-5 over 200 at 20,000 points, 2.0e-4 over the first 200 steps of the
    # main job's 200,000 (docs/results/classifier-variants-float32, reports/example-classifier).
    {"task": "classifier", "recipes": ("adam",), "precisions": ("float32",), "variants": "*",
     "why": "MXNet's Adam adds epsilon to the uncorrected sqrt(v) (Kingma & Ba's 'epsilon hat' form): its eps acts as "
            "eps / sqrt(1 - beta2^t)",
     "band": (2e-6, 1e-3), "simulation": {"adam_epsilon": "hat"}},
]


def version():
    import mxnet
    return mxnet.__version__


def gpu_name():
    import mxnet as mx
    try:
        if mx.context.num_gpus() == 0:
            return None
    except mx.base.MXNetError:  # a CUDA build on a machine without a usable driver
        return None
    # MXNet has no call that names a device; ask the driver, or fall back to a generic name.
    import subprocess
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "--id=0"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        names = ""
    return names.splitlines()[0] if names else "GPU 0"


def synchronize(device):
    # MXNet's engine runs ops asynchronously on every device, the CPU included: asscalar() waits for the
    # loss only, while the step's updates may still be queued. The worker waits for all before each clock read.
    import mxnet as mx
    mx.nd.waitall()


def set_threads(n):
    # MXNet reads OMP_NUM_THREADS (threads per operator) and MXNET_CPU_WORKER_NTHREADS (engine workers)
    # when it loads; the worker sets both before the import. This also resets the OpenMP count.
    import ctypes
    import mxnet as mx
    mx.base.check_call(mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(n)))


def threads_in_effect():
    import os
    # MXNet has no getter; its engine read MXNET_CPU_WORKER_NTHREADS at start-up (default 1). The OpenMP
    # threads per operator are read back from libgomp by the worker.
    return {"mxnet engine workers": int(os.environ.get("MXNET_CPU_WORKER_NTHREADS", 1))}


def peak_device_memory(device):
    if device != "gpu":
        return None
    import mxnet as mx
    # MXNet keeps no peak counter. Its pooled allocator keeps what it once allocated, so the memory
    # in use on the device at the end (CUDA context and other processes included) approximates the peak.
    free, total = mx.context.gpu_memory_info(0)
    return total - free


def build_info():
    import mxnet as mx
    features = mx.runtime.Features()
    return {name: "yes" if features.is_enabled(name) else "no" for name in ("CUDA", "CUDNN", "MKLDNN")}


def from_numpy(array, device):
    import mxnet as mx
    # nd.array makes float32 unless told the dtype
    return mx.nd.array(array, ctx=mx.gpu(0) if device == "gpu" else mx.cpu(), dtype=array.dtype)


def to_numpy(x):
    return x.asnumpy()
