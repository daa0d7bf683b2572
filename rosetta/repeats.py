"""A cell run several times (--repeats), each time in a fresh worker: its figures across the repeats."""

from __future__ import annotations

import statistics

from rosetta.worker.timing import quartiles


def coefficient_of_variation(values: list[float]) -> float | None:
    """Sample standard deviation over mean: the run-to-run spread of a figure. None for fewer than 2 values."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else None


def across_repeats(values: list[float]) -> dict:
    """Median, interquartile range and coefficient of variation of one figure over repeated runs."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "iqr": None, "cv": None, "n": 0}
    q1, median, q3 = quartiles(values)
    return {"median": median, "iqr": q3 - q1, "cv": coefficient_of_variation(values), "n": len(values)}


# Figures of each repeat kept in the merged record as lists, e.g. "repeat_step_median_s".
REPEATED = ("step_median_s", "step_iqr_s", "first_call_s", "first_step_s", "compile_s", "import_s", "train_s",
            "wall_s")


def merge_repeats(records: list[dict]) -> dict:
    """One record for a cell run N times (separate worker processes): the last repeat's record (loss curve,
    metrics), with each repeat's timings as lists, and the headline figures taken across repeats: the
    median of the repeats' step medians, its IQR and coefficient of variation across repeats (the
    run-to-run noise), the median first call and import. A repeat that did not end "ok" is the record."""
    if not records:
        raise ValueError("no records to merge")
    bad = [r for r in records if r.get("status") != "ok"]
    if bad:
        return {**bad[0], "repeats": len(records)}
    merged = {**records[-1], "repeats": len(records)}
    for key in REPEATED:
        if any(r.get(key) is not None for r in records):
            merged[f"repeat_{key}"] = [r.get(key) for r in records]
    step = across_repeats([r.get("step_median_s") for r in records])
    merged.update(step_median_s=step["median"], step_repeat_iqr_s=step["iqr"], step_cv=step["cv"])
    merged["step_iqr_s"] = statistics.median([r.get("step_iqr_s") or 0.0 for r in records])
    for key in ("first_call_s", "first_step_s", "compile_s", "import_s", "train_s"):
        if merged.get(f"repeat_{key}"):
            merged[key] = across_repeats(merged[f"repeat_{key}"])["median"]
    if step["median"] and merged.get("batch_size"):
        merged["samples_per_s"] = merged["batch_size"] / step["median"]
    merged["peak_rss_bytes"] = max((r.get("peak_rss_bytes") or 0 for r in records), default=None) or None
    # the busiest repeat speaks for the cell: one disturbed repeat is enough to doubt the median
    loads = [r["load"] for r in records if r.get("load")]
    if loads:
        merged["load"] = max(loads, key=lambda load: (bool(load.get("busy")), load.get("others_share") or 0.0))
    return merged
