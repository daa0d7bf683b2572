"""`rosetta compare RUN_A RUN_B`: per cell, what changed between two runs in time, accuracy and verdict.

Cells are matched by everything that changes what they compute or how long it takes (rosetta/judge.py:
task, backend, variant, device, recipe, precision, size, seed, steps, learning rate, the task's options,
the thread count, how many cells shared a node). Time is the median step after warm-up; its ratio B / A is judged against the noise both runs measured, the interquartile range
of their step times relative to their median (and, for runs made with --repeats, the spread of the step
median across the repeats, where larger): a ratio beyond 1 + k * noise is flagged as slower (a
regression), below 1 / (1 + k * noise) as faster, anything between is "not significant". The noise never
counts as less than a floor (5 % by default), because a backend that times a whole epoch at once (Keras'
fit()) reports an IQR of 0, which would flag every wobble.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rosetta import judge
from rosetta.errors import UsageError
from rosetta.report.model import build, timing_flag
from rosetta.results import read_records

KEY = judge.CELL_FIELDS + ("options",) + judge.TIMING_FIELDS  # what _key() matches on, as the error names it
DEFAULT_NOISE_FACTOR = 1.0
DEFAULT_MIN_NOISE = 0.05
FIRST_CALL_SHOWN_FROM_S = 0.01  # below this, the ratio of two first calls is timer noise


def load_run(path: Path) -> list[dict]:
    """The records of a run folder; a path that is not one is a UsageError that says what to give."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory; give a run folder made by `rosetta run`")
    return read_records(path / "results.jsonl")


def verdicts(records: list[dict], registry) -> dict:
    """id(record) -> its verdict, with its agreement with the reference when it has one: "ok, agrees"."""
    found = {}
    for view in build(records, registry).tasks:
        for r in view.records:
            verdict = r.get("verdict") or r.get("status") or "?"
            j = view.judgement(r)
            found[id(r)] = f"{verdict}, {j.verdict}" if j and j.verdict != judge.REFERENCE else verdict
    return found


def compare(records_a: list[dict], records_b: list[dict], registry, noise_factor: float = DEFAULT_NOISE_FACTOR,
            min_noise: float = DEFAULT_MIN_NOISE) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """One row per matched cell, and the records only A and only B have."""
    verdicts_a, verdicts_b = verdicts(records_a, registry), verdicts(records_b, registry)
    by_key_b = {}
    for r in records_b:
        by_key_b.setdefault(judge.timing_key(r), r)
    rows, only_a, matched = [], [], set()
    for a in records_a:
        key = judge.timing_key(a)
        b = by_key_b.get(key)
        if b is None or key in matched:
            if b is None:
                only_a.append(a)
            continue
        matched.add(key)
        rows.append(compare_pair(a, b, verdicts_a[id(a)], verdicts_b[id(b)], noise_factor, min_noise))
    only_b = [r for k, r in by_key_b.items() if k not in matched]
    return pd.DataFrame(rows), only_a, only_b


def differences_between(records_a: list[dict], records_b: list[dict]) -> list[str]:
    """What differs between the two runs' machines and framework versions (timings compare badly across them)."""
    lines = []
    hosts = [sorted({(r.get("machine") or {}).get("hostname") for r in rs} - {None}) for rs in (records_a, records_b)]
    cpus = [sorted({(r.get("machine") or {}).get("cpu") for r in rs} - {None}) for rs in (records_a, records_b)]
    if hosts[0] != hosts[1] or cpus[0] != cpus[1]:
        lines.append(f"the runs come from different machines (A: {', '.join(hosts[0])} {'; '.join(cpus[0])}; "
                     f"B: {', '.join(hosts[1])} {'; '.join(cpus[1])}): a time ratio is the machines' as much "
                     f"as the code's")
    versions = [{r.get("framework"): r.get("framework_version") for r in rs if r.get("framework_version")}
                for rs in (records_a, records_b)]
    for name in sorted(set(versions[0]) & set(versions[1]), key=str):
        if versions[0][name] != versions[1][name]:
            lines.append(f"{name} changed version: {versions[0][name]} (A) -> {versions[1][name]} (B)")
    return lines


