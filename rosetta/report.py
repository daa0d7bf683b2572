"""Reports of a run, rebuilt from results.jsonl alone: results.csv, report.md, PNG plots, and report.html
(written by rosetta/report_html.py).

Agreement with the numpy reference is judged here, where every backend's loss curve is at hand: each
record is compared with the numpy record of the same task, recipe, precision, size, seed and steps.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta.registry import TASKS
from rosetta.results import read_records

REFERENCE = "numpy"
SAME_PROBLEM = ("task", "recipe", "precision", "size", "seed", "steps")


def _task_constant(task: str, name: str, default):
    module = TASKS.get(task)
    return getattr(importlib.import_module(module), name, default) if module else default


def relative_deviation(losses, reference) -> np.ndarray:
    n = min(len(losses), len(reference))
    a, b = np.asarray(losses[:n], dtype=np.float64), np.asarray(reference[:n], dtype=np.float64)
    return np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)


def series(record: dict) -> list | None:
    """The curve a task compares with numpy's: the losses, or the series its AGREEMENT_SERIES names (kept by
    the worker in report_data, e.g. the perceptron's parameter norms, where the cost itself goes to zero)."""
    name = _task_constant(record["task"], "AGREEMENT_SERIES", "losses")
    if name == "losses":
        return record.get("losses")
    return (record.get("report_data") or {}).get(name)


def series_name(module) -> str:
    name = getattr(module, "AGREEMENT_SERIES", "losses")
    return "loss curve" if name == "losses" else name.replace("_", " ")


def same_problem(record: dict) -> tuple:
    return tuple(record.get(k) for k in _task_constant(record["task"], "SAME_PROBLEM", SAME_PROBLEM))


def agreement(record: dict, references: dict) -> dict:
    """Max relative deviation of the task's curve (the losses) from numpy's, over the first steps and over all."""
    if record.get("status") != "ok" or not series(record):
        return {}
    if record["backend"] == REFERENCE:
        return {"agreement": "reference"}
    reference = references.get((record["task"], same_problem(record)))
    if reference is None or not series(reference):
        return {"agreement": "no numpy run to compare"}
    first = _task_constant(record["task"], "AGREEMENT_STEPS", 200)
    tolerance = _task_constant(record["task"], "AGREEMENT_TOLERANCE", {}).get(record["precision"])
    deviation = relative_deviation(series(record), series(reference))
    head = float(deviation[:first].max())
    if tolerance is not None and head <= tolerance:
        verdict = "agrees"
    else:  # a difference the backend names (Result.notes) is a finding; an unexplained one is a bug
        verdict = "differs (noted)" if record.get("notes") else "DIFFERS"
    return {"agreement": verdict,
            "max_rel_dev_head": head, "max_rel_dev_all": float(deviation.max()), "head_steps": first}


def references_of(records: list[dict]) -> dict:
    return {(r["task"], same_problem(r)): r for r in records
            if r["backend"] == REFERENCE and r.get("status") == "ok" and r.get("device") == "cpu"}


def summary(records: list[dict]) -> pd.DataFrame:
    references = references_of(records)
    rows = []
    for r in records:
        metrics = r.get("metrics") or {}
        agree = agreement(r, references)
        rows.append({
            "task": r["task"], "backend": r["backend"], "variant": r.get("variant"), "device": r.get("device"),
            "recipe": r.get("recipe"), "precision": r.get("precision"), "status": r.get("status"),
            "verdict": r.get("verdict"),
            "val_accuracy": metrics.get("val_accuracy"), "final_loss": metrics.get("final_loss"),
            "agreement": agree.get("agreement"), "max_rel_dev_head": agree.get("max_rel_dev_head"),
            "max_rel_dev_all": agree.get("max_rel_dev_all"),
            "import_s": r.get("import_s"), "first_call_s": r.get("first_call_s"),
            "step_median_ms": _ms(r.get("step_median_s")), "step_iqr_ms": _ms(r.get("step_iqr_s")),
            "compile_s": r.get("compile_s"), "step_cv": r.get("step_cv"), "repeats": r.get("repeats"),
            "threads": r.get("threads"),
            "train_s": r.get("train_s"), "run_s": r.get("run_s"), "samples_per_s": r.get("samples_per_s"),
            "peak_rss_mb": _mb(r.get("peak_rss_bytes")), "peak_device_mb": _mb(r.get("peak_device_bytes")),
            "framework_version": r.get("framework_version"), "steps": r.get("steps"), "size": r.get("size"),
        })
    return pd.DataFrame(rows)


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def _mb(n):
    return None if n is None else n / 2**20


