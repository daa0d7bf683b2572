"""The cnn task's part of the reports: accuracy, layout, epoch times, throughput and memory per backend;
per-class accuracy as the tutorial prints it; the spread of accuracy across backends; the smoothed
training loss; confusion matrices."""

from __future__ import annotations

import html
from collections import defaultdict

import numpy as np

from rosetta.report.sections import Section, figure_png, pyplot, table

SPREAD_CRITERION = 1.5  # points of accuracy: the bound across backends after the full recipe
TUTORIAL_ACCURACY = "about 54 %"  # what the PyTorch tutorial reports after its 2 epochs
MAX_MATRICES = 4  # more runs of one setting than this: numpy's confusion matrix and the one furthest from it
SHORT_CLASS = {"airplane": "plane", "automobile": "car"}  # the tutorial's own names for two classes


def sections(view) -> list[Section]:
    done = [r for r in view.records if r.get("status") == "ok" and r.get("verdict") == "ok"
            and "test_accuracy" in (r.get("metrics") or {})]
    if not done:
        return []
    return [s for s in (results_section(done), per_class_section(done), spread_section(done),
                        loss_section(done), confusion_section(done, view)) if s is not None]


# ------------------------------------------------------------------------------------------ helpers

def label(r: dict) -> str:
    name = r.get("framework") or r["backend"]
    if r.get("variant") and r["variant"] != r["backend"]:
        name += f" ({r['variant']})"
    return name


def column(r: dict, all_records: list[dict]) -> str:
    """The backend's label, with what tells its runs apart when the report holds several settings."""
    parts = [label(r)]
    for key in ("recipe", "precision", "device"):
        if len({x.get(key) for x in all_records}) > 1:
            parts.append(str(r.get(key)))
    if len({x["metrics"].get("n_train") for x in all_records}) > 1:
        parts.append(f"{r['metrics'].get('n_train')} images")
    return ", ".join(parts)


def class_names(r: dict) -> list[str]:
    names = (r.get("report_data") or {}).get("class_names")
    return list(names) if names else [str(k) for k in range(len(r["metrics"]["per_class_accuracy"]))]


def mb(value) -> float | None:
    return None if value is None else round(value / 2 ** 20, 1)


def rate(count, seconds) -> float | None:
    return round(count / seconds) if count and seconds else None


def setting(r: dict) -> tuple:
    """Runs of the same training: their accuracies are comparable."""
    m = r["metrics"]
    return (r.get("recipe"), r.get("precision"), r.get("batch_size"), m.get("n_train"),
            m.get("epochs_trained", m.get("epochs")), r.get("steps"))


def describe(key: tuple) -> str:
    recipe, precision, batch, n_train, epochs, steps = key
    return (f"recipe {recipe}, {precision}, batch {batch}, {n_train} training images, {epochs:g} epoch"
            f"{'' if epochs == 1 else 's'} ({steps} steps)")


# ----------------------------------------------------------------------------------------- sections

def results_section(done: list[dict]) -> Section:
    rows = []
    for r in done:
        m = r["metrics"]
        epochs = r.get("epoch_s") or []
        rows.append({
            "backend": label(r), "device": r.get("device"), "recipe": r.get("recipe"),
            "precision": r.get("precision"), "train images": m.get("n_train"), "steps": r.get("steps"),
            "test accuracy %": round(100 * m["test_accuracy"], 2), "layout": m.get("layout"),
            "epoch s": ", ".join(f"{s:.1f}" for s in epochs) or None,
            "train img/s": rate(r.get("batch_size"), r.get("step_median_s")),
            "inference img/s": rate(m.get("n_test"), r.get("finish_s")),
            "peak RSS MB": mb(r.get("peak_rss_bytes")), "peak device MB": mb(r.get("peak_device_bytes")),
        })
    html_table, md_table = table(rows)
    note = (f"Test accuracy over the {done[0]['metrics'].get('n_test')} test images (the tutorial reports "
            f"{TUTORIAL_ACCURACY} after its 2 epochs of batch 4). `layout`: the memory layout the backend "
            "computed in (it converts the spec's NCHW weights itself). `epoch s`: the sum of the step times of "
            "each epoch (a run cut short by --steps shows its partial epoch). `train img/s`: batch size / "
            "median step time. `inference img/s`: test images / the time to predict them all (in chunks) and "
            "bring the logits back to the host. Peak memory: the worker's peak resident set (the data set in "
            "float64 alone is 1.2 GB for 50,000 images), and the GPU's peak allocation where there is one.")
    return Section("CNN: accuracy, layout, time and memory per backend",
                   f"<p>{html.escape(note)}</p>{html_table}", f"{note}\n\n{md_table}")


def per_class_section(done: list[dict]) -> Section:
    names = class_names(done[0])
    columns = [column(r, done) for r in done]
    rows = []
    for k, name in enumerate(names):
        row = {"class": SHORT_CLASS.get(name, name)}
        for r, col in zip(done, columns):
            row[col] = f"{100 * r['metrics']['per_class_accuracy'][k]:.1f} %"
        rows.append(row)
    html_table, md_table = table(rows, ["class", *dict.fromkeys(columns)])
    first = done[0]
    example = "; ".join(f"Accuracy for class: {SHORT_CLASS.get(n, n):5s} is "
                        f"{100 * first['metrics']['per_class_accuracy'][k]:.1f} %" for k, n in enumerate(names[:2]))
    note = (f"The share of each class's test images the network labels correctly, as the tutorial prints it "
            f"(for {column(first, done)}: \"{example}\", ...).")
    return Section("CNN: accuracy per class", f"<p>{html.escape(note)}</p>{html_table}", f"{note}\n\n{md_table}")


