"""The report's words, written once for every view: the environment, what the columns and verdicts mean,
how each variant runs, a takeaway per task and per recipe computed from the run's own figures, what the
figures measure at the run's size, and the differences the backends declared."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rosetta import judge
from rosetta.report.model import timing_flag


def environment(report) -> dict:
    """What the numbers were measured on."""
    records = report.records
    machines = {}
    for r in records:
        m = r.get("machine") or {}
        if m:
            machines.setdefault(m.get("hostname"), m)
    gpu_cells = [r for r in records if r.get("device") == "gpu"]
    gpus = sorted({r["device_name"] for r in gpu_cells if r.get("status") == "ok" and r.get("device_name")})
    if gpus:
        gpu = ", ".join(gpus)
    elif gpu_cells:
        gpu = f"none visible ({len(gpu_cells)} GPU cells skipped)"
    else:
        gpu = "not requested (CPU cells only)"
    threads = sorted({str(r.get("threads") or "each framework's default") for r in records
                      if r.get("status") not in ("unavailable",)})
    frameworks = {}
    for r in records:
        if r.get("framework_version"):
            entry = frameworks.setdefault((r.get("framework"), r["framework_version"]), {
                "environment": r.get("environment"), "python": r.get("python"), "variants": []})
            if r.get("variant") not in entry["variants"]:
                entry["variants"].append(r.get("variant"))
            entry["python"] = entry["python"] or r.get("python")
    read_back: dict = {}  # the thread counts each worker read back (0 is a framework's "its own default")
    for r in records:
        found = ", ".join(f"{k} {v}" + (" (its default)" if v == 0 else "")
                          for k, v in (r.get("threads_in_effect") or {}).items() if k != "os_threads")
        if found and r.get("variant") not in read_back.setdefault(found, []):
            read_back[found].append(r.get("variant"))
    timed = [r for r in records if r.get("status") == "ok" and r.get("load")]
    busy = [r for r in timed if r["load"].get("busy")]
    return {"machines": machines, "gpu": gpu, "threads": ", ".join(threads), "frameworks": frameworks,
            "threads_in_effect": read_back, "busy": busy, "timed": timed, "nodes": nodes_of(records),
            "rosetta": next((r.get("rosetta") for r in records if r.get("rosetta")), "?")}


def nodes_of(records) -> dict:
    """The cluster nodes the cells ran on (records of the ray executor name theirs), by Ray node id."""
    nodes: dict = {}
    for r in records:
        node = r.get("node") or {}
        if not node.get("ray_node_id"):
            continue
        entry = nodes.setdefault(node["ray_node_id"], {**node, "machine": r.get("machine") or {}, "gpus": [],
                                                       "frameworks": [], "cells": 0})
        entry["cells"] += 1
        if r.get("device") == "gpu" and r.get("status") == "ok" and r.get("device_name") not in entry["gpus"]:
            entry["gpus"].append(r["device_name"])
        framework = f"{r.get('framework')} {r['framework_version']}" if r.get("framework_version") else None
        if framework and framework not in entry["frameworks"]:
            entry["frameworks"].append(framework)
    return nodes


def node_lines(env: dict) -> list[str]:
    """One line per cluster node, and what to keep in mind when comparing figures across them."""
    nodes = env["nodes"].values()
    lines = []
    for n in nodes:
        m = n["machine"]
        lines.append(f"Ray node {n.get('ray_node_id', '?')[:8]} on {n.get('hostname', '?')} ({n.get('address', '?')}): "
                     f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores; GPU: {', '.join(n['gpus']) or 'none used'}; "
                     f"{', '.join(n['frameworks']) or 'no framework ran'}; {n['cells']} cells")
    hosts: dict = {}
    for n in nodes:
        hosts.setdefault(n.get("hostname"), []).append(n)
    for host, on_it in hosts.items():
        if len(on_it) > 1:
            lines.append(f"{len(on_it)} Ray nodes share the machine {host}: their cells may have run at the same "
                         f"time on its cores")
    shared = max((n.get("cells_per_node") or 1 for n in nodes), default=1)
    if shared > 1:
        lines.append(f"up to {shared} cells shared a node at once (--cells-per-node): their timings are not a "
                     f"machine's own")
    return lines


def machine_line(m: dict) -> str:
    return (f"{m.get('hostname', '?')}: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('os', '?')}, "
            f"Python {m.get('python', '?')}")


def load_line(env: dict) -> str:
    if not env["timed"]:
        return "machine load: not measured (no cell ran, or records from before rosetta measured it)"
    if not env["busy"]:
        worst = max(r["load"].get("others_share") or 0.0 for r in env["timed"])
        return (f"machine load: quiet in every cell (other processes took at most {worst:.0%} of a CPU while "
                f"a cell ran)")
    return (f"machine load: BUSY in {len(env['busy'])} of {len(env['timed'])} cells (other processes took more "
            f"than a quarter of a CPU while they ran): their timings are flagged and not ranked")


def environment_lines(report) -> list[str]:
    env = environment(report)
    lines = [f"machine {machine_line(m)}" for m in env["machines"].values()]
    if len(env["machines"]) > 1:
        lines.append("the cells ran on different machines: compare timings only within one machine")
    lines += node_lines(env)
    lines.append(f"GPU: {env['gpu']}")
    lines += [f"{name} {version}" for (name, version) in sorted(env["frameworks"], key=str)]
    lines.append(f"threads: {env['threads']}")
    lines += [f"threads in effect ({', '.join(map(str, v))}): {found}" for found, v in env["threads_in_effect"].items()]
    if zero_threads_read_back(env):
        lines.append(f"0 threads: {ZERO_THREADS}")
    lines.append(load_line(env))
    return lines


def legend(view, frame: pd.DataFrame, markdown: bool = False) -> str:
    """What the verdict column and the timing columns mean, with this task's own tolerance and window."""
    task = view.task
    if task is None or frame["agreement"].isna().all():
        return ""
    tolerance = ", ".join(f"{t:g} in {p}" for p, t in task.agreement_tolerance.items()) or "none stated"
    window = f"the first {task.agreement_steps} steps" if task.agreement_steps else "the whole run"
    what = "loss curve" if task.agreement_series == "losses" else task.agreement_series.replace("_", " ")
    reference = view.reference_name or "the reference"
    q = "`" if markdown else ""
    return (f"{q}vs {reference}{q}: the {what} against {reference}'s from the same data, weights and batches, "
            f"judged over {window} (tolerance {tolerance}); {q}agrees{q} within it; {q}differs (declared){q} "
            f"within the band of deviation the backend declares, with its reason (below); {q}closer than "
            f"declared{q} below that band (the framework may have changed: the declaration is stale); "
            f"{q}DIFFERS{q} beyond both; {q}DIFFERS at step 0{q} when the curves part before any update ran. "
            f"{q}rel dev{q}: that maximum relative deviation; {q}rel dev, whole run{q}: over every step. "
            f"{q}step ms{q}: the median step after warm-up, {q}IQR ms{q} its interquartile range; "
            f"{q}timing{q} flags figures not to rank: a busy machine, or steps spread wider than their median.")


