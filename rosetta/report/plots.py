"""The report's plots, drawn from a TaskView: each function returns a matplotlib figure (or None when there
is nothing to draw); the Markdown report saves them as PNG files, report.html embeds them."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from rosetta import judge

ZONE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
SMOOTHING = 25  # steps averaged in the loss curves


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def png_base64(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------------------------- helpers

def curves(view) -> list[dict]:
    return [r for r in view.finished if r.get("losses")]


def label(r: dict, records: list[dict]) -> str:
    gpu_ran = any(x.get("device") == "gpu" for x in records)
    axes = "".join(f" {k}={v}" for k, v in judge.options_of(r).items() if k == "replicas")
    return (f"{r['variant']} ({r['device']})" if gpu_ran else str(r["variant"])) + axes


def groups(records: list[dict]) -> list[tuple]:
    """Recipes (and precisions when several) in the order the run had them."""
    precisions = {r.get("precision") for r in records}
    keys = [(r.get("recipe"), r.get("precision")) for r in records]
    return [(rc, p if len(precisions) > 1 else None) for rc, p in dict.fromkeys(keys)]


def in_group(r: dict, group: tuple) -> bool:
    return r.get("recipe") == group[0] and (group[1] is None or r.get("precision") == group[1])


def group_name(group: tuple) -> str:
    return group[0] if group[1] is None else f"{group[0]} {group[1]}"


# ------------------------------------------------------------------------------------------------ plots

def loss_curves(view, window: int = SMOOTHING):
    ran = curves(view)
    if not ran:
        return None
    plt = pyplot()
    panels = groups(ran)
    columns = min(len(panels), 2)
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4 * rows), squeeze=False)
    for ax, group in zip(axes.flat, panels):
        members = [r for r in ran if in_group(r, group)]
        for i, r in enumerate(members):
            losses = np.asarray(r["losses"], dtype=np.float64)
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if len(losses) > window else losses
            # Curves that agree lie on top of each other: vary width and dashes so each stays visible.
            ax.plot(np.arange(len(smooth)) + 1, smooth, lw=2.5 - 1.6 * i / max(len(members) - 1, 1),
                    ls=["-", "--", ":", "-."][i % 4], label=label(r, ran))
        ax.set_yscale("log")
        ax.set_title(f"{view.name} / {group_name(group)} (mean of {window} steps)")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    figure.tight_layout()
    return figure


def deviation(view):
    """Per recipe: each backend's relative deviation from the reference, as its maximum over windows of steps."""
    task = view.task
    pairs = [(r, view.reference_for(r)) for r in view.finished if not view.is_reference(r)
             and judge.series(r, task)]
    pairs = [(r, ref) for r, ref in pairs if ref is not None and judge.series(ref, task)]
    if not pairs:
        return None
    plt = pyplot()
    records = view.finished
    panels = [g for g in groups(records) if any(in_group(r, g) for r, _ in pairs)]
    columns = min(len(panels), 2)
    rows = -(-len(panels) // columns)
    labels = list(dict.fromkeys(label(r, records) for r in records))  # the reference first: colours as the curves
    legend_columns = max(min(len(labels) - 1, 4 * columns + 1), 1)
    legend_height = 0.25 * -(-(len(labels) - 1) // legend_columns) + 0.25
    height = 3.3 * rows + legend_height
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns + (3 if columns == 1 else 0), height),
                                squeeze=False)
    palette = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    for ax, group in zip(axes.flat, panels):
        for r, ref in pairs:
            if not in_group(r, group):
                continue
            values = np.maximum(judge.relative_deviation(judge.series(r, task), judge.series(ref, task)), 1e-16)
            window = max(1, len(values) // 60)
            usable = len(values) // window * window
            peaks = values[:usable].reshape(-1, window).max(axis=1)
            steps = np.arange(len(peaks)) * window + window
            color = palette(labels.index(label(r, records)) % palette.N)
            ax.plot(steps, peaks, lw=1.3, color=color, label=label(r, records))
        for precision in {r.get("precision") for r in records if in_group(r, group)}:
            if precision in task.agreement_tolerance:
                ax.axhline(task.agreement_tolerance[precision], color="k", ls="--", lw=0.8)
        if task.agreement_steps:
            ax.axvline(task.agreement_steps, color="k", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylim(5e-17, 1)
        ax.set_title(group_name(group), fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("relative deviation")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    shown = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            shown.setdefault(name, handle)
    figure.legend(list(shown.values()), list(shown), loc="lower center", ncol=legend_columns, fontsize=9,
                  frameon=False)
    figure.tight_layout(rect=(0, legend_height / height, 1, 1))
    return figure


def _grouped_barh(ax, records, value, error=None, fmt="{:.3g}", log=False):
    panels = groups(records)
    labels = list(dict.fromkeys(label(r, records) for r in records))
    height = 0.8 / max(len(panels), 1)
    for g, group in enumerate(panels):
        values, errors, ys = [], [], []
        for i, name in enumerate(labels):
            r = next((x for x in records if label(x, records) == name and in_group(x, group)), None)
            v = None if r is None else value(r)
            if v is None or not np.isfinite(v):
                continue
            ys.append(i + (g - (len(panels) - 1) / 2) * height)
            values.append(v)
            errors.append(error(r) if error else 0)
        bars = ax.barh(ys, values, height=height * 0.92, xerr=errors if error else None, label=group_name(group),
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


def time_bars(view):
    ran = curves(view)
    if not ran:
        return None
    plt = pyplot()
    labels = {label(r, ran) for r in ran}
    height = max(3.2, 0.22 * len(labels) * len(groups(ran)) + 1.2)
    figure, axes = plt.subplots(1, 4, figsize=(17, height))
    _grouped_barh(axes[0], ran, lambda r: _ms(r.get("step_median_s")),
                  lambda r: (_ms(r.get("step_iqr_s")) or 0) / 2, log=True)
    axes[0].set_title("median step time, ms (whisker: one IQR wide)", fontsize=10)
    _grouped_barh(axes[1], ran, lambda r: r.get("samples_per_s"), fmt="{:,.0f}", log=True)
    axes[1].set_title("throughput, samples / s", fontsize=10)
    _grouped_barh(axes[2], ran, lambda r: r.get("first_call_s"), fmt="{:.2f}")
    axes[2].set_title("compile + first step, s", fontsize=10)
    _grouped_barh(axes[3], ran, lambda r: (r.get("peak_rss_bytes") or 0) / 2**20 or None, fmt="{:.0f}")
    axes[3].set_title("peak resident memory, MB", fontsize=10)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=max(len(names), 1), fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure


def accuracy_bars(view):
    ran = [r for r in curves(view) if (r.get("metrics") or {}).get("val_accuracy") is not None]
    if not ran:
        return None
    plt = pyplot()
    labels = {label(r, ran) for r in ran}
    height = max(2.6, 0.13 * len(labels) * len(groups(ran)) + 1.2)
    figure, ax = plt.subplots(figsize=(10, height))
    _grouped_barh(ax, ran, lambda r: 100 * r["metrics"]["val_accuracy"], fmt="{:.2f}%")
    ax.set_xlim(0, 112)
    ax.set_xlabel(f"{accuracy_name(view)}, %")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=9, frameon=False)
    figure.tight_layout()
    return figure


def accuracy_name(view) -> str:
    """What the task's accuracy is measured on (ACCURACY_ON in the spec), e.g. "the 10,000 test images"."""
    on = getattr(view.task.module, "ACCURACY_ON", None) if view.task else None
    return f"accuracy on {on}" if on else "validation accuracy"


def decision_regions(view):
    """The task's 2-D data, then each cell's decision regions from its final parameters (numpy forward pass).
    For a task whose spec defines predict(params, x), INPUT_DOMAIN and labels_of(x)."""
    module = view.task.module if view.task else None
    if module is None or not (hasattr(module, "predict") and hasattr(module, "INPUT_DOMAIN")):
        return None
    cells = [r for r in view.finished if (r.get("report_data") or {}).get("params")]
    if not cells:
        return None
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    (x0, x1), (y0, y1) = module.INPUT_DOMAIN
    n_classes = getattr(module, "CLASSES", 3)
    colors = ListedColormap(ZONE_COLORS[:n_classes])
    grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
    grid = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    truth = module.labels_of(grid).reshape(grid_x.shape) if hasattr(module, "labels_of") else None

    panels = groups(cells)
    labels = list(dict.fromkeys(label(r, cells) for r in cells))
    columns = len(labels) + 1
    figure, axes = plt.subplots(len(panels), columns, figsize=(2.35 * columns, 2.5 * len(panels)), squeeze=False)
    first = cells[0]
    try:  # the data the cells trained on, regenerated from the record's size and seed
        problem = module.make_problem(size=first["size"], seed=first["seed"], recipe=first["recipe"],
                                      precision="float64", steps=1)
    except (TypeError, ValueError):
        problem = None
    shown = 0 if problem is None else min(3000, len(problem.x_train))
    for row, group in enumerate(panels):
        ax = axes[row][0]
        if row == 0 and shown:
            ax.scatter(problem.x_train[:shown, 0], problem.x_train[:shown, 1], c=problem.y_train[:shown],
                       cmap=colors, vmin=0, vmax=n_classes - 1, s=2, linewidths=0)
            ax.set_title(f"the data ({shown:,} of\n{len(problem.x_train):,} training points)", fontsize=8.5)
        else:
            ax.set_visible(False)
        for col, name in enumerate(labels, start=1):
            ax = axes[row][col]
            r = next((x for x in cells if label(x, cells) == name and in_group(x, group)), None)
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
            ax.set_title(f"{name}\n{group_name(group)}, acc {accuracy:.2%}" if accuracy is not None else name,
                         fontsize=8.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    figure.tight_layout()
    return figure


def _ms(seconds):
    return None if seconds is None else seconds * 1e3
