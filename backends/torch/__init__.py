"""PyTorch: eager autograd; raw tensors for the course's manual loop, nn.Module + torch.optim otherwise."""

NAME = "torch"
DISPLAY_NAME = "PyTorch"
IMPORT_NAME = "torch"
ENVIRONMENT = "shared"
VARIANTS = {"torch": "eager autograd"}
SUPPORTS_GPU = True
SUPPORTS_FLOAT64 = True


def version():
    import torch
    return torch.__version__


def gpu_name():
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def synchronize(device):
    import torch
    if device == "gpu":
        torch.cuda.synchronize()


def set_threads(n):
    import torch
    torch.set_num_threads(n)


def peak_device_memory(device):
    import torch
    return torch.cuda.max_memory_allocated() if device == "gpu" else None