def verdict_lines(view) -> list[str]:
    """One takeaway per recipe (and precision): what was right, what agreed, what was fastest among the
    figures that can be ranked, and what differs and why."""
    lines = []
    ran = [r for r in view.ran if r.get("recipe") not in (None, "-")]
    keys = list(dict.fromkeys((r.get("recipe"), r.get("precision")) for r in ran))
    several_precisions = len({p for _, p in keys}) > 1
    for recipe, precision in keys:
        cells = [r for r in ran if (r.get("recipe"), r.get("precision")) == (recipe, precision)]
        name = f"{recipe} {precision}" if several_precisions else recipe
        ok = sum(r.get("verdict") == "ok" for r in cells)
        text = f"{name}: {ok} of {len(cells)} ok"
        counts: dict = {}
        for r in cells:
            j = view.judgement(r)
            if j and j.verdict != judge.REFERENCE:
                counts[j.verdict] = counts.get(j.verdict, 0) + 1
        if counts:
            text += f"; vs {view.reference_name}: " + ", ".join(f"{n} {v}" for v, n in counts.items())
        timed = [r for r in cells if r.get("step_median_s")]
        rankable = [r for r in timed if not timing_flag(r)]
        if len(rankable) > 1:
            fast = min(rankable, key=lambda r: r["step_median_s"])
            slow = max(rankable, key=lambda r: r["step_median_s"])
            text += (f"; fastest step {fast['variant']} {fast['step_median_s'] * 1e3:.3f} ms, slowest "
                     f"{slow['variant']} {slow['step_median_s'] * 1e3:.3f} ms "
                     f"({slow['step_median_s'] / fast['step_median_s']:.0f}x)")
        if len(rankable) < len(timed):
            text += f"; {len(timed) - len(rankable)} timings flagged and not ranked"
        accuracy = [r["metrics"]["val_accuracy"] for r in cells
                    if (r.get("metrics") or {}).get("val_accuracy") is not None]
        if accuracy:
            low, high = min(accuracy), max(accuracy)
            text += f"; accuracy {low:.2%}" if low == high else f"; accuracy {low:.2%} to {high:.2%}"
        lines.append(text + _recipe_note(view, recipe, precision, cells, ran))
    return lines


