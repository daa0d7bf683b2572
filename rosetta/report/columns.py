"""The comparison table's columns: one definition of each header, format and meaning, for every view."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Column:
    key: str  # the model frame's column
    header: str
    fmt: str | None = None  # str.format pattern for numbers; None: shown as text
    meaning: str = ""


COLUMNS = [
    Column("task", "task"), Column("backend", "backend"), Column("variant", "variant"), Column("device", "device"),
    Column("recipe", "recipe"), Column("precision", "precision"), Column("options", "options"),
    Column("verdict", "verdict", None, "the task's own check of the result: ok, or what is wrong"),
    Column("val_accuracy", "val acc", "{:.2%}", "accuracy on the held-out split after training"),
    Column("val_loss", "val loss", "{:.4f}"),
    Column("final_loss", "last train loss", "{:.4f}"),
    Column("agreement", "vs reference", None, "the curve's agreement with the reference backend's (rosetta/judge.py)"),
    Column("max_rel_dev_head", "rel dev", "{:.1e}", "max relative deviation from the reference over the steps judged"),
    Column("max_rel_dev_all", "rel dev, whole run", "{:.1e}", "the same over every step both curves have"),
    Column("import_s", "import s", "{:.2f}", "the framework's import"),
    Column("first_call_s", "1st call s", "{:.3f}", "setup, tracing or compilation, and the first step (or chunk)"),
    Column("compile_s", "compile s", "{:.3f}", "compilation ahead of training, timed apart from the steps"),
    Column("step_median_ms", "step ms", "{:.3f}", "median step after warm-up"),
    Column("step_iqr_ms", "IQR ms", "{:.3f}", "interquartile range of the steps after warm-up"),
    Column("step_cv", "CV", "{:.1%}", "with --repeats: the spread of the step median across repeated runs"),
    Column("samples_per_s", "samples/s", "{:,.0f}", "batch size over the median step"),
    Column("train_s", "train s", "{:.2f}"),
    Column("run_s", "run s", "{:.1f}", "a task of checks: the time its checks took"),
    Column("peak_rss_mb", "peak RSS MB", "{:.0f}", "the worker's peak resident memory"),
    Column("peak_device_mb", "peak GPU MB", "{:.0f}"),
    Column("timing_flag", "timing", None, "why the timings should not be ranked: a busy machine, or steps that "
                                          "spread more than their median"),
]
BY_KEY = {c.key: c for c in COLUMNS}
ALWAYS_SHOWN = ("task", "backend", "variant", "device", "recipe", "precision", "verdict")
TERMINAL = ("variant", "device", "recipe", "precision", "options", "verdict", "val_accuracy", "agreement",
            "max_rel_dev_head", "step_median_ms", "step_cv", "samples_per_s", "train_s", "run_s", "peak_rss_mb",
            "timing_flag")
MARKDOWN = tuple(c.key for c in COLUMNS if c.key not in ("task", "val_loss", "final_loss", "peak_device_mb"))
HTML = tuple(c.key for c in COLUMNS if c.key != "task")


def formatted(value, column: Column) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return column.fmt.format(value) if column.fmt else str(value)


def display_table(frame: pd.DataFrame, keys=TERMINAL, reference: str | None = None) -> pd.DataFrame:
    """The comparison table as people read it: short headers, rounded numbers, blanks for n/a; a column no
    row has a value for is left out (a task of checks has no steps, a run no repeats)."""
    keys = [k for k in keys if k in frame and (k in ALWAYS_SHOWN or frame[k].notna().any())]
    shown = pd.DataFrame({header(BY_KEY[k], reference): [formatted(v, BY_KEY[k]) for v in frame[k]] for k in keys})
    return shown


def header(column: Column, reference: str | None) -> str:
    if column.key == "agreement" and reference:
        return f"vs {reference}"
    return column.header
