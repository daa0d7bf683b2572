"""Judging agreement with the reference, and the identity of a cell: the one module every view uses.

The report (terminal, Markdown, HTML, CSV), `rosetta compare`, `rosetta check` and the tests all call
`judge()`; none computes a verdict of its own, so every view shows the same one.

How a record is judged against the reference backend's record of the same problem (same_problem()):

- no verdict when the cell did not finish ("ok"), or when its curve has the wrong length (fewer values than
  the steps judged, or, when the whole run is judged, not as many as the reference's);
- the relative deviation |x - ref| / |ref| of the task's series (the losses, or AGREEMENT_SERIES), step by
  step; "head" is its maximum over the steps judged (AGREEMENT_STEPS, else all), "whole" over every step
  both curves have;
- a deviation beyond the tolerance at the first step, before any update ran, is never excused by a declared
  difference about an update rule: it is a different starting point, or a loss read at the wrong time
  ("DIFFERS at step 0"); only a difference declared with from_first_step (the forward pass itself differs)
  covers it;
- with a declared difference for the cell (rosetta/backend.py, DECLARED_DIFFERENCES), its measured band
  (low, high) decides, whatever the tolerance: head inside it, "differs (declared)"; below it, "closer than
  declared" (the framework may have fixed it: the declaration is stale); above it, "DIFFERS". A band may
  reach below the tolerance, where the size of a difference depends on the data (a float32 momentum's
  effect on a CNN's first steps);
- without one: head within the task's tolerance for the precision, "agrees"; beyond it, "DIFFERS".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE = "reference"
AGREES = "agrees"
DECLARED = "differs (declared)"
CLOSER = "closer than declared"
DIFFERS = "DIFFERS"
DIFFERS_AT_START = "DIFFERS at step 0"
NO_REFERENCE = "no reference run"
NO_VERDICT = "no verdict"
# How each verdict reads to a sceptic: fine, a finding, or a problem.
KIND = {REFERENCE: "reference", AGREES: "ok", DECLARED: "declared", CLOSER: "warn", DIFFERS: "bad",
        DIFFERS_AT_START: "bad", NO_REFERENCE: "none", NO_VERDICT: "none"}
START_WHY = ("the curves part before any update ran: a different starting point (weights, data, the loss's "
             "reduction) or a loss read at the wrong time (after the optimizer's step)")

# The fields that make a cell what it is; the task's options are added from the record's "options".
CELL_FIELDS = ("task", "backend", "variant", "device", "recipe", "precision", "size", "seed", "steps", "lr")
# And what else changes its timings: compared runs must agree on these too.
TIMING_FIELDS = ("threads", "cells_per_node")
# Task options of records written before options were a dict of their own.
LEGACY_OPTIONS = ("epochs", "batch_size", "data_dir")


def options_of(record: dict) -> dict:
    """The task options of a record (or of a planned cell's dict)."""
    options = record.get("options")
    if isinstance(options, dict):
        return options
    return {k: record[k] for k in LEGACY_OPTIONS if record.get(k) is not None}


def field_of(record: dict, name: str):
    """A record's field, or one of its task options (SAME_PROBLEM may name either)."""
    if name in record:
        return record[name]
    return options_of(record).get(name)


def _frozen(options: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in options.items() if k != "data_dir" and v is not None))


def cell_key(record: dict) -> tuple:
    """What the cell computed: the same key means the same problem run by the same code on the same device."""
    return tuple(record.get(k) for k in CELL_FIELDS) + (_frozen(options_of(record)),)


def timing_key(record: dict) -> tuple:
    """cell_key plus what changes a timing without changing the result (the thread count, node sharing)."""
    return cell_key(record) + tuple(record.get(k) for k in TIMING_FIELDS)


def cell_name(record: dict) -> str:
    """task/variant/recipe/precision/device[/option=value...]: how people name a cell."""
    name = record.get("cell") or "/".join(str(record.get(k)) for k in ("task", "variant", "recipe", "precision",
                                                                         "device"))
    return name


def relative_deviation(values, reference) -> np.ndarray:
    n = min(len(values), len(reference))
    a, b = np.asarray(values[:n], dtype=np.float64), np.asarray(reference[:n], dtype=np.float64)
    return np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)


def series(record: dict, task) -> list | None:
    """The curve the task compares: the losses, or the series its AGREEMENT_SERIES names in report_data."""
    if task is None or task.agreement_series == "losses":
        return record.get("losses")
    return (record.get("report_data") or {}).get(task.agreement_series)