# What "0" means where a worker read a thread count back, and what a blank cell means: said once, in words.
ZERO_THREADS = ("0 is the framework's own default: the framework was left to choose, and it picks the count "
                "itself when it starts (typically one thread per core)")
BLANKS = ("A blank cell: the figure does not apply to that cell (a task of checks has no steps, a run without "
          "--repeats no CV) or was not measured; in per-class tables a blank, or nan, is a figure that is "
          "undefined, such as the precision of a class the network never predicted.")
# What a step's arithmetic alone would take is priced at one CPU core's order of magnitude in float32: where
# it is a small share of the measured step, the step times measure per-operation overhead.
ARITHMETIC_FLOPS = 1e10


def zero_threads_read_back(env: dict) -> bool:
    return any("(its default)" in found for found in env["threads_in_effect"])


def variant_lines(view) -> list[tuple[str, str]]:
    """(variant, how it runs) for each variant of the task that ran, from the adapters' VARIANTS."""
    lines = []
    for r in view.ran:
        backend = view.registry.backends.get(r.get("backend"))
        variant = r.get("variant")
        if variant in (v for v, _ in lines):
            continue
        how = (backend.variants.get(variant) if backend else None) or "(its adapter is not installed here)"
        lines.append((variant, how))
    return lines


def _mean(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else None


def _still_falling(record: dict) -> float | None:
    """How much the training loss fell over the last tenth of the steps, relative to the tenth before."""
    losses = [x for x in (record.get("losses") or []) if x is not None and math.isfinite(x)]
    k = len(losses) // 10
    if k < 2:
        return None
    before, last = sum(losses[-2 * k:-k]) / k, sum(losses[-k:]) / k
    return (before - last) / before if before > 0 else None


def _accuracy(r: dict):
    return (r.get("metrics") or {}).get("val_accuracy")


def _recipe_note(view, recipe, precision, cells, ran) -> str:
    """What this recipe's figures say beside the others': a recipe far below the best accuracy whose loss
    was still falling when it stopped was under-trained, not broken."""
    own = _mean(_accuracy(r) for r in cells)
    others = {}
    for r in ran:
        if r.get("precision") == precision and _accuracy(r) is not None:
            others.setdefault(r.get("recipe"), []).append(_accuracy(r))
    best = max(others, key=lambda k: _mean(others[k]), default=None)
    if own is None or best is None or best == recipe or _mean(others[best]) - own < 0.05:
        return ""
    reference = next((r for r in cells if view.is_reference(r)), cells[0])
    falling = _still_falling(reference)
    steps, batch = reference.get("steps"), reference.get("batch_size")
    size = reference.get("size")
    seen = (f"{steps} steps of batch {batch} ({steps * batch:,} samples; the run's size is {size:,})"
            if isinstance(steps, int) and isinstance(batch, int) and isinstance(size, int) else f"{steps} steps")
    hyper = getattr((view.task.recipes if view.task else {}).get(recipe), "hyper", {}) or {}
    lr = f" at lr {hyper['lr']:g}" if isinstance(hyper.get("lr"), (int, float)) else ""
    text = (f". Its accuracy is {100 * (_mean(others[best]) - own):.1f} points below {best}'s "
            f"({_mean(others[best]):.2%}) after {seen}{lr}")
    if falling is not None and falling > 0.01:
        text += (f"; its loss was still falling ({falling:.0%} over the last tenth of the steps): under-trained "
                 f"at this length, not broken (more steps would raise it)")
    return text


def task_takeaway(view) -> list[str]:
    """A few sentences on the whole task from its own figures: what ran, which variant was fastest across
    recipes, where the backends agreed and where they did not, and where start-up outweighed training."""
    lines = []
    ran, finished = view.ran, view.finished
    if not ran:
        return ["No cell of this task ran: " + (", ".join(sorted({str(r.get('verdict')) for r in view.idle}))
                or "nothing was planned") + "."]
    ok = sum(r.get("verdict") == "ok" for r in ran)
    lines.append(f"{len(ran)} cells ran, {ok} ok" + (f", {len(view.failed)} failed" if view.failed else "")
                 + (f"; {len(view.idle)} did not run (see below)" if view.idle else "") + ".")
    groups: dict = {}
    for r in finished:
        if r.get("step_median_s") and not timing_flag(r):
            setting = tuple(r.get(k) for k in judge.CELL_FIELDS if k not in ("backend", "variant"))
            groups.setdefault(setting + (str(sorted(judge.options_of(r).items())), r.get("threads")), []).append(r)
    ratios: dict = {}
    for cells in groups.values():
        if len(cells) < 2:
            continue
        fastest = min(r["step_median_s"] for r in cells)
        for r in cells:
            ratios.setdefault(r.get("variant"), []).append(r["step_median_s"] / fastest)
    flagged = [r for r in finished if r.get("step_median_s") and timing_flag(r)]
    if flagged:
        lines.append(f"{len(flagged)} of {len([r for r in finished if r.get('step_median_s')])} timings are flagged "
                     f"(a busy machine, or steps spread wider than their median) and left out of the ranking.")
    if len(ratios) > 1:
        mean = {v: float(np.exp(np.mean(np.log(x)))) for v, x in ratios.items()}
        order = sorted(mean, key=mean.get)
        wins = {v: sum(1 for x in ratios[v] if x == 1.0) for v in order}
        lines.append(f"Median step, across the {len(groups)} settings timed: {order[0]} was fastest"
                     f"{f' in {wins[order[0]]} of {len(ratios[order[0]])}' if len(ratios[order[0]]) > 1 else ''}; "
                     + ", ".join(f"{v} {mean[v]:.1f}x" for v in order[1:])
                     + " its time (geometric mean of the ratios).")
    differs: dict = {}
    judged = 0
    for r in ran:
        j = view.judgement(r)
        if j is None or j.verdict == judge.REFERENCE:
            continue
        judged += 1
        if j.kind != "ok":
            differs.setdefault(j.verdict, []).append(f"{r.get('variant')} ({r.get('recipe')})")
    if judged:
        agree = judged - sum(len(v) for v in differs.values())
        text = f"Against {view.reference_name}: {agree} of {judged} curves agree"
        if differs:
            text += "; " + "; ".join(f"{verdict}: {', '.join(who)}" for verdict, who in differs.items())
            text += " (why, where a backend declared it: below)"
        lines.append(text + ".")
    slow_start = []
    for r in finished:
        start = (r.get("import_s") or 0) + (r.get("first_call_s") or 0)
        train = r.get("train_s")
        if train and start > train:
            slow_start.append((r.get("variant"), start, train))
    if slow_start:
        worst = max(slow_start, key=lambda x: x[1] / x[2])
        lines.append(f"Start-up (import and first call) took longer than the training itself in "
                     f"{len(slow_start)} of {len(finished)} cells; at worst {worst[0]}: {worst[1]:.2f} s against "
                     f"{worst[2]:.2f} s of steps. At this length a run's wall time is mostly start-up.")
    return lines


def scale_lines(view) -> list[str]:
    """What the per-step figures measure at the run's size. A task's report module may say it itself
    (`scale(view) -> list[str]`); otherwise, where the records carry the trained parameters, a step's
    arithmetic (about 6 x parameters x batch floating-point operations, forward and backward) is set against
    the fastest step measured: far below what a core computes per second, the steps time per-operation
    dispatch (Python, the framework's call path, kernel launches), not arithmetic."""
    try:
        module = view.task.report_module() if view.task is not None else None
        own = getattr(module, "scale", None)
        if own is not None:
            return list(own(view) or [])
    except Exception as error:  # a task's words must not cost the rest of the report
        return [f"(the task's own scale() could not say: {type(error).__name__}: {error})"]
    lines = []
    settings: dict = {}
    for r in view.finished:
        if r.get("step_median_s") and r.get("batch_size"):
            settings.setdefault((r.get("batch_size"), r.get("device")), []).append(r)
    for (batch, device), cells in settings.items():
        params = next((_count(r["report_data"]["params"]) for r in cells
                       if isinstance((r.get("report_data") or {}).get("params"), dict)), None)
        fastest = min(cells, key=lambda r: r["step_median_s"])
        slowest = max(cells, key=lambda r: r["step_median_s"])
        step = fastest["step_median_s"]
        if not params:
            continue
        work = 6 * params * batch
        arithmetic = work / ARITHMETIC_FLOPS
        text = (f"Batch {batch} on {device}: a step is about {work:,.0f} floating-point operations ({params:,} "
                f"parameters x batch {batch} x 6, forward and backward), about {arithmetic * 1e6:,.1f} µs of "
                f"arithmetic at {ARITHMETIC_FLOPS / 1e9:g} GFLOP/s (one core's order of magnitude); the fastest "
                f"step took {step * 1e6:,.0f} µs ({fastest.get('variant')})"
                + (f", the slowest {slowest['step_median_s'] * 1e6:,.0f} µs ({slowest.get('variant')})"
                   if slowest is not fastest else ""))
        if arithmetic < 0.5 * step:
            text += (f". At most {arithmetic / step:.0%} of a step is arithmetic: the step times measure "
                     f"per-operation dispatch (Python, each framework's call path, kernel launches), so they rank "
                     f"the frameworks' overhead per call, and the ranking can change at a larger batch or model.")
        else:
            text += ". Most of a step is arithmetic: the step times compare the frameworks' kernels."
        lines.append(text)
    return lines


def _count(params: dict) -> int:
    return int(sum(np.size(v) for v in params.values()))


def notes_of(view) -> tuple[list, list]:
    """(declared differences that judged a cell, as (who, why with band and measured value)), and the
    other notes backends left in their results (who, note)."""
    declared, notes = {}, {}
    for r in view.records:
        j = view.judgement(r)
        who = f"{r.get('variant')}, {r.get('recipe')}, {r.get('precision')}"
        if j is not None and j.band is not None:
            declared[who] = (f"{j.why} Declared band {j.band[0]:.1e} to {j.band[1]:.1e}; measured "
                             f"{j.head:.1e}: {j.verdict}.")
        for note in r.get("notes") or []:
            notes.setdefault((r.get("variant"), note), f"{r.get('variant')}, {r.get('recipe')}")
    return list(declared.items()), [(who, note) for (_, note), who in notes.items()]