DISPLAY_COLUMNS = {
    "task": "task", "backend": "backend", "variant": "variant", "device": "device", "recipe": "recipe",
    "precision": "precision", "verdict": "verdict", "val_accuracy": "val acc", "agreement": "vs numpy",
    "max_rel_dev_head": "rel dev", "import_s": "import s", "first_call_s": "1st call s", "compile_s": "compile s",
    "step_median_ms": "step ms", "step_iqr_ms": "IQR ms", "step_cv": "CV", "train_s": "train s",
    "samples_per_s": "samples/s", "run_s": "run s", "peak_rss_mb": "peak RSS MB",
}
ALWAYS_SHOWN = ("task", "backend", "variant", "device", "recipe", "precision", "verdict")


TERMINAL_COLUMNS = ("variant", "device", "recipe", "precision", "verdict", "val_accuracy", "agreement",
                    "max_rel_dev_head", "step_median_ms", "step_cv", "samples_per_s", "train_s", "run_s", "peak_rss_mb")


def display_table(frame: pd.DataFrame, columns=tuple(DISPLAY_COLUMNS)) -> pd.DataFrame:
    """The comparison table as people read it: short headers, rounded numbers, blanks for n/a."""
    table = frame[[c for c in columns if c in frame]].rename(columns=DISPLAY_COLUMNS).copy()
    # a column no cell of these has a value for (a task of checks has no steps, a run no repeats) is left out
    table = table.drop(columns=[c for c in table if c not in ALWAYS_SHOWN and table[c].isna().all()])
    formats = {"val acc": "{:.2%}", "rel dev": "{:.1e}", "import s": "{:.2f}",
               "1st call s": "{:.3f}", "step ms": "{:.3f}", "IQR ms": "{:.3f}", "train s": "{:.2f}",
               "samples/s": "{:,.0f}", "run s": "{:.1f}", "peak RSS MB": "{:.0f}", "compile s": "{:.3f}", "CV": "{:.1%}"}
    for column, fmt in formats.items():
        if column in table:
            table[column] = table[column].map(lambda v, f=fmt: "" if v is None or pd.isna(v) else f.format(v))
    return table.fillna("")


def metrics_table(records: list[dict]) -> pd.DataFrame:
    """One row per cell: precision, recall and one-vs-rest AUC of each class."""
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        if not m.get("precision"):
            continue
        row = {"variant": r.get("variant"), "device": r.get("device"), "recipe": r.get("recipe"),
               "precision": r.get("precision")}
        for name, key, digits in (("P", "precision", 4), ("R", "recall", 4), ("AUC", "auc", 5)):
            row.update({f"{name} {k}": round(v, digits) for k, v in enumerate(m[key])})
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- plots

