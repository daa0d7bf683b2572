"""The data-parallel task's part of the reports: the single-device and N-replica curves, their deviation from
numpy's single-device curve, the scaling table (N replicas against 1 replica of the same framework in the
same run), and the data-parallel lines of each framework's code, side by side."""

from __future__ import annotations

import html
import re
from collections import defaultdict

import numpy as np

from rosetta.report.model import timing_flag
from rosetta.report.sections import Section, figure_png, pyplot, table

# The lines of a backend's module that set up or perform the data parallelism: what differs from one device.
API_LINE = re.compile(
    r"DistributedDataParallel|DDP\(|init_process_group|destroy_process_group|start_processes|register_comm_hook|"
    r"MirroredStrategy|strategy\.|set_logical_device_configuration|compute_average_loss|distribute_values|"
    r"Mesh\(|NamedSharding|PartitionSpec\(|jax_num_cpu_devices|device_put\(.*(split|replicated)|"
    r"keras\.distribution|set_distribution|"
    r"split_and_load|kvstore|allreduce_grads|reset_ctx|trainer\.update|"
    r"paddle\.DataParallel|init_parallel_env|dist\.spawn|"
    r"all_reduce_mean|shard\(|shard_batches")
MAX_API_LINES = 14

CURVE_NOTE = ("Each framework's N-replica loss curve is judged against numpy's single-device curve of the same "
              "problem (the global batch's mean loss at every step; for the CNN, its first steps). Only the order "
              "of the sums may differ: each replica's shard mean, then their average, in place of one mean over "
              "the batch.")
SCALING_NOTE = ("Strong scaling: the global batch is fixed, so N replicas each compute 1/N of it. speedup = the "
                "1-replica step time / the N-replica step time of the same framework, variant, recipe, precision "
                "and device in this run; efficiency = speedup / N. sync: the median time a step spends in the "
                "gradient all-reduce, where the framework lets it be timed apart (numpy's is the hand-written mean; "
                "PyTorch's is timed by a DDP communication hook, and overlaps the backward pass; MXNet's is "
                "trainer.allreduce_grads()); blank where the all-reduce runs inside a compiled step (TensorFlow, "
                "JAX, Keras) or inside backward() (Paddle). On a machine with fewer free cores than replicas "
                "the replicas take turns and the efficiency says so.")


def sections(view) -> list[Section]:
    done = [r for r in view.records if r.get("status") == "ok" and r.get("losses")]
    others = [r for r in view.records if r.get("status") != "ok"]
    parts = [curves_section(view, done), deviation_section(view, done, others), scaling_section(done),
             code_section(view)]
    return [p for p in parts if p is not None]


# ------------------------------------------------------------------------------------------ helpers

def replicas_of(r: dict) -> int:
    options = r.get("options") or {}
    value = options.get("replicas", (r.get("report_data") or {}).get("replicas", 1))
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def label(r: dict) -> str:
    name = r.get("framework") or r.get("backend")
    if r.get("variant") and r["variant"] != r.get("backend"):
        name += f" ({r['variant']})"
    return name


def setting(r: dict) -> tuple:
    return (r.get("recipe"), r.get("precision"), r.get("device"))


def ms(seconds) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# ----------------------------------------------------------------------------------------- sections