def compare_pair(a: dict, b: dict, verdict_a: str, verdict_b: str, noise_factor: float,
                 min_noise: float) -> dict:
    """One cell's record in run A against run B: the time ratio judged against the measured noise ("not
    significant", "not judged" on a busy machine), the first-call ratio, accuracy and verdicts (also used by
    rosetta/site.py for each step of a cell's line across runs)."""
    flags = "; ".join(f"{side}: {flag}" for side, flag in (("A", timing_flag(a)), ("B", timing_flag(b))) if flag)
    row = {"cell": judge.cell_name(a), "threads": a.get("threads"), "timing_flags": flags,
           "seed_a": a.get("seed"), "seed_b": b.get("seed"),
           "step_ms_a": _ms(a.get("step_median_s")), "step_ms_b": _ms(b.get("step_median_s")),
           "ratio": None, "noise": None, "time": "", "first_call_ratio": None,
           "acc_a": (a.get("metrics") or {}).get("val_accuracy"),
           "acc_b": (b.get("metrics") or {}).get("val_accuracy"), "acc_delta_pp": None,
           "verdict_a": verdict_a, "verdict_b": verdict_b, "verdict_changed": verdict_a != verdict_b}
    med_a, med_b = a.get("step_median_s"), b.get("step_median_s")
    if a.get("status") == "ok" and b.get("status") == "ok" and med_a and med_b:
        noise = max(_relative_noise(a), _relative_noise(b), min_noise)
        ratio = med_b / med_a
        bound = 1 + noise_factor * noise
        row.update(ratio=ratio, noise=noise,
                   time="SLOWER" if ratio > bound else "faster" if ratio < 1 / bound else "not significant")
        if flags:  # a busy machine or a wild spread on either side: the ratio is not evidence
            row["time"] = f"not judged ({flags})"
        if min(a.get("first_call_s") or 0, b.get("first_call_s") or 0) >= FIRST_CALL_SHOWN_FROM_S:
            row["first_call_ratio"] = b["first_call_s"] / a["first_call_s"]
    else:
        row["time"] = "not timed in both"
    if row["acc_a"] is not None and row["acc_b"] is not None:
        row["acc_delta_pp"] = 100 * (row["acc_b"] - row["acc_a"])
    return row


def _relative_noise(record: dict) -> float:
    """The record's own measure of its step time's noise, relative to its median: the IQR of its steps,
    or, for a run with --repeats, the spread of the step median across repeats where that is larger."""
    median = record.get("step_median_s")
    if not median:
        return 0.0
    spreads = [record.get("step_iqr_s"), record.get("step_repeat_iqr_s")]
    noise = max([s / median for s in spreads if s is not None] + [0.0])
    return max(noise, record.get("step_cv") or 0.0)


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """The comparison as people read it."""
    def fmt(value, pattern):
        return "" if value is None or pd.isna(value) else pattern.format(value)

    shown = []
    for r in rows.to_dict("records"):
        shown.append({
            "cell": r["cell"], "threads": r["threads"] if r["threads"] else "default", "step ms A": fmt(r["step_ms_a"], "{:.3f}"), "step ms B": fmt(r["step_ms_b"], "{:.3f}"),
            "B/A": fmt(r["ratio"], "{:.2f}x"), "noise": fmt(r["noise"], "±{:.0%}"), "time": r["time"],
            "1st call B/A": fmt(r["first_call_ratio"], "{:.2f}x"),
            "acc A": fmt(r["acc_a"], "{:.2%}"), "acc B": fmt(r["acc_b"], "{:.2%}"),
            "acc Δ pp": fmt(r["acc_delta_pp"], "{:+.2f}"),
            "verdict": f"{r['verdict_a']} -> {r['verdict_b']}" if r["verdict_changed"] else f"same: {r['verdict_a']}",
        })
    return pd.DataFrame(shown)


def summary_lines(rows: pd.DataFrame, only_a: list[dict], only_b: list[dict], name_a: str, name_b: str,
                  noise_factor: float, min_noise: float, context: list[str] = ()) -> list[str]:
    slower = rows[rows["time"] == "SLOWER"] if not rows.empty else rows
    faster = rows[rows["time"] == "faster"] if not rows.empty else rows
    changed = rows[rows["verdict_changed"]] if not rows.empty else rows
    accuracy = rows[rows["acc_delta_pp"].fillna(0) != 0] if not rows.empty else rows
    lines = [f"A = {name_a}, B = {name_b}: {len(rows)} cells in both; "
             f"{len(slower)} slower beyond noise (regressions), {len(faster)} faster beyond noise, "
             f"{len(changed)} verdict changes, {len(accuracy)} accuracy changes.",
             f"noise = max(step IQR / median of A, of B (or their spread across repeats), {min_noise:g}); "
             f"a ratio beyond 1 + {noise_factor:g} x noise is flagged; cells measured on a busy machine are not "
             f"judged."]
    lines += [f"note: {line}" for line in context]
    lines += [f"REGRESSION: {r['cell']} {r['ratio']:.2f}x slower (noise ±{r['noise']:.0%})"
              for r in slower.to_dict("records")]
    lines += [f"VERDICT CHANGED: {r['cell']}: {r['verdict_a']} -> {r['verdict_b']}" for r in changed.to_dict("records")]
    seeds = {(r["seed_a"], r["seed_b"]) for r in rows.to_dict("records") if r["seed_a"] != r["seed_b"]}
    if seeds:
        lines.append("note: the runs used different seeds (" + ", ".join(f"{a} vs {b}" for a, b in sorted(seeds))
                     + "), so accuracy differences include different data and weights.")
    for name, only in (("A", only_a), ("B", only_b)):
        if only:
            lines.append(f"only in {name}: {len(only)} cells: " + _cells_in_brief(only))
    return lines


def _cells_in_brief(records: list[dict], most: int = 12) -> str:
    """'jax/cpu x4, keras/gpu x4, ...': cells grouped by variant and device."""
    groups: dict[str, int] = {}
    for r in records:
        name = f"{r.get('variant')}/{r.get('device')}"
        groups[name] = groups.get(name, 0) + 1
    shown = [f"{name} x{n}" if n > 1 else name for name, n in list(groups.items())[:most]]
    return ", ".join(shown) + (f" and {len(groups) - most} more" if len(groups) > most else "")
