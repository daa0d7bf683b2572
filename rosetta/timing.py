"""Step timing: warm-up excluded, median and interquartile range of what remains. Standard library only,
because it runs inside every worker, whatever the backend's environment holds."""

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