def curves_section(view, done: list[dict]) -> Section | None:
    groups = defaultdict(list)
    for r in done:
        groups[(r.get("recipe"), r.get("precision"))].append(r)
    if not groups:
        return None
    plt = pyplot()
    images, lines = [], []
    for (recipe, precision), records in groups.items():
        reference = next((view.reference_for(r) for r in records if view.reference_for(r)), None)
        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
        for r in records:
            style = "-" if replicas_of(r) == 1 else "--"
            left.plot(r["losses"], style, linewidth=1, label=f"{label(r)}, {replicas_of(r)} replica(s)")
            if reference is not None and r is not reference:
                n = min(len(r["losses"]), len(reference["losses"]))
                deviation = np.abs(np.subtract(r["losses"][:n], reference["losses"][:n])) / \
                    np.maximum(np.abs(reference["losses"][:n]), np.finfo(float).tiny)
                right.semilogy(np.maximum(deviation, 1e-18), style, linewidth=1,
                               label=f"{label(r)}, {replicas_of(r)}")
        left.set(title=f"{recipe}, {precision}: loss per step", xlabel="step", ylabel="global batch mean loss")
        right.set(title="relative deviation from numpy, 1 replica", xlabel="step", ylabel="|loss - numpy| / numpy")
        left.legend(fontsize=7)
        if right.lines:
            right.legend(fontsize=7)
        images.append(figure_png(figure, f"data-parallel curves, {recipe}, {precision}"))
        lines.append(f"{recipe}, {precision}: {len(records)} curves")
    return Section("Data parallel: single-device and N-replica curves",
                   f"<p class='muted'>{html.escape(CURVE_NOTE)}</p>" + "".join(images),
                   CURVE_NOTE + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n(plots in report.html)")


def deviation_section(view, done: list[dict], others: list[dict]) -> Section | None:
    rows = []
    for r in done:
        j = view.judgement(r)
        data = r.get("report_data") or {}
        rows.append({"framework": label(r), "recipe": r.get("recipe"), "precision": r.get("precision"),
                     "device": r.get("device"), "replicas": replicas_of(r),
                     "steps judged": None if j is None else j.steps,
                     "max deviation": None if j is None else j.head,
                     "whole run": None if j is None else j.whole,
                     "tolerance": None if j is None else j.tolerance,
                     "declared band": None if j is None or j.band is None else f"{j.band[0]:.0e} to {j.band[1]:.0e}",
                     "verdict": None if j is None else j.verdict,
                     "collective": (data.get("mapping") or {}).get("collective")})
    for r in others:  # rows that did not run say why: no GPU, needs N GPUs, an API a backend lacks
        rows.append({"framework": label(r), "recipe": r.get("recipe"), "precision": r.get("precision"),
                     "device": r.get("device"), "replicas": replicas_of(r), "verdict": r.get("verdict")})
    if not rows:
        return None
    html_table, md_table = table(rows)
    note = ("The deviation of each cell's judged series (report_data's judged_losses: the classifier's whole run, "
            "the CNN's first steps) from numpy's single-device series; numpy's own N-replica run is the all-reduce "
            "written out, and is a reference too.")
    return Section("Data parallel: deviation from one device", f"<p class='muted'>{html.escape(note)}</p>{html_table}",
                   f"{note}\n\n{md_table}")


def scaling_rows(done: list[dict]) -> list[dict]:
    baseline = {}
    for r in done:
        if replicas_of(r) == 1:
            baseline.setdefault((r.get("backend"), r.get("variant")) + setting(r), r)
    rows = []
    for r in done:
        base = baseline.get((r.get("backend"), r.get("variant")) + setting(r))
        n = replicas_of(r)
        step, one = r.get("step_median_s"), (base or {}).get("step_median_s")
        speedup = one / step if step and one else None
        data = r.get("report_data") or {}
        mapping = data.get("mapping") or {}
        sync = [s for s in (data.get("sync_seconds") or []) if s is not None]
        sync_median = float(np.median(sync[1:] or sync)) if sync else None
        rows.append({
            "framework": label(r), "recipe": r.get("recipe"), "precision": r.get("precision"),
            "device": r.get("device"), "replicas": n, "local batch": data.get("local_batch_size"),
            "step ms": ms(step), "1-replica step ms": ms(one),
            "speedup": None if speedup is None else round(speedup, 3),
            "efficiency": None if speedup is None else round(speedup / n, 3),
            "sync ms": ms(sync_median),
            "sync share": None if sync_median is None or not step else round(sync_median / step, 3),
            "processes": mapping.get("processes"), "threads/replica": mapping.get("threads_per_replica"),
            "devices": ", ".join(map(str, mapping.get("devices") or [])) or None,
            "api": mapping.get("api"), "timing": timing_flag(r) or None,
        })
    return rows


def scaling_section(done: list[dict]) -> Section | None:
    rows = scaling_rows(done)
    if not rows:
        return None
    html_table, md_table = table(rows)
    return Section("Data parallel: scaling against one replica",
                   f"<p class='muted'>{html.escape(SCALING_NOTE)}</p>{html_table}", f"{SCALING_NOTE}\n\n{md_table}")


def api_lines(path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", '"', "def ", "import ", "from ")) or not API_LINE.search(stripped):
            continue
        found.append(stripped if len(stripped) <= 110 else stripped[:107] + "...")
    return found[:MAX_API_LINES]


def code_section(view) -> Section | None:
    if view.task is None:
        return None
    columns = []
    for name in dict.fromkeys(r.get("backend") for r in view.records):
        backend = view.registry.backends.get(name)
        found = backend.module_for(view.task) if backend is not None else None
        if found is None:
            continue
        lines = api_lines(found[1])
        if lines:
            columns.append((backend.display_name, f"backends/{name}/{found[1].name}", lines))
    if not columns:
        return None
    cells = "".join(f"<div class='code-col'><h4>{html.escape(title)}</h4><p class='muted'>{html.escape(where)}</p>"
                    f"<pre><code>{html.escape(chr(10).join(lines))}</code></pre></div>" for title, where, lines in columns)
    style = ("<style>.dp-code{display:grid;grid-template-columns:repeat(auto-fill,minmax(26em,1fr));gap:1em}"
             ".dp-code pre{font-size:0.75em;white-space:pre-wrap}</style>")
    note = ("The lines of each framework's module that make the training data parallel (its whole module is in "
            "the side-by-side code below): how replicas start, how the batch is split, where the gradients are "
            "all-reduced.")
    markdown = note + "\n\n" + "\n\n".join(f"**{title}** ({where})\n\n```python\n" + "\n".join(lines) + "\n```"
                                         for title, where, lines in columns)
    return Section("Data parallel: the data-parallel lines, side by side",
                   f"{style}<p class='muted'>{html.escape(note)}</p><div class='dp-code'>{cells}</div>", markdown)
