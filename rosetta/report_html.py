"""report.html: the comparison people read, as one self-contained file rebuilt from results.jsonl.

Everything is inline: the CSS, the plots (matplotlib figures as base64 PNG) and the syntax-highlighted
code (pygments, inline CSS). No script, no font, no request leaves the page, so it opens from a mail
attachment or an air-gapped machine.

Per task: the results table, the plots (loss curves, deviation from numpy, time / throughput / memory
bars, accuracy bars, and for a task on a 2-D input domain the data and each backend's decision regions,
redrawn in numpy from the final parameters the worker stored), and the Rosetta view: each backend's
implementation of the task, read from backends/<name>/<task>.py, side by side.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta import registry
from rosetta.report import REFERENCE, metrics_table, plot_loss_curves, series_name, summary
from rosetta.report_sections import sections_for

DID_NOT_RUN = ("skipped", "unavailable", "not-installed")
ALWAYS_SHOWN = ("backend", "variant", "device", "recipe", "precision", "verdict")  # others: when some cell has a value
ZONE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")

TABLE_COLUMNS = {  # summary() column -> header, format
    "backend": ("backend", None), "variant": ("variant", None), "device": ("device", None),
    "recipe": ("recipe", None), "precision": ("precision", None), "verdict": ("verdict", None),
    "val_accuracy": ("val acc", "{:.2%}"), "val_loss": ("val loss", "{:.4f}"),
    "final_loss": ("last train loss", "{:.4f}"),
    "agreement": ("vs numpy", None), "max_rel_dev_head": ("rel dev", "{:.1e}"),
    "import_s": ("import s", "{:.2f}"), "first_call_s": ("compile + 1st step s", "{:.3f}"),
    "compile_s": ("compile s", "{:.3f}"),
    "step_median_ms": ("step ms", "{:.3f}"), "step_iqr_ms": ("IQR ms", "{:.3f}"), "step_cv": ("CV", "{:.1%}"),
    "samples_per_s": ("samples/s", "{:,.0f}"), "train_s": ("train s", "{:.2f}"), "run_s": ("run s", "{:.2f}"),
    "peak_rss_mb": ("peak RSS MB", "{:.0f}"), "peak_device_mb": ("peak GPU MB", "{:.0f}"),
}

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; --ok: #1a7f37;
        --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 28px 40px; color: var(--fg); background: #fff; line-height: 1.45;
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { padding: 22px 0 10px; border-bottom: 1px solid var(--line); margin-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 34px 0 8px; padding-bottom: 4px;
border-bottom: 1px solid var(--line); } h3 { font-size: 16px; margin: 24px 0 6px; }
p, li { max-width: 1100px; } .muted { color: var(--muted); } code { font-size: 12.5px; }
nav.toc { margin: 8px 0 0; font-size: 13px; } nav.toc a { margin-right: 14px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 10px 0; }
dl.env dt { color: var(--muted); } dl.env dd { margin: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 4px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; white-space: nowrap; text-align: left; }
th { background: var(--bg-soft); position: sticky; top: 0; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 240px; max-width: 520px; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
figure { margin: 14px 0 20px; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
section img { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; max-width: 1100px; margin-top: 4px; }
pre.stderr { background: var(--bg-soft); padding: 8px; font-size: 12px; overflow-x: auto; max-height: 320px; }
.toggles { margin: 6px 0 10px; font-size: 13px; } .toggles label { margin-right: 14px; cursor: pointer; }
.rosetta { display: flex; gap: 10px; overflow: auto; align-items: flex-start; max-height: 88vh;
            border: 1px solid var(--line); border-radius: 6px; padding: 0 8px 8px; background: #fcfcfd; }
.panel { flex: 0 0 auto; border: 1px solid var(--line); border-top: 0; background: #fff; }
.panel header { position: sticky; top: 0; z-index: 1; background: var(--bg-soft); padding: 6px 10px;
                border-bottom: 1px solid var(--line); border-top: 1px solid var(--line); font-size: 13px;
                white-space: normal; }
.panel header b { font-size: 14px; } .panel header div { color: var(--muted); font-size: 12px; }
.panel .code pre { margin: 0; padding: 8px 10px; font-size: 12px; line-height: 1.4; }
.linenos, .hl .linenos { color: #8c959f; user-select: none; padding-right: 6px; }
"""


