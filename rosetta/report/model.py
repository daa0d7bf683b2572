"""The report model: a run's records, judged once, grouped by task, in the registry's order of backends.

Every renderer (terminal, Markdown, HTML, CSV, plots) and every task section reads this model and
nothing else; none judges agreement or orders backends itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rosetta import judge
from rosetta.registry import Registry

DID_NOT_RUN = ("skipped", "unavailable", "not-installed")
FAILED = ("failed", "crashed", "timed-out", "diverged", "lost")
# A cell's timings are not ranked when the machine was busy around it, or when its steps spread more
# than their median (IQR > median): such figures say more about the machine than about the framework.
NOISY_SPREAD = 1.0


def timing_flag(record: dict) -> str:
    """Why a cell's timings should not be trusted, or ""."""
    load = record.get("load") or {}
    flags = []
    if load.get("busy"):
        flags.append(f"busy machine (others took {load.get('others_share', 0):.0%} of a CPU"
                     + (f", steal {load['steal_share']:.0%}" if load.get("steal_share", 0) > 0.01 else "") + ")")
    median, iqr = record.get("step_median_s"), record.get("step_iqr_s")
    if median and iqr is not None and iqr > NOISY_SPREAD * median:
        flags.append(f"spread {iqr / median:.1f}x the median")
    return "; ".join(flags)


@dataclass
class TaskView:
    """One task's part of the report: its records, ordered, each with its judgement."""

    name: str
    task: object  # rosetta.task.Task, or None for a task this installation does not know (an old run)
    records: list
    reference_name: str | None
    registry: Registry
    judgements: dict = field(default_factory=dict)  # id(record) -> Judgement or None
    references: dict = field(default_factory=dict)  # id(record) -> the reference record it was judged against

    def judgement(self, record: dict):
        return self.judgements.get(id(record))

    def reference_for(self, record: dict) -> dict | None:
        return self.references.get(id(record))

    @property
    def ran(self) -> list[dict]:
        return [r for r in self.records if r.get("status") not in DID_NOT_RUN]

    @property
    def finished(self) -> list[dict]:
        return [r for r in self.records if r.get("status") == "ok"]

    @property
    def idle(self) -> list[dict]:
        return [r for r in self.records if r.get("status") in DID_NOT_RUN]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r.get("status") in FAILED]

    def display_name(self, backend: str) -> str:
        known = self.registry.backends.get(backend)
        return known.display_name if known else backend

    def is_reference(self, record: dict) -> bool:
        return judge.is_reference(record, self.reference_name)


@dataclass
class RunReport:
    run_id: str
    records: list
    tasks: list  # TaskView, in the run's order of tasks
    registry: Registry
    frame: pd.DataFrame  # one row per record: the comparison table, every view's columns

    def task(self, name: str) -> TaskView:
        return next(view for view in self.tasks if view.name == name)

    @property
    def reference_name(self) -> str | None:
        return self.tasks[0].reference_name if self.tasks else None


def order_records(records: list[dict], registry: Registry) -> list[dict]:
    """The registry's order of backends (reference first), then the order the run wrote them."""
    position = {id(r): i for i, r in enumerate(records)}
    return sorted(records, key=lambda r: (registry.rank(r.get("backend")), position[id(r)]))


def build(records: list[dict], registry: Registry) -> RunReport:
    reference = registry.reference.name if registry.reference else None
    views = []
    for name in dict.fromkeys(r["task"] for r in records):
        task = registry.tasks.get(name)
        task_records = order_records([r for r in records if r["task"] == name], registry)
        view = TaskView(name, task, task_records, reference, registry)
        if task is not None:
            found = judge.references(task_records, registry.tasks, reference)
            for r in task_records:
                ref = found.get(judge.same_problem(r, task))
                view.references[id(r)] = ref
                view.judgements[id(r)] = judge.judge(r, ref, task, reference)
        views.append(view)
    ordered = [r for view in views for r in view.records]
    return RunReport(run_id=records[0].get("run_id", "") if records else "", records=ordered, tasks=views,
                     registry=registry, frame=frame_of(views))


def frame_of(views: list[TaskView]) -> pd.DataFrame:
    rows = []
    for view in views:
        for r in view.records:
            metrics = r.get("metrics") or {}
            j = view.judgement(r)
            load = r.get("load") or {}
            rows.append({
                "task": r["task"], "backend": r["backend"], "variant": r.get("variant"), "device": r.get("device"),
                "recipe": r.get("recipe"), "precision": r.get("precision"),
                "options": ", ".join(f"{k}={v}" for k, v in judge.options_of(r).items() if k != "data_dir") or None,
                "status": r.get("status"), "verdict": r.get("verdict"),
                "val_accuracy": metrics.get("val_accuracy"), "val_loss": metrics.get("val_loss"),
                "final_loss": metrics.get("final_loss"),
                "agreement": j.verdict if j else None, "max_rel_dev_head": j.head if j else None,
                "max_rel_dev_all": j.whole if j else None, "head_steps": j.steps if j else None,
                "import_s": r.get("import_s"), "first_call_s": r.get("first_call_s"),
                "step_median_ms": _ms(r.get("step_median_s")), "step_iqr_ms": _ms(r.get("step_iqr_s")),
                "compile_s": r.get("compile_s"), "step_cv": r.get("step_cv"), "repeats": r.get("repeats"),
                "threads": r.get("threads"), "timing_flag": timing_flag(r) or None,
                "others_cpu_share": load.get("others_share"),
                "train_s": r.get("train_s"), "run_s": r.get("run_s"), "samples_per_s": r.get("samples_per_s"),
                "peak_rss_mb": _mb(r.get("peak_rss_bytes")), "peak_device_mb": _mb(r.get("peak_device_bytes")),
                "framework_version": r.get("framework_version"), "steps": r.get("steps"), "size": r.get("size"),
                "seed": r.get("seed"), "node": (r.get("node") or {}).get("hostname"),
            })
    return pd.DataFrame(rows)


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def _mb(n):
    return None if n is None else n / 2**20


def loss_deviations(view) -> Iterator[tuple]:
    """Per finished cell of a task that has a loss curve: (record, losses, relative deviation of each loss
    from the reference's at the same step, or None without a reference): Run.curves() and TensorBoard's curves."""
    for r in view.finished:
        losses = r.get("losses")
        if not losses:
            continue
        if view.is_reference(r):
            deviation = np.zeros(len(losses))
        else:
            ref = view.reference_for(r)
            deviation = judge.relative_deviation(losses, ref["losses"]) if ref and ref.get("losses") else None
        yield r, losses, deviation
