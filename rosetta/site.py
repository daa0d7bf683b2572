"""`rosetta site RUN_DIRS... --out DIR`: one static page, DIR/index.html, over many run folders.

Every run with its date, machine, framework versions and verdict counts (and a link to its own report.html),
then every cell that appears in several runs (matched as `rosetta compare` matches them: rosetta/judge.py's
timing_key) with its median step time and accuracy in each run, oldest first. Each step time is judged
against the same cell's previous appearance exactly as `rosetta compare` judges two runs (rosetta/compare.py:
the ratio against the noise both measured, "not judged" on a busy machine): a framework upgrade or a code
change shows up as a step in the line, flagged where it is beyond the noise.

A run's date is the timestamp `rosetta run` puts in a folder's name (20250101-120000-classifier); a folder
named otherwise (--name) is dated by when its results.jsonl was last written, and the page says which.

Like report.html the page is one self-contained file: inline CSS and SVG, no script, no font, no request;
its only links are to the runs' own report.html files, relative to DIR.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rosetta import compare, judge
from rosetta.errors import UsageError
from rosetta.report.model import DID_NOT_RUN, FAILED, build
from rosetta.results import read_records

STAMP = re.compile(r"^(\d{8}-\d{6})")


@dataclass
class Run:
    path: Path
    name: str
    date: dt.datetime
    dated_by: str  # "folder name" or "results.jsonl written"
    records: list
    judged: dict = field(default_factory=dict)  # id(record) -> agreement verdict with the reference, or None


def find_runs(paths) -> list[Path]:
    """Run folders: each path that holds a results.jsonl, else the folders right under it that do."""
    found = []
    for path in map(Path, paths):
        if (path / "results.jsonl").is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if (p / "results.jsonl").is_file())
        else:
            raise UsageError(f"{path} is not a directory; give run folders made by `rosetta run`, or a folder of them")
    if not found:
        raise UsageError(f"no results.jsonl in {', '.join(map(str, paths))} or the folders right under "
                         f"{'it' if len(paths) == 1 else 'them'}; give run folders made by `rosetta run`")
    return list(dict.fromkeys(p.resolve() for p in found))


def load_runs(paths, registry) -> list[Run]:
    runs = []
    for path in find_runs(paths):
        records = read_records(path / "results.jsonl")
        stamp = STAMP.match(path.name)
        if stamp:
            date, dated_by = dt.datetime.strptime(stamp.group(1), "%Y%m%d-%H%M%S"), "folder name"
        else:
            date = dt.datetime.fromtimestamp((path / "results.jsonl").stat().st_mtime)
            dated_by = "results.jsonl written"
        run = Run(path, path.name, date, dated_by, records)
        for view in build(records, registry).tasks:
            for r in view.records:
                j = view.judgement(r)
                run.judged[id(r)] = j.verdict if j else None
        runs.append(run)
    return sorted(runs, key=lambda run: (run.date, run.name))


# --------------------------------------------------------------------------------------------- figures

def run_summary(run: Run) -> dict:
    records = run.records
    machines = {}
    for r in records:
        m = r.get("machine") or {}
        if m.get("hostname"):
            machines.setdefault(m["hostname"], f"{m['hostname']}: {m.get('cpu', '?')}, {m.get('cores', '?')} cores")
    gpus = sorted({r["device_name"] for r in records if r.get("device") == "gpu" and r.get("status") == "ok"
                   and r.get("device_name")})
    versions = {}
    for r in records:
        if r.get("framework_version"):
            versions.setdefault(r.get("framework"), r["framework_version"])
    statuses = [r.get("status") for r in records]
    agreement: dict = {}
    for verdict in run.judged.values():
        if verdict and verdict != judge.REFERENCE:
            agreement[verdict] = agreement.get(verdict, 0) + 1
    return {"machines": list(machines.values()), "gpus": gpus, "versions": versions,
            "tasks": list(dict.fromkeys(r.get("task") for r in records)), "cells": len(records),
            "ok": sum(r.get("verdict") == "ok" for r in records),
            "wrong": sum(s == "ok" and r.get("verdict") != "ok" for s, r in zip(statuses, records)),
            "failed": sum(s in FAILED for s in statuses), "idle": sum(s in DID_NOT_RUN for s in statuses),
            "agreement": agreement,
            "busy": sum(bool((r.get("load") or {}).get("busy")) for r in records if r.get("status") == "ok")}


def cell_series(runs: list[Run], noise_factor: float = compare.DEFAULT_NOISE_FACTOR,
                min_noise: float = compare.DEFAULT_MIN_NOISE) -> list[dict]:
    """Each cell that finished in more than one run: its points over the runs, oldest first, each step time
    judged against the cell's previous point as `rosetta compare` judges it."""
    found: dict = {}
    for i, run in enumerate(runs):
        for r in run.records:
            if r.get("status") == "ok":
                found.setdefault(judge.timing_key(r), {}).setdefault(i, r)  # a run's first record of the cell
    series = []
    for key, by_run in found.items():
        if len(by_run) < 2:
            continue
        points, previous = [], None
        for i, r in sorted(by_run.items()):
            point = {"run": i, "record": r, "step_ms": _ms(r.get("step_median_s")),
                     "accuracy": (r.get("metrics") or {}).get("val_accuracy"),
                     "verdict": r.get("verdict"), "agreement": runs[i].judged.get(id(r)),
                     "time": "", "ratio": None, "noise": None}
            if previous is not None:
                row = compare.compare_pair(previous, r, "", "", noise_factor, min_noise)
                point.update(time=row["time"], ratio=row["ratio"], noise=row["noise"], what_changed=changes(previous, r))
            points.append(point)
            previous = r
        first = points[0]["record"]
        series.append({"cell": judge.cell_name(first), "threads": first.get("threads"), "points": points,
                       "flagged": [p for p in points if p["time"] in ("SLOWER", "faster")]})
    return series