def write_html(run_dir: Path, records: list[dict], frame: pd.DataFrame | None = None) -> Path:
    """Write run_dir/report.html from the records of results.jsonl and return its path."""
    frame = summary(records) if frame is None else frame
    path = Path(run_dir) / "report.html"
    path.write_text(render(records, frame), encoding="utf-8")
    return path


def render(records: list[dict], frame: pd.DataFrame) -> str:
    from pygments.formatters import HtmlFormatter

    run_id = records[0].get("run_id") or ""
    tasks = list(dict.fromkeys(r["task"] for r in records))
    body = [f"<header class='top'><h1>Rosetta run {_e(run_id)}</h1>",
            f"<div class='muted'>{len(records)} cells, task{'s' if len(tasks) > 1 else ''} "
            f"{_e(', '.join(tasks))}; rebuilt from results.jsonl with <code>rosetta report</code></div>",
            "<nav class='toc'><a href='#environment'>environment</a>"
            + "".join(f"<a href='#{_id(t)}-results'>{_e(t)}: results</a><a href='#{_id(t)}-plots'>plots</a>"
                      f"<a href='#{_id(t)}-code'>code</a>" for t in tasks)
            + "</nav></header>", environment_html(records)]
    for task in tasks:
        body.append(task_html(task, [r for r in records if r["task"] == task], frame[frame["task"] == task]))
    style = CSS + HtmlFormatter(style="default").get_style_defs(".hl")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Rosetta run {_e(run_id)}</title><style>{style}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------- environment

def environment(records: list[dict]) -> dict:
    """What the numbers were measured on, as shown in the header."""
    machine = next((r["machine"] for r in records if r.get("machine")), {})
    gpu_cells = [r for r in records if r.get("device") == "gpu"]
    gpus = sorted({r["device_name"] for r in gpu_cells if r.get("status") == "ok" and r.get("device_name")})
    if gpus:
        gpu = ", ".join(gpus)
    elif gpu_cells:
        gpu = f"none visible ({len(gpu_cells)} GPU cells skipped)"
    else:
        gpu = "not requested (CPU cells only)"
    threads = sorted({str(r.get("threads") or "each framework's default") for r in records
                      if r.get("status") != "unavailable"})
    frameworks = {}
    for r in records:
        if r.get("framework_version"):
            entry = frameworks.setdefault((r.get("framework"), r["framework_version"]), {
                "environment": r.get("environment"), "python": r.get("python"), "variants": []})
            if r.get("variant") not in entry["variants"]:
                entry["variants"].append(r.get("variant"))
            entry["python"] = entry["python"] or r.get("python")
    read_back: dict = {}  # the thread counts each worker read back, variants grouped
    for r in records:
        found = ", ".join(f"{k} {v}" for k, v in (r.get("threads_in_effect") or {}).items() if k != "os_threads")
        if found and r.get("variant") not in read_back.setdefault(found, []):
            read_back[found].append(r.get("variant"))
    return {"machine": machine, "gpu": gpu, "threads": ", ".join(threads), "frameworks": frameworks,
            "threads_in_effect": read_back,
            "rosetta": next((r.get("rosetta") for r in records if r.get("rosetta")), "?")}


