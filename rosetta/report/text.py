"""The report's words, written once for every view: the environment, what the columns and verdicts mean,
a takeaway per recipe computed from the run's own figures, and the differences the backends declared."""

from __future__ import annotations

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
            "threads_in_effect": read_back, "busy": busy, "timed": timed,
            "rosetta": next((r.get("rosetta") for r in records if r.get("rosetta")), "?")}


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
    lines.append(f"GPU: {env['gpu']}")
    lines += [f"{name} {version}" for (name, version) in sorted(env["frameworks"], key=str)]
    lines.append(f"threads: {env['threads']}")
    lines += [f"threads in effect ({', '.join(map(str, v))}): {found}" for found, v in env["threads_in_effect"].items()]
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
        lines.append(text)
    return lines


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
