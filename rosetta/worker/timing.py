"""Step timing inside the worker: warm-up excluded, median and interquartile range of what remains; peak
memory and the threads in effect. Standard library only, because it runs in every backend's environment."""

from __future__ import annotations

import resource
import statistics
import sys


def warmup_steps(steps: int) -> int:
    """Steps left out of steady-state figures: the first 10 %, at least 1 (the first call carries setup,
    tracing and compilation) and at most 50."""
    return min(max(steps // 10, 1), 50) if steps > 1 else 0


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def summarize(step_seconds: list[float], batch_size: int) -> dict:
    """Per-step figures of one training run. step_seconds[0] includes setup and compilation."""
    if not step_seconds:
        return {}
    warm = warmup_steps(len(step_seconds))
    steady = step_seconds[warm:] or step_seconds
    q1, median, q3 = quartiles(steady)
    return {
        "first_step_s": step_seconds[0],
        "warmup_steps": warm,
        "step_median_s": median,
        "step_iqr_s": q3 - q1,
        "step_mean_s": statistics.fmean(steady),
        "samples_per_s": batch_size / median if median > 0 else None,
        "train_s": sum(step_seconds),
    }


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports kilobytes


def threads_in_effect() -> dict:
    """What the process runs with, read back rather than assumed: the CPUs it may run on, its OS threads,
    and the thread count of each OpenMP and OpenBLAS runtime it has loaded (Linux; {} elsewhere)."""
    import ctypes
    import os

    found: dict = {}
    if hasattr(os, "sched_getaffinity"):
        found["cpus"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/self/status") as status:
            found["os_threads"] = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
        with open("/proc/self/maps") as maps:
            libraries = sorted({line.split()[-1] for line in maps if ".so" in line and "/" in line})
    except (OSError, StopIteration):
        return found
    getters = {"omp": ("omp_get_max_threads",),
               "openblas": ("openblas_get_num_threads", "openblas_get_num_threads64_",
                            "scipy_openblas_get_num_threads64_")}
    for path in libraries:
        name = os.path.basename(path)
        kind = ("omp" if any(k in name for k in ("libgomp", "libiomp", "libomp")) else
                "openblas" if "openblas" in name else None)
        if kind is None:
            continue
        try:
            library = ctypes.CDLL(path)  # already loaded: the same handle, nothing initialized again
        except OSError:
            continue
        for symbol in getters[kind]:
            getter = getattr(library, symbol, None)
            if getter is not None:
                getter.restype = ctypes.c_int
                found[name.split(".so")[0]] = getter()
                break
    return found