def environment_html(records: list[dict]) -> str:
    env = environment(records)
    m = env["machine"]
    rows = [("machine", f"{m.get('hostname', '?')}: {m.get('os', '?')}"),
            ("CPU", f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"), ("GPU", env["gpu"]),
            ("threads", env["threads"])]
    rows += [(f"threads in effect ({', '.join(map(str, variants))})", found)
             for found, variants in env["threads_in_effect"].items()]
    rows += [("Python", m.get("python", "?")), ("rosetta", env["rosetta"])]
    parts = ["<section id='environment'><h2>Environment</h2><dl class='env'>"]
    parts += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows]
    parts.append("</dl><div class='scroll'><table><thead><tr><th>framework</th><th>version</th>"
                 "<th>environment</th><th>Python</th><th>variants run</th></tr></thead><tbody>")
    for (name, version), info in sorted(env["frameworks"].items(), key=lambda kv: (kv[0][0] != "numpy", kv[0])):
        parts.append(f"<tr><td>{_e(name)}</td><td>{_e(version)}</td><td>{_e(info['environment'])}</td>"
                     f"<td>{_e(info['python'])}</td><td>{_e(', '.join(map(str, info['variants'])))}</td></tr>")
    parts.append("</tbody></table></div></section>")
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------- task

def task_html(task: str, records: list[dict], frame: pd.DataFrame) -> str:
    module = _task_module(task)
    ran = frame[~frame["status"].isin(DID_NOT_RUN)]
    idle = frame[frame["status"].isin(DID_NOT_RUN)]
    counts = frame["status"].value_counts().to_dict()
    parts = [f"<section id='{_id(task)}-results'><h2>{_e(task)}</h2>"]
    if module is not None and getattr(module, "SUMMARY", None):
        parts.append(f"<p>{_e(module.SUMMARY)}.</p>")
    parts.append("<p class='muted'>" + ", ".join(f"{n} {s}" for s, n in counts.items()) + "</p>")

    if not ran.empty:
        parts.append(at_a_glance(ran))
    parts.append("<h3>Results</h3>")
    if ran.empty:
        parts.append("<p>No cell of this task ran.</p>")
    else:
        parts.append(results_table(ran, records))
        steps = getattr(module, "AGREEMENT_STEPS", 200)
        tolerance = getattr(module, "AGREEMENT_TOLERANCE", {})
        if ran["agreement"].notna().any():
            parts.append(
                f"<p class='muted'><b>vs numpy</b>: whether the {series_name(module)} stays within "
                + ", ".join(f"{t:g} ({p})" for p, t in tolerance.items())
                + f" of the numpy reference over the first {steps} steps (same data, weights and batches); "
                "<i>differs (noted)</i> when the backend names why (below). <b>rel dev</b>: that maximum relative "
                "deviation. <b>compile + 1st step s</b>: setup, tracing or compilation, and the first step (or "
                "first chunk of steps); <b>compile s</b>, where a backend compiles ahead of training, that "
                "compilation timed apart. <b>step ms</b>: median step after warm-up; <b>IQR ms</b>: its "
                "interquartile range, the noise <code>rosetta compare</code> measures against; <b>CV</b> (runs "
                "with --repeats): the coefficient of variation of the step median across repeated runs.</p>")
    metrics = metrics_table(records)
    if not metrics.empty:
        parts += ["<h3>Per-class metrics on the validation split</h3>",
                  "<p class='muted'>P k, R k, AUC k: precision, recall and one-vs-rest AUC of class k.</p>",
                  _table(_format_metrics(metrics), numeric=[c for c in metrics.columns if c[:2] in ("P ", "R ")
                                                            or c.startswith("AUC")])]
    for section in sections_for(task, records):
        parts += [f"<h3>{_e(section.title)}</h3>", section.html]
    notes = sorted({(r.get("variant"), r.get("recipe"), n) for r in records for n in r.get("notes") or []})
    if notes:
        parts.append("<h3>Where a framework differs from the reference</h3><ul>")
        parts += [f"<li><b>{_e(v)}</b>, {_e(rc)}: {_e(n)}</li>" for v, rc, n in notes]
        parts.append("</ul>")
    for r in records:
        if r.get("status") in ("failed", "crashed", "timed-out", "diverged"):
            text = r.get("stderr_tail") or (r.get("error") or "").strip()[-2000:]
            parts.append(f"<h3 class='bad'>{_e(r['cell'])}: {_e(r.get('verdict'))}</h3>"
                         + (f"<pre class='stderr'>{_e(text)}</pre>" if text else ""))
    if not idle.empty:
        parts += ["<h3>Cells that did not run</h3>", _table(idle_table(idle), wrap=["why"])]
    parts.append("</section>")

    parts.append(f"<section id='{_id(task)}-plots'><h2>{_e(task)}: plots</h2>")
    plots = task_plots(task, records, module)
    if not plots:
        parts.append("<p>No cell ran, so there is nothing to plot.</p>")
    for title, png, caption in plots:
        parts.append(f"<figure><img alt='{_e(title)}' src='data:image/png;base64,{png}'>"
                     f"<figcaption><b>{_e(title)}</b>. {_e(caption)}</figcaption></figure>")
    parts.append("</section>")
    parts.append(code_html(task, records))
    return "\n".join(parts)