def same_problem(record: dict, task) -> tuple:
    return (record.get("task"),) + tuple(str(field_of(record, k)) for k in task.same_problem)


def is_reference(record: dict, reference_name: str | None) -> bool:
    if "reference" in record:
        return bool(record["reference"])
    return record.get("backend") == reference_name


def references(records: list[dict], tasks: dict, reference_name: str | None) -> dict:
    """same_problem key -> the reference backend's finished CPU record of that problem."""
    found = {}
    for r in records:
        task = tasks.get(r.get("task"))
        if task is not None and is_reference(r, reference_name) and r.get("status") == "ok" \
                and r.get("device") == "cpu":
            found.setdefault(same_problem(r, task), r)
    return found


@dataclass(frozen=True)
class Judgement:
    verdict: str
    head: float | None = None  # max relative deviation over the steps judged
    whole: float | None = None  # over every step both curves have
    steps: int | None = None  # how many steps were judged
    tolerance: float | None = None
    band: tuple | None = None
    why: str = ""  # the declared reason, or what the verdict means
    first_step: int | None = None  # the first step beyond the tolerance

    @property
    def kind(self) -> str:
        return KIND.get(self.verdict, "bad")


def declared_difference(record: dict) -> dict | None:
    """The declared difference that covers this cell, from the declarations the record carries (what the
    backend declared when it ran, so that a report rebuilt later judges the run as it was)."""
    for entry in record.get("declared_differences") or []:
        if _matches(entry, record):
            return entry
    return None


def _matches(entry: dict, record: dict) -> bool:
    def holds(key, value):
        allowed = entry.get(key, "*")
        return allowed == "*" or value in allowed
    return (entry.get("task") == record.get("task") and holds("recipes", record.get("recipe"))
            and holds("precisions", record.get("precision")) and holds("variants", record.get("variant")))


def judge(record: dict, reference: dict | None, task, reference_name: str | None = None) -> Judgement | None:
    """The record's agreement with the reference record of the same problem; None when there is nothing to
    judge (the cell did not run, or the task compares no series)."""
    if record.get("status") != "ok":
        return None
    if is_reference(record, reference_name):
        return Judgement(REFERENCE)
    mine = series(record, task)
    if not mine:
        return None
    if reference is None or not series(reference, task):
        return Judgement(NO_REFERENCE)
    theirs = series(reference, task)
    window = task.agreement_steps
    if window is not None:
        if len(mine) < min(window, len(theirs)):
            return Judgement(NO_VERDICT, why=f"{len(mine)} values, {min(window, len(theirs))} needed")
        judged = min(window, len(theirs))
    else:
        if len(mine) != len(theirs):
            return Judgement(NO_VERDICT, why=f"{len(mine)} values, the reference has {len(theirs)}")
        judged = len(mine)
    if task.agreement_series == "losses" and record.get("steps") not in (None, len(mine)):
        return Judgement(NO_VERDICT, why=f"{len(mine)} losses for {record['steps']} steps")
    deviation = relative_deviation(mine, theirs)
    head, whole = float(deviation[:judged].max()), float(deviation.max())
    tolerance = task.agreement_tolerance.get(record.get("precision"))
    figures = {"head": head, "whole": whole, "steps": judged, "tolerance": tolerance}
    if tolerance is None:
        return Judgement(NO_VERDICT, why="the task states no tolerance for this precision", **figures)
    beyond = deviation[:judged] > tolerance
    first = int(beyond.argmax()) if beyond.any() else None
    figures["first_step"] = first
    declared = declared_difference(record)
    band = tuple(declared["band"]) if declared else None
    why = declared.get("why", "") if declared else ""
    if first == 0 and not (declared and declared.get("from_first_step")):
        return Judgement(DIFFERS_AT_START, why=START_WHY, **figures)
    if declared is None:
        return Judgement(AGREES if head <= tolerance else DIFFERS, **figures)
    low, high = band
    if head < low:
        return Judgement(CLOSER, band=band, why=f"declared {low:.1e} to {high:.1e}: {why}", **figures)
    if head > high:
        return Judgement(DIFFERS, band=band, why=f"above the declared band {low:.1e} to {high:.1e} ({why})",
                         **figures)
    return Judgement(DECLARED, band=band, why=why, **figures)