def changes(before: dict, after: dict) -> str:
    """What changed in a cell between two runs that may explain a step: the framework's version, its code."""
    said = []
    if before.get("framework_version") != after.get("framework_version"):
        said.append(f"{after.get('framework')} {before.get('framework_version')} -> {after.get('framework_version')}")
    if before.get("source_sha256") and after.get("source_sha256") and before["source_sha256"] != after["source_sha256"]:
        said.append("the backend's code changed (sha256)")
    if (before.get("machine") or {}).get("hostname") != (after.get("machine") or {}).get("hostname"):
        said.append("another machine")
    return "; ".join(said)


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


# ----------------------------------------------------------------------------------------------- page

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; --ok: #1a7f37; --bad: #cf222e;
        --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 clamp(10px, 2.2vw, 28px) 40px; color: var(--fg); background: #fff;
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { padding: 22px 0 10px; border-bottom: 1px solid var(--line); }
h1 { font-size: 24px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 20px; margin: 30px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
p, li { max-width: 1100px; overflow-wrap: anywhere; } .muted { color: var(--muted); }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 4px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: var(--bg-soft); white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.cell, th.cell { position: sticky; left: 0; background: #fff; z-index: 1; box-shadow: 1px 0 0 var(--line);
                   white-space: nowrap; }
th.cell { background: var(--bg-soft); }
td.versions { min-width: 220px; max-width: 420px; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; } .quiet { color: var(--muted); }
svg.line { display: block; }
@media (max-width: 600px) { td.cell, th.cell { white-space: normal; overflow-wrap: anywhere; min-width: 8em;
                                               max-width: 38vw; } }
"""


def render(runs: list[Run], out: Path, noise_factor: float = compare.DEFAULT_NOISE_FACTOR,
           min_noise: float = compare.DEFAULT_MIN_NOISE) -> str:
    series = cell_series(runs, noise_factor, min_noise)
    flagged = [(s, p) for s in series for p in s["flagged"]]
    dated = {run.dated_by for run in runs}
    body = [f"<header class='top'><h1>Rosetta: {len(runs)} run{'s' if len(runs) != 1 else ''}</h1>",
            f"<div class='muted'>built with <code>rosetta site</code> from the runs' results.jsonl; oldest first. "
            f"Dated by {' or by '.join(sorted(dated))}.</div></header>"]
    body.append("<section id='runs'><h2>Runs</h2>" + runs_table(runs, out) + "</section>")
    body.append("<section id='cells'><h2>Cells over the runs</h2>")
    if not series:
        body.append("<p>No cell finished in more than one of these runs, so there is no line to draw: runs are "
                    "matched cell by cell as <code>rosetta compare</code> matches them (task, backend, variant, "
                    "device, recipe, precision, size, seed, steps, learning rate, options, threads).</p>")
    else:
        body.append(f"<p>{len(series)} cells finished in more than one run; {len(flagged)} step time"
                    f"{'s' if len(flagged) != 1 else ''} moved beyond the noise from the cell's previous run. "
                    f"Each step time is judged against the same cell's previous run as <code>rosetta compare"
                    f"</code> judges it: the ratio against the noise both runs measured (the interquartile range "
                    f"of the steps over their median, at least {min_noise:.0%}); beyond 1 + {noise_factor:g} x "
                    f"noise it is <span class='bad'>slower</span> or <span class='ok'>faster</span>, within it "
                    f"not significant, and on a busy machine not judged. The line is the median step over the "
                    f"runs (log scale); a red dot marks a step beyond the noise.</p>")
        if flagged:
            body.append("<ul>" + "".join(
                f"<li><b>{_e(s['cell'])}</b>: {_e(runs[p['run']].name)} {p['ratio']:.2f}x the previous run's "
                f"step ({'slower' if p['time'] == 'SLOWER' else 'faster'}, noise ±{p['noise']:.0%})"
                + (f"; what changed: {_e(p['what_changed'])}" if p.get("what_changed") else "") + "</li>"
                for s, p in flagged) + "</ul>")
        body.append(cells_table(runs, series))
    body.append("</section>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Rosetta runs</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def runs_table(runs: list[Run], out: Path) -> str:
    rows, previous = [], {}
    for run in runs:
        s = run_summary(run)
        report = run.path / "report.html"
        name = (f"<a href='{_e(Path(os.path.relpath(report, out)).as_posix())}'>{_e(run.name)}</a>"
                if report.exists() else _e(run.name))
        versions = []
        for framework, version in s["versions"].items():
            changed = framework in previous and previous[framework] != version
            versions.append(f"<span class='warn' title='was {_e(previous[framework])}'>{_e(framework)} "
                            f"{_e(version)}</span>" if changed else f"{_e(framework)} {_e(version)}")
        previous.update(s["versions"])
        agreement = ", ".join(f"{n} {v}" for v, n in s["agreement"].items())
        rows.append(
            f"<tr><td class='cell'>{name}</td><td class='num'>{run.date:%Y-%m-%d %H:%M}</td>"
            f"<td>{_e('; '.join(s['machines']) or '?')}{_e('; GPU ' + ', '.join(s['gpus'])) if s['gpus'] else ''}"
            f"</td><td>{_e(', '.join(s['tasks']))}</td><td class='versions'>{', '.join(versions)}</td>"
            f"<td class='num'>{s['cells']}</td><td class='num ok'>{s['ok']}</td>"
            f"<td class='num{' bad' if s['wrong'] + s['failed'] else ''}'>{s['wrong'] + s['failed']}</td>"
            f"<td class='num'>{s['idle']}</td><td>{_e(agreement)}</td>"
            f"<td class='num{' warn' if s['busy'] else ''}'>{s['busy']}</td></tr>")
    return ("<div class='scroll'><table class='runs'><thead><tr><th class='cell'>run</th><th>date</th><th>machine</th>"
            "<th>tasks</th><th>framework versions (changed from the run before: amber)</th><th>cells</th>"
            "<th title='the task&#39;s own check said ok'>ok</th><th>wrong or failed</th><th>did not run</th>"
            "<th>vs the reference</th><th title='cells timed while other processes took a quarter of a CPU or "
            "more'>busy</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def cells_table(runs: list[Run], series: list[dict]) -> str:
    head = "".join(f"<th>{_e(run.name)}<div class='quiet'>{run.date:%Y-%m-%d}</div></th>" for run in runs)
    rows = []
    for s in series:
        at = {p["run"]: p for p in s["points"]}
        cells = []
        for i in range(len(runs)):
            p = at.get(i)
            if p is None:
                cells.append("<td class='quiet'>-</td>")
                continue
            step = "" if p["step_ms"] is None else f"{p['step_ms']:.3f} ms"
            mark = ""
            if p["time"] == "SLOWER":
                mark = f" <span class='bad'>slower {p['ratio']:.2f}x</span>"
            elif p["time"] == "faster":
                mark = f" <span class='ok'>faster {p['ratio']:.2f}x</span>"
            elif p["time"].startswith("not judged"):
                mark = " <span class='warn' title='" + _e(p["time"]) + "'>not judged</span>"
            elif p["ratio"] is not None:
                mark = f" <span class='quiet'>{p['ratio']:.2f}x</span>"
            accuracy = "" if p["accuracy"] is None else f"acc {p['accuracy']:.2%}"
            verdict = "" if p["verdict"] == "ok" else f" <span class='bad'>{_e(p['verdict'])}</span>"
            cells.append(f"<td class='num'>{step}{mark}<div>{accuracy}{verdict}</div></td>")
        threads = "" if not s["threads"] else f" ({s['threads']} threads)"
        rows.append(f"<tr><td class='cell'>{_e(s['cell'])}{_e(threads)}</td><td>{sparkline(s, len(runs))}</td>"
                    + "".join(cells) + "</tr>")
    return ("<div class='scroll'><table class='cells'><thead><tr><th class='cell'>cell</th>"
            f"<th>median step over the runs</th>{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def sparkline(s: dict, n_runs: int, width: int = 160, height: int = 34) -> str:
    """The cell's median step over the runs as an inline SVG line (log scale); red dots: beyond the noise."""
    points = [p for p in s["points"] if p["step_ms"]]
    if len(points) < 2:
        return ""
    logs = [math.log10(p["step_ms"]) for p in points]
    low, high = min(logs), max(logs)
    span = max(high - low, 0.05)  # a flat line sits in the middle instead of magnifying noise
    middle = (low + high) / 2
    x = lambda p: 6 + (width - 12) * p["run"] / max(n_runs - 1, 1)
    y = lambda v: height / 2 - (height - 10) * (v - middle) / span
    path = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in zip(points, logs))
    flagged = {id(p) for p in s["flagged"]}
    dots = "".join(f"<circle cx='{x(p):.1f}' cy='{y(v):.1f}' r='{3.5 if id(p) in flagged else 2}' "
                   f"fill='{'#cf222e' if id(p) in flagged else '#59636e'}'><title>{p['step_ms']:.3f} ms</title></circle>"
                   for p, v in zip(points, logs))
    return (f"<svg class='line' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
            f"aria-label='median step over the runs'><polyline points='{path}' fill='none' stroke='#0969da' "
            f"stroke-width='1.5'/>{dots}</svg>")


def write_site(paths, out: Path, registry, noise_factor: float = compare.DEFAULT_NOISE_FACTOR,
               min_noise: float = compare.DEFAULT_MIN_NOISE) -> Path:
    runs = load_runs(paths, registry)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    index.write_text(render(runs, out, noise_factor, min_noise), encoding="utf-8")
    return index


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)