def at_a_glance(ran: pd.DataFrame) -> str:
    """One line per recipe: how many are right, how many agree with numpy, the fastest and slowest step."""
    several_devices = ran["device"].nunique() > 1
    items = []
    keys = list(dict.fromkeys(zip(ran["recipe"], ran["precision"])))
    for recipe, precision in keys:
        cells = ran[(ran["recipe"] == recipe) & (ran["precision"] == precision)]
        name = recipe if len({p for _, p in keys}) == 1 else f"{recipe} {precision}"
        verdicts = cells["agreement"].dropna().value_counts().to_dict()
        verdicts.pop("reference", None)
        text = f"<b>{_e(name)}</b>: {int((cells['verdict'] == 'ok').sum())} of {len(cells)} ok"
        if verdicts:
            text += "; vs numpy: " + ", ".join(f"{n} {_e(v)}" for v, n in verdicts.items())
        timed = cells.dropna(subset=["step_median_ms"])
        if len(timed) > 1:
            fast, slow = timed.loc[timed["step_median_ms"].idxmin()], timed.loc[timed["step_median_ms"].idxmax()]
            label = (lambda r: f"{r['variant']} ({r['device']})") if several_devices else (lambda r: r["variant"])
            spread = slow["step_median_ms"] / fast["step_median_ms"]
            text += (f"; step {_e(label(fast))} {fast['step_median_ms']:.3f} ms fastest, {_e(label(slow))} "
                     f"{slow['step_median_ms']:.3f} ms slowest ({spread:.0f}x)")
        accuracy = cells["val_accuracy"].dropna()
        if len(accuracy):
            text += (f"; val acc {accuracy.min():.2%}" if accuracy.min() == accuracy.max()
                     else f"; val acc {accuracy.min():.2%} to {accuracy.max():.2%}")
        items.append(f"<li>{text}</li>")
    return "<h3>At a glance</h3><ul class='glance'>" + "".join(items) + "</ul>"


def results_table(ran: pd.DataFrame, records: list[dict]) -> str:
    table = ran.copy()
    by_cell = {(r.get("variant"), r.get("device"), r.get("recipe"), r.get("precision")): r for r in records}
    table["val_loss"] = [((by_cell.get((v, d, rc, p)) or {}).get("metrics") or {}).get("val_loss")
                         for v, d, rc, p in zip(table["variant"], table["device"], table["recipe"], table["precision"])]
    columns = [c for c in TABLE_COLUMNS if c in table and (c in ALWAYS_SHOWN or table[c].notna().any())]
    head = "".join(f"<th>{_e(TABLE_COLUMNS[c][0])}</th>" for c in columns)
    rows = []
    for _, row in table[columns].iterrows():
        cells = []
        for c in columns:
            value, fmt = row[c], TABLE_COLUMNS[c][1]
            text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else (
                fmt.format(value) if fmt else str(value))
            css = "num" if fmt else ""
            if c == "verdict":
                css = "ok" if value == "ok" else "bad"
            elif c == "agreement":
                css = {"agrees": "ok", "reference": "", "differs (noted)": "warn"}.get(value, "bad" if value else "")
            cells.append(f"<td class='{css}'>{_e(text)}</td>" if css else f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='scroll'><table class='results'><thead><tr>{head}</tr></thead><tbody>"
            + "\n".join(rows) + "</tbody></table></div>")