def spread_section(done: list[dict]) -> Section | None:
    groups = defaultdict(list)
    for r in done:
        groups[setting(r)].append(r)
    sentences = []
    for key, group in groups.items():
        backends = {r["backend"] for r in group}
        if len(backends) < 2:
            continue
        best = max(group, key=lambda r: r["metrics"]["test_accuracy"])
        worst = min(group, key=lambda r: r["metrics"]["test_accuracy"])
        spread = 100 * (best["metrics"]["test_accuracy"] - worst["metrics"]["test_accuracy"])
        verdict = "within" if spread <= SPREAD_CRITERION else "OVER"
        if spread == 0:
            sentences.append(f"With {describe(key)}, all {len(backends)} backends reach the same test accuracy, "
                             f"{100 * best['metrics']['test_accuracy']:.2f} %.")
            continue
        sentences.append(
            f"With {describe(key)}, test accuracy across {len(backends)} backends ranges from "
            f"{100 * worst['metrics']['test_accuracy']:.2f} % ({label(worst)}) to "
            f"{100 * best['metrics']['test_accuracy']:.2f} % ({label(best)}): a spread of {spread:.2f} points, "
            f"{verdict} the {SPREAD_CRITERION}-point bound the project sets for the full recipe.")
    if not sentences:
        return None
    note = ("The bound is meant for the full 2-epoch recipe; runs cut short are compared all the same. In "
            "float32 each framework rounds differently, so long runs end at slightly different accuracies; "
            "in float64 a backend that computes the same thing stays on numpy's curve.")
    return Section("CNN: accuracy across backends",
                   "".join(f"<p>{html.escape(s)}</p>" for s in [*sentences, note]),
                   "\n".join(f"- {s}" for s in sentences) + f"\n\n{note}")


def smoothed(losses: list[float], window: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of each consecutive window of steps (the tutorial prints every 2,000 steps' mean)."""
    losses = np.asarray(losses, dtype=np.float64)
    count = len(losses) // window
    if count == 0:
        return np.array([len(losses)]), np.array([losses.mean()])
    means = losses[: count * window].reshape(count, window).mean(axis=1)
    return np.arange(1, count + 1) * window, means


def loss_section(done: list[dict]) -> Section | None:
    curves = [r for r in done if r.get("losses")]
    if not curves:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 3.6))
    rows = []
    for r in curves:
        # windows of 8,000 images: the tutorial's 2,000 steps of batch 4
        window = max(1, 8000 // (r.get("batch_size") or 1))
        per_epoch = (r.get("report_data") or {}).get("steps_per_epoch") or len(r["losses"])
        steps, means = smoothed(r["losses"], window)
        axis.plot(steps / per_epoch, means, marker="." if len(means) < 30 else None, label=column(r, done))
        row = {"backend": column(r, done)}
        for e in range(0, len(r["losses"]), per_epoch):
            row[f"epoch {e // per_epoch + 1} mean loss"] = round(float(np.mean(r["losses"][e:e + per_epoch])), 4)
        rows.append(row)
    axis.set_xlabel("epoch")
    axis.set_ylabel("training loss (mean of 8,000 images)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    image = figure_png(figure, "smoothed training loss per backend")
    html_table, md_table = table(rows)
    note = ("The training loss averaged over windows of 8,000 images (the tutorial's running loss over 2,000 "
            "steps of batch 4), against epochs; the table gives each epoch's mean.")
    return Section("CNN: training loss", f"<p>{html.escape(note)}</p>{image}{html_table}", f"{note}\n\n{md_table}")


def confusion_section(done: list[dict], view) -> Section:
    """Per training setting: every run's matrix when there are at most MAX_MATRICES of them, else numpy's and
    the one whose accuracy is furthest from it."""
    groups = defaultdict(list)
    for r in done:
        groups[setting(r)].append(r)
    names = [SHORT_CLASS.get(n, n) for n in class_names(done[0])]
    plt = pyplot()
    images, md_parts = [], []
    for group in groups.values():
        chosen = group
        if len(group) > MAX_MATRICES:
            reference = next((r for r in group if view.is_reference(r)), group[0])
            accuracy = reference["metrics"]["test_accuracy"]
            furthest = max((r for r in group if r is not reference),
                           key=lambda r: abs(r["metrics"]["test_accuracy"] - accuracy))
            chosen = [reference, furthest]
        figure, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 4), squeeze=False)
        for axis, r in zip(axes[0], chosen):
            counts = np.asarray(r["metrics"]["confusion_matrix"])
            axis.imshow(counts, cmap="Blues")
            for (i, j), value in np.ndenumerate(counts):
                axis.text(j, i, str(value), ha="center", va="center", fontsize=6,
                          color="white" if value > counts.max() / 2 else "black")
            axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
            axis.set_yticks(range(len(names)), names, fontsize=7)
            axis.set_xlabel("predicted")
            axis.set_ylabel("true")
            axis.set_title(column(r, done), fontsize=8)
        images.append(figure_png(figure, "confusion matrices"))
        for r in chosen:
            counts = r["metrics"]["confusion_matrix"]
            rows = [{"true \\ predicted": names[i], **{names[j]: counts[i][j] for j in range(len(names))}}
                    for i in range(len(names))]
            md_parts += [f"**{column(r, done)}**", table(rows)[1]]
    note = ("Confusion matrices on the test set: row = true class, column = predicted class, counts. Where more "
            f"than {MAX_MATRICES} runs trained the same way, the reference's ({view.reference_name}) and the one "
            "whose accuracy is furthest from it.")
    return Section("CNN: confusion matrices", f"<p>{html.escape(note)}</p>{''.join(images)}",
                   "\n\n".join([note, *md_parts]))
