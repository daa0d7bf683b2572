"""PyTorch: eager autograd (raw tensors for the course's manual loop, nn.Module + torch.optim otherwise), and
the same step compiled whole by torch.compile."""

NAME = "torch"
DISPLAY_NAME = "PyTorch"
IMPORT_NAME = "torch"
ENVIRONMENT = "shared"
VARIANTS = {
    "torch": "eager autograd",
    "torch-compile": "the whole step (torch.func gradients, the update) compiled into one graph by torch.compile",
}
# Every variant trains the perceptron; the other new tasks are written once, in the framework's default style.
TASK_VARIANTS = {
    "tensor-ops": ["torch"],
    "autograd": ["torch"],
    "cnn": ["torch"],
    "data-parallel": ["torch"],  # DistributedDataParallel, in the eager style
    "ladder": ["torch"],  # the levels are the recipes: one column, eager as the lecture
}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True
# Installed before the others: with the pinned CPU build in place, no other package pulls a CUDA build of torch.
SETUP_FIRST = True


def version():
    import torch
    return torch.__version__


def gpu_name():
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def synchronize(device):
    # The worker calls this before reading the clock at every step: on the CPU, where each op has run when
    # it returns, it costs one comparison.
    if device == "gpu":
        import torch
        torch.cuda.synchronize()


def set_threads(n):
    import torch
    torch.set_num_threads(n)  # intra-op: its OpenMP pool (and OMP_NUM_THREADS, set by the worker)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # settable only before torch's first inter-op parallel work
        pass


def threads_in_effect():
    import torch
    return {"torch intra-op": torch.get_num_threads(), "torch inter-op": torch.get_num_interop_threads()}


def peak_device_memory(device):
    import torch
    return torch.cuda.max_memory_allocated() if device == "gpu" else None


def build_info():
    import torch
    return {"CUDA": torch.version.cuda or "none (CPU build)",
            "cuDNN": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none"}


def from_numpy(array, device):
    import torch
    return torch.from_numpy(array).to("cuda" if device == "gpu" else "cpu")


def to_numpy(x):
    return x.detach().cpu().numpy()