def _format_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    shown = metrics.copy()
    for c in shown.columns:
        if c[:2] in ("P ", "R ") or c.startswith("AUC"):
            digits = 5 if c.startswith("AUC") else 4
            shown[c] = shown[c].map(lambda v, d=digits: "" if v is None or pd.isna(v) else f"{v:.{d}f}")
    return shown


def idle_table(idle: pd.DataFrame) -> pd.DataFrame:
    """Cells that did not run, one row per reason and variant (a GPU-less machine skips a dozen)."""
    rows = []
    for (verdict, variant, device), group in idle.groupby(["verdict", "variant", "device"], sort=False, dropna=False):
        recipes = [r for r in dict.fromkeys(group["recipe"]) if r and r != "-"]
        rows.append({"variant": variant, "device": device, "recipes": ", ".join(recipes) or "-",
                     "cells": len(group), "why": verdict})
    return pd.DataFrame(rows)


def _table(frame: pd.DataFrame, numeric=(), wrap=()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = row[c]
            text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            css = "num" if c in numeric else "wrap" if c in wrap else ""
            cells.append(f"<td class='{css}'>{_e(text)}</td>" if css else f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>" + "\n".join(rows)
            + "</tbody></table></div>")


# ------------------------------------------------------------------------------------------- plots

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(figure) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _png_of(draw, records) -> str | None:
    """A report.py plot function (which saves to a path) drawn into memory instead."""
    buffer = io.BytesIO()
    if draw(records, buffer) is None:
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def task_plots(task: str, records: list[dict], module) -> list[tuple[str, str, str]]:
    """(title, base64 PNG, caption) of each plot of one task."""
    ran = [r for r in records if r.get("status") == "ok" and r.get("losses")]
    if not ran:
        return []
    plots = []
    png = _png_of(plot_loss_curves, ran)
    if png:
        plots.append(("Loss curves", png, "Training loss of every backend, one chart per recipe, smoothed over "
                      "25 steps. Curves that agree lie on top of each other (line widths and dashes differ so "
                      "each stays visible)."))
    png = deviation_panels(ran, module)
    if png:
        plots.append(("Deviation from numpy", png, "|loss - numpy loss| / numpy loss of each backend, from the same "
                      "data, initial weights and batches, as the largest value in each window of steps (exact "
                      "agreement shows as the floor, 1e-16). The dashed line is the tolerance of the 'vs numpy' "
                      "verdict, judged over the steps left of the dotted line; rounding grows through training."))
    plots.append(("Time, throughput and memory", time_bars(ran), "Median step time after warm-up (the whisker, "
                  "centred on the median, is one interquartile range wide), samples per second at that median, "
                  "compile + first step, and the worker's peak resident memory, per backend and recipe; time "
                  "and throughput on log scales."))
    if any((r.get("metrics") or {}).get("val_accuracy") is not None for r in ran):
        plots.append(("Validation accuracy", accuracy_bars(ran), "Accuracy on the held-out split after training "
                      "(the cnn task: the 10,000 test images)."))
    if module is not None and hasattr(module, "predict") and hasattr(module, "INPUT_DOMAIN"):
        regions = decision_regions(ran, module)
        if regions:
            plots.append(regions)
    return plots


def deviation_panels(records: list[dict], module) -> str | None:
    """Per recipe: each backend's relative deviation from numpy, as a running maximum over windows of steps."""
    from rosetta.report import references_of, relative_deviation, same_problem, series

    references = references_of(records)
    pairs = [(r, references.get((r["task"], same_problem(r)))) for r in records
             if r["backend"] != REFERENCE and series(r)]
    pairs = [(r, ref) for r, ref in pairs if ref is not None and series(ref)]
    if not pairs:
        return None
    plt = _pyplot()
    groups = [g for g in _groups(records) if any(_group_of(r, g) for r, _ in pairs)]
    columns = min(len(groups), 2)
    rows = -(-len(groups) // columns)
    labels = list(dict.fromkeys(_label(r, records) for r in records))  # numpy first: colours as in the loss curves
    legend_columns = min(len(labels) - 1, 4 * columns + 1)
    legend_height = 0.25 * -(-(len(labels) - 1) // legend_columns) + 0.25
    height = 3.3 * rows + legend_height
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns + (3 if columns == 1 else 0), height),
                                squeeze=False)
    palette = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    tolerance = getattr(module, "AGREEMENT_TOLERANCE", {})
    head = getattr(module, "AGREEMENT_STEPS", None)
    for ax, group in zip(axes.flat, groups):
        for r, ref in pairs:
            if not _group_of(r, group):
                continue
            deviation = np.maximum(relative_deviation(series(r), series(ref)), 1e-16)
            window = max(1, len(deviation) // 60)
            usable = len(deviation) // window * window
            peaks = deviation[:usable].reshape(-1, window).max(axis=1)
            steps = np.arange(len(peaks)) * window + window
            color = palette(labels.index(_label(r, records)) % palette.N)
            ax.plot(steps, peaks, lw=1.3, color=color, label=_label(r, records))
        for precision in {r.get("precision") for r in records if _group_of(r, group)}:
            if precision in tolerance:
                ax.axhline(tolerance[precision], color="k", ls="--", lw=0.8)
        if head:
            ax.axvline(head, color="k", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylim(5e-17, 1)
        ax.set_title(group[0] if group[1] is None else f"{group[0]} {group[1]}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("relative deviation")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    shown = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            shown.setdefault(name, handle)
    figure.legend(list(shown.values()), list(shown), loc="lower center", ncol=legend_columns, fontsize=9,
                  frameon=False)
    figure.tight_layout(rect=(0, legend_height / height, 1, 1))
    return _png(figure)


def _label(r: dict, records: list[dict]) -> str:
    gpu_ran = any(x.get("device") == "gpu" for x in records)
    return f"{r['variant']} ({r['device']})" if gpu_ran else str(r["variant"])


def _groups(records: list[dict]) -> list[tuple]:
    """Recipes (and precisions when several) in the order the run had them."""
    precisions = {r.get("precision") for r in records}
    keys = [(r.get("recipe"), r.get("precision")) for r in records]
    return [(rc, p if len(precisions) > 1 else None) for rc, p in dict.fromkeys(keys)]


def _group_of(r, group) -> bool:
    return r.get("recipe") == group[0] and (group[1] is None or r.get("precision") == group[1])


def _grouped_barh(ax, records, value, error=None, fmt="{:.3g}", log=False):
    groups = _groups(records)
    labels = list(dict.fromkeys(_label(r, records) for r in records))
    height = 0.8 / max(len(groups), 1)
    for g, group in enumerate(groups):
        values, errors, ys = [], [], []
        for i, label in enumerate(labels):
            r = next((x for x in records if _label(x, records) == label and _group_of(x, group)), None)
            v = None if r is None else value(r)
            if v is None or not np.isfinite(v):
                continue
            ys.append(i + (g - (len(groups) - 1) / 2) * height)
            values.append(v)
            errors.append(error(r) if error else 0)
        name = group[0] if group[1] is None else f"{group[0]} {group[1]}"
        bars = ax.barh(ys, values, height=height * 0.92, xerr=errors if error else None, label=name,
                       color=ZONE_COLORS[g % len(ZONE_COLORS)], error_kw={"elinewidth": 0.8, "capsize": 1.5})
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=6.5, padding=2)
    ax.set_yticks(range(len(labels)), labels, fontsize=8.5)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
        low, high = ax.get_xlim()
        ax.set_xlim(low, high * 4)  # room for the value labels
    else:
        ax.set_xlim(0, ax.get_xlim()[1] * 1.15)
    ax.grid(True, axis="x", which="both", alpha=0.25)


def time_bars(records: list[dict]) -> str:
    plt = _pyplot()
    labels = {_label(r, records) for r in records}
    groups = _groups(records)
    height = max(3.2, 0.22 * len(labels) * len(groups) + 1.2)
    figure, axes = plt.subplots(1, 4, figsize=(17, height))
    _grouped_barh(axes[0], records, lambda r: _ms(r.get("step_median_s")),
                  lambda r: (_ms(r.get("step_iqr_s")) or 0) / 2, log=True)
    axes[0].set_title("median step time, ms (whisker: one IQR wide)", fontsize=10)
    _grouped_barh(axes[1], records, lambda r: r.get("samples_per_s"), fmt="{:,.0f}", log=True)
    axes[1].set_title("throughput, samples / s", fontsize=10)
    _grouped_barh(axes[2], records, lambda r: r.get("first_call_s"), fmt="{:.2f}")
    axes[2].set_title("compile + first step, s", fontsize=10)
    _grouped_barh(axes[3], records, lambda r: (r.get("peak_rss_bytes") or 0) / 2**20 or None, fmt="{:.0f}")
    axes[3].set_title("peak resident memory, MB", fontsize=10)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return _png(figure)


def accuracy_bars(records: list[dict]) -> str:
    plt = _pyplot()
    labels = {_label(r, records) for r in records}
    height = max(2.6, 0.13 * len(labels) * len(_groups(records)) + 1.2)
    figure, ax = plt.subplots(figsize=(10, height))
    _grouped_barh(ax, records, lambda r: 100 * (r.get("metrics") or {}).get("val_accuracy", float("nan")),
                  fmt="{:.2f}%")
    ax.set_xlim(0, 112)
    ax.set_xlabel("validation accuracy, %")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=9, frameon=False)
    figure.tight_layout()
    return _png(figure)


def decision_regions(records: list[dict], module) -> tuple[str, str, str] | None:
    """The task's 2-D data, then each cell's decision regions from its final parameters (numpy forward pass)."""
    cells = [r for r in records if (r.get("report_data") or {}).get("params")]
    if not cells:
        return None
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    (x0, x1), (y0, y1) = module.INPUT_DOMAIN
    n_classes = getattr(module, "CLASSES", 3)
    colors = ListedColormap(ZONE_COLORS[:n_classes])
    grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
    grid = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    truth = module.labels_of(grid).reshape(grid_x.shape) if hasattr(module, "labels_of") else None

    groups = _groups(cells)
    labels = list(dict.fromkeys(_label(r, cells) for r in cells))
    columns = len(labels) + 1
    figure, axes = plt.subplots(len(groups), columns, figsize=(2.35 * columns, 2.5 * len(groups)),
                                squeeze=False)
    first = cells[0]
    try:  # the data the cells trained on, regenerated from the record's size and seed
        problem = module.make_problem(size=first["size"], seed=first["seed"], recipe=first["recipe"],
                                      precision="float64", steps=1)
    except (TypeError, ValueError):
        problem = None
    shown = 0 if problem is None else min(3000, len(problem.x_train))
    for row, group in enumerate(groups):
        ax = axes[row][0]
        if row == 0 and shown:
            ax.scatter(problem.x_train[:shown, 0], problem.x_train[:shown, 1], c=problem.y_train[:shown],
                       cmap=colors, vmin=0, vmax=n_classes - 1, s=2, linewidths=0)
            ax.set_title(f"the data ({shown:,} of\n{len(problem.x_train):,} training points)", fontsize=8.5)
        else:
            ax.set_visible(False)
        for col, label in enumerate(labels, start=1):
            ax = axes[row][col]
            r = next((x for x in cells if _label(x, cells) == label and _group_of(x, group)), None)
            if r is None:
                ax.set_visible(False)
                continue
            predicted = module.predict(r["report_data"]["params"], grid).argmax(axis=1).reshape(grid_x.shape)
            ax.imshow(predicted, origin="lower", extent=(x0, x1, y0, y1), cmap=colors, vmin=0,
                      vmax=n_classes - 1, alpha=0.55, interpolation="nearest", aspect="auto")
            if truth is not None:
                ax.contour(grid_x, grid_y, truth, levels=np.arange(n_classes) + 0.5, colors="k",
                           linewidths=0.6, linestyles="--")
            accuracy = (r.get("metrics") or {}).get("val_accuracy")
            name = group[0] if group[1] is None else f"{group[0]} {group[1]}"
            ax.set_title(f"{label}\n{name}, acc {accuracy:.2%}" if accuracy is not None else label, fontsize=8.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    figure.tight_layout()
    return ("Data and decision regions", _png(figure),
            "Left: the training data, coloured by zone. Then, per recipe (rows) and backend (columns), the class "
            "each backend's trained network predicts over the input square, computed in numpy from the final "
            "parameters stored in results.jsonl; the dashed lines are the true zone boundaries.")


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


# -------------------------------------------------------------------------------------------- code

def code_html(task: str, records: list[dict]) -> str:
    """The Rosetta view: each backend's implementation of the task, highlighted, side by side."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    backends = registry.discover()
    ran_backends = list(dict.fromkeys(r["backend"] for r in records
                                      if r["backend"] in backends and r.get("status") not in DID_NOT_RUN))
    ran_backends.sort(key=lambda name: name != REFERENCE)
    panels, toggles, rules = [], [], []
    for name in ran_backends:
        backend = backends[name]
        if backend.path is None:
            continue
        source = backend.path / f"{registry.task_module_name(task)}.py"
        if not source.exists():
            continue
        text = source.read_text(encoding="utf-8")
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        recorded = {r.get("source_sha256") for r in records if r["backend"] == name and r.get("source_sha256")}
        if not recorded:
            state = "<span class='warn'>no digest in the records: the file as it is now</span>"
        elif recorded == {digest}:
            state = "<span class='ok'>the code that ran</span> (sha256 matches the records)"
        else:
            state = "<span class='bad'>changed since this run</span> (sha256 differs from the records)"
        try:
            shown = source.relative_to(registry.ROOT)
        except ValueError:
            shown = source
        key = _id(f"{task}-{name}")
        variants = ", ".join(f"{v}: {d}" for v, d in backend.variants.items())
        formatter = HtmlFormatter(cssclass="hl", linenos="inline")
        toggles.append(f"<label><input type='checkbox' id='show-{key}' checked> {_e(backend.display_name)}</label>")
        rules.append(f"#rosetta-{_id(task)}:has(#show-{key}:not(:checked)) .panel-{key} {{ display: none; }}")
        panels.append(f"<div class='panel panel-{key}'><header><b>{_e(backend.display_name)}</b> "
                      f"<code>{_e(shown)}</code>, {len(text.splitlines())} lines; {state}"
                      f"<div>{_e(variants)}</div></header><div class='code'>"
                      f"{highlight(text, PythonLexer(), formatter)}</div></div>")
    parts = [f"<section id='{_id(task)}-code'><h2>{_e(task)}: the code, side by side</h2>"]
    if not panels:
        parts.append("<p>No backend implementation of this task is at hand.</p></section>")
        return "\n".join(parts)
    parts.append("<p class='muted'>Each backend's implementation, read from "
                 f"<code>backends/&lt;name&gt;/{_e(registry.task_module_name(task))}.py</code> when this report "
                 "was built; the header says whether it is byte for byte the file that ran. Untick a backend "
                 "to hide its panel; scroll sideways for the rest.</p>")
    parts.append(f"<style>{''.join(rules)}</style><div id='rosetta-{_id(task)}'>"
                 f"<div class='toggles'>{''.join(toggles)}</div>"
                 f"<div class='rosetta'>{''.join(panels)}</div></div></section>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ helpers

def _task_module(task: str):
    module = registry.TASKS.get(task)
    return importlib.import_module(module) if module else None


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _id(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text)).strip("-").lower()