def plot_loss_curves(records: list[dict], path: Path, window: int = 25) -> Path | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = [r for r in records if r.get("status") == "ok" and r.get("losses")]
    if not ran:
        return None
    panels = sorted({(r["task"], r["recipe"], r["precision"]) for r in ran})
    columns = min(len(panels), 2)
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4 * rows), squeeze=False)
    for ax, (task, recipe, precision) in zip(axes.flat, panels):
        curves = [r for r in ran if (r["task"], r["recipe"], r["precision"]) == (task, recipe, precision)]
        for i, r in enumerate(curves):
            losses = np.asarray(r["losses"], dtype=np.float64)
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if len(losses) > window else losses
            # Curves that agree lie on top of each other: vary width and dashes so each stays visible.
            ax.plot(np.arange(len(smooth)) + 1, smooth, lw=2.5 - 1.6 * i / max(len(curves) - 1, 1),
                    ls=["-", "--", ":", "-."][i % 4], label=f"{r['variant']} ({r['device']})")
        ax.set_yscale("log")
        ax.set_title(f"{task} / {recipe} / {precision} (mean of {window} steps)")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_deviation(records: list[dict], path: Path) -> Path | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    references = references_of(records)
    pairs = [(r, references.get((r["task"], same_problem(r)))) for r in records
             if r.get("status") == "ok" and series(r) and r["backend"] != REFERENCE]
    pairs = [(r, ref) for r, ref in pairs if ref is not None and series(ref)]
    if not pairs:
        return None
    figure, ax = plt.subplots(figsize=(9, 4.5))
    for r, ref in pairs:
        deviation = relative_deviation(series(r), series(ref))
        ax.plot(np.arange(len(deviation)) + 1, np.maximum(deviation, 1e-18), lw=1,
                label=f"{r['task']} {r['variant']} {r['recipe']} {r['precision']} ({r['device']})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("|value - numpy value| / numpy value")
    ax.set_title("Deviation of each curve (loss, or the task's series) from the numpy reference")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ----------------------------------------------------------------------------------------- writers

def environment_lines(records: list[dict]) -> list[str]:
    machine = next((r["machine"] for r in records if r.get("machine")), {})
    versions = sorted({(r.get("framework"), r.get("framework_version")) for r in records
                       if r.get("framework_version")})
    lines = [f"- machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
             f"{machine.get('os', '?')}, Python {machine.get('python', '?')}"]
    lines += [f"- {name} {version}" for name, version in versions]
    threads = {r.get("threads") for r in records}
    lines.append(f"- threads: {', '.join(str(t or 'framework default') for t in threads)}")
    read_back: dict = {}  # the thread counts each worker read back (its OS threads aside), variants grouped
    for r in records:
        found = ", ".join(f"{k} {v}" for k, v in (r.get("threads_in_effect") or {}).items() if k != "os_threads")
        if found and r.get("variant") not in read_back.setdefault(found, []):
            read_back[found].append(r.get("variant"))
    lines += [f"- threads in effect ({', '.join(variants)}): {found}" for found, variants in read_back.items()]
    return lines


def write_reports(run_dir: Path) -> dict[str, Path]:
    """Rebuild every report of a run directory from its results.jsonl."""
    run_dir = Path(run_dir)
    records = read_records(run_dir / "results.jsonl")
    frame = summary(records)
    written = {"csv": run_dir / "results.csv", "markdown": run_dir / "report.md"}
    frame.to_csv(written["csv"], index=False)
    plots = {"loss curves": plot_loss_curves(records, run_dir / "loss_curves.png"),
             "deviation from numpy": plot_deviation(records, run_dir / "deviation.png")}
    written.update({name: p for name, p in plots.items() if p is not None})
    written["markdown"].write_text(markdown(records, frame, plots))
    from rosetta.report_html import write_html  # imports this module: import it late
    written["html"] = write_html(run_dir, records, frame)
    return written


def markdown(records: list[dict], frame: pd.DataFrame, plots: dict) -> str:
    run_id = records[0].get("run_id", "")
    parts = [f"# Rosetta run {run_id}", "", *environment_lines(records), ""]
    for task in frame["task"].unique():
        task_records = [r for r in records if r["task"] == task]
        parts += [f"## {task}", "", display_table(frame[frame["task"] == task], tuple(DISPLAY_COLUMNS)[1:]).to_markdown(index=False), ""]
        tolerance = _task_constant(task, "AGREEMENT_TOLERANCE", {})
        if tolerance and frame[frame["task"] == task]["agreement"].notna().any():
            steps = _task_constant(task, "AGREEMENT_STEPS", 200)
            parts += [f"`rel dev`: the maximum relative deviation of the loss curve from the numpy reference "
                      f"over the first {steps} steps; `vs numpy` says whether it is within the tolerance ("
                      + ", ".join(f"{t:g} in {p}" for p, t in tolerance.items()) + "), and `differs (noted)` "
                      "when the backend names the reason below. `1st call s`: setup, tracing or compilation "
                      "and the first step (or first chunk of steps). `step ms`: median step time after "
                      "warm-up; `IQR ms`: its interquartile range. `compile s` (where a backend compiles "
                      "ahead of training): tracing and compilation, timed apart from the steps. `CV` (with "
                      "--repeats): the coefficient of variation of the step median across repeated runs, "
                      "and `step ms` the median of their medians.", ""]
        metrics = metrics_table(task_records)
        if not metrics.empty:
            parts += ["### Per-class metrics on the validation split",
                      "", "P k, R k, AUC k: precision, recall and one-vs-rest AUC of class k.", "",
                      metrics.to_markdown(index=False), ""]
        from rosetta.report_sections import sections_for  # it imports the registry: late, as write_html
        for section in sections_for(task, task_records):
            parts += [f"### {section.title}", "", section.markdown, ""]
        notes = sorted({(r.get("variant"), r.get("recipe"), n) for r in task_records for n in r.get("notes") or []})
        if notes:
            parts += ["### Where a framework differs from the reference", ""]
            parts += [f"- **{variant}**, {recipe}: {note}" for variant, recipe, note in notes] + [""]
        problems = [r for r in task_records if r.get("status") in ("failed", "crashed", "timed-out")]
        for r in problems:
            parts += [f"- **{r['cell']}**: {r.get('verdict')}", "", "```", r.get("stderr_tail") or
                      (r.get("error") or "").strip()[-2000:], "```", ""]
    for name, path in plots.items():
        if path is not None:
            parts += [f"![{name}]({Path(path).name})", ""]
    return "\n".join(parts)
