"""The report of a sweep (rosetta/sweeps.py): how each variant's cost grows with the size of the work, against
the machine's own ceiling measured in the same run.

The model (SweepReport) is built from the run's records through the run's report model (model.py), so the
float64 checks are judged by the one judge; the sections below are its views, each a Section (title, HTML,
Markdown) as a task's own sections are, so `rosetta publish` can publish them by title:

    The machine's ceiling      each framework's peak matmul rate (float32, float64) and the memory's bandwidth
    The points                 the task's own count of one step at each point: FLOPs, least bytes, intensity,
                               and the roofline's bound there: min(peak, intensity x bandwidth)
    Step time / GFLOP/s        per variant and point, log-log figures over FLOPs per step, the ceiling drawn
    Fastest at each size       the winner, the runner-up and by how much
    Crossovers                 where two leading variants change places, between which points
    At the largest size        each variant's share of its framework's peak, of the machine's, of the roofline
    Correctness                the float64 check of every variant at every point against the reference

A timing taken on a busy machine or with a wide spread (model.timing_flag) is shown with a dagger and its
reason; it still takes part in the rankings, which then say so.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from rosetta import sweeps
from rosetta.report.model import RunReport, timing_flag
from rosetta.report.sections import Section, figure_png, pyplot, table

DAGGER = "†"


@dataclass(frozen=True)
class Ceiling:
    """One framework's ceiling on one device at one precision, as its ceiling cell measured it."""

    backend: str
    variant: str
    device: str
    precision: str
    matmul_gflops: float | None
    bandwidth_gbs: float | None
    n: int | None
    flag: str = ""


@dataclass(frozen=True)
class Point:
    sizes: tuple  # (name, value) pairs, in the order the task declares its sizes
    flops: float
    dense_flops: float
    bytes: float
    activation_bytes: float = 0.0  # an unfused step's extra traffic (tasks/protocol.py StepCost)

    @property
    def label(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.sizes)

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf

    @property
    def unfused_intensity(self) -> float | None:
        """FLOPs per byte of a step that writes and reads back every intermediate array; None: not counted."""
        return self.flops / (self.bytes + self.activation_bytes) if self.activation_bytes else None


@dataclass(frozen=True)
class Timing:
    variant: str
    backend: str
    device: str
    point: Point
    step_s: float
    iqr_s: float | None
    flag: str

    @property
    def gflops(self) -> float:
        return self.point.flops / self.step_s / 1e9


@dataclass
class SweepReport:
    run: RunReport
    task: object
    recipe: str
    precision: str
    points: list  # Point, by FLOPs per step
    ceilings: list  # Ceiling
    timings: list  # Timing of the finished timed cells
    checks: dict = field(default_factory=dict)  # (variant, device, point sizes) -> Judgement or None
    check_records: dict = field(default_factory=dict)  # the same key -> the record judged
    unfinished: list = field(default_factory=list)  # records that did not finish, of any role

    # ------------------------------------------------------------------------------- the ceiling
    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys([t.device for t in self.timings] + [c.device for c in self.ceilings]))

    def ceiling_of(self, backend: str, device: str, precision: str) -> Ceiling | None:
        return next((c for c in self.ceilings if (c.backend, c.device, c.precision) == (backend, device, precision)
                     and c.matmul_gflops), None)

    def peak(self, device: str, precision: str | None = None) -> Ceiling | None:
        """The machine's matmul ceiling: the highest rate any framework reached, at the sweep's precision."""
        found = [c for c in self.ceilings if c.device == device and c.precision == (precision or self.precision)
                 and c.matmul_gflops]
        return max(found, key=lambda c: c.matmul_gflops) if found else None

    def bandwidth(self, device: str) -> float | None:
        found = [c.bandwidth_gbs for c in self.ceilings if c.device == device and c.bandwidth_gbs]
        return max(found) if found else None

    def roofline(self, point: Point, device: str, unfused: bool = False) -> float | None:
        """The roofline's bound at a point, GFLOP/s: min(peak matmul, intensity x bandwidth), with the least
        bytes (fused) or with every intermediate array written and read once (unfused; None if not counted)."""
        peak, bandwidth = self.peak(device), self.bandwidth(device)
        intensity = point.unfused_intensity if unfused else point.intensity
        if peak is None or intensity is None:
            return None
        if bandwidth is None:
            return peak.matmul_gflops
        return min(peak.matmul_gflops, intensity * bandwidth)

    # ------------------------------------------------------------------------------- the grid
    def series(self, device: str) -> dict:
        """variant -> its timings at the points it finished, in the order of the points."""
        found: dict = {}
        for t in sorted(self.timings, key=lambda t: self.points.index(t.point)):
            if t.device == device:
                found.setdefault(t.variant, []).append(t)
        return found

    def at(self, point: Point, device: str) -> list[Timing]:
        """The timings at a point, fastest first."""
        return sorted((t for t in self.timings if t.point == point and t.device == device), key=lambda t: t.step_s)

    def leaders(self, device: str) -> list[str]:
        """The variants that are first or second at some point, in the order they first lead."""
        names: list = []
        for point in self.points:
            names += [t.variant for t in self.at(point, device)[:2]]
        return list(dict.fromkeys(names))

    def crossovers(self, device: str) -> list[dict]:
        """Where two leading variants change places: between which consecutive points, and at about how many
        FLOPs per step (the ratio of their step times interpolated in log-log)."""
        series = self.series(device)
        found = []
        leaders = self.leaders(device)
        for i, a in enumerate(leaders):
            for b in leaders[i + 1:]:
                times_a = {t.point: t.step_s for t in series.get(a, [])}
                times_b = {t.point: t.step_s for t in series.get(b, [])}
                shared = [p for p in self.points if p in times_a and p in times_b]
                for left, right in zip(shared, shared[1:]):
                    before = math.log(times_a[left] / times_b[left])
                    after = math.log(times_a[right] / times_b[right])
                    if before * after < 0:  # the sign of log(a / b) changes: they swap places
                        share = before / (before - after)
                        at = math.exp(math.log(left.flops) + share * (math.log(right.flops) - math.log(left.flops)))
                        faster_after = a if after < 0 else b
                        found.append({"faster before": b if faster_after == a else a, "faster after": faster_after,
                                      "between": f"{left.label} and {right.label}", "at about": at})
        return found


def build(run: RunReport) -> SweepReport | None:
    """The sweep's model from a run's report; None when the run is not a sweep."""
    roles = {r.get("role") for r in run.records}
    if sweeps.TIMED not in roles:
        return None
    timed_view = next(view for view in run.tasks if any(r.get("role") == sweeps.TIMED for r in view.records))
    task = timed_view.task
    timed = [r for r in timed_view.records if r.get("role") == sweeps.TIMED]
    recipe, precision = timed[0]["recipe"], timed[0]["precision"]
    points: dict = {}
    for r in timed:
        sizes = point_sizes(r, task)
        if sizes not in points and task is not None and task.step_cost is not None:
            cost = task.step_cost(r["size"], r["recipe"], precision=precision, **dict(r.get("options") or {}))
            points[sizes] = Point(sizes, cost.flops, cost.dense_flops, cost.bytes,
                                  getattr(cost, "activation_bytes", 0.0))
    report = SweepReport(run, task, recipe, precision, sorted(points.values(), key=lambda p: p.flops), [], [])
    for view in run.tasks:
        for r in view.records:
            if r.get("status") != "ok":
                if r.get("role"):
                    report.unfinished.append(r)
                continue
            if r.get("role") == sweeps.CEILING:
                metrics = r.get("metrics") or {}
                report.ceilings.append(Ceiling(r["backend"], r["variant"], r["device"], r["precision"],
                                               metrics.get("peak_matmul_gflops"), metrics.get("bandwidth_gbs"),
                                               metrics.get("largest_n"), timing_flag(r)))
    for r in timed_view.records:
        key = (r["variant"], r["device"], point_sizes(r, task))
        if r.get("role") == sweeps.TIMED and r.get("status") == "ok" and r.get("step_median_s"):
            report.timings.append(Timing(r["variant"], r["backend"], r["device"], points[key[2]],
                                         r["step_median_s"], r.get("step_iqr_s"), timing_flag(r)))
        if r.get("precision") == sweeps.CHECK_PRECISION and r.get("role") in (sweeps.TIMED, sweeps.CHECK):
            report.checks[key] = timed_view.judgement(r)
            report.check_records[key] = r
    return report


def point_sizes(record: dict, task) -> tuple:
    options = record.get("options") or {}
    names = task.sweep.sizes if task is not None and task.sweep is not None else sorted(options)
    return tuple((name, options.get(name)) for name in names)  # in the task's order of its sizes


# ------------------------------------------------------------------------------------------ formats

def si(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".strip()


def ms(t: Timing | None) -> str:
    return "" if t is None else f"{t.step_s * 1e3:.3g}" + (DAGGER if t.flag else "")


def pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def name_of(report: SweepReport, variant: str, device: str) -> str:
    return variant if len(report.devices) == 1 else f"{variant} ({device})"


# ------------------------------------------------------------------------------------------ sections

def sections(report: SweepReport, figures: bool = False) -> list[Section]:
    """The sweep's sections; with figures, the HTML of each device's grid embeds its two plots."""
    found = [ceiling_section(report), points_section(report)]
    for device in report.devices:
        if report.series(device):
            found += [grid_section(report, device, figures), fastest_section(report, device),
                      crossover_section(report, device), largest_section(report, device)]
    found.append(correctness_section(report))
    if report.unfinished:
        found.append(unfinished_section(report))
    return found


def section(title: str, intro: str, rows: list[dict], columns: list[str] | None = None,
            after: str = "") -> Section:
    html_table, md_table = table(rows, columns) if rows else ("", "")
    paragraphs = [p for p in (intro, after) if p]
    return Section(title, "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[:1]) + html_table
                   + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[1:]),
                   "\n\n".join(x for x in (intro, md_table, after) if x))


def ceiling_section(report: SweepReport) -> Section:
    if not report.ceilings:
        return section("The machine's ceiling", "No ceiling was measured in this run (no ceiling cell finished): "
                       "the rates below are not read against the machine's.", [])
    rows = []
    for backend in dict.fromkeys(c.backend for c in report.ceilings):
        for device in report.devices:
            f32, f64 = (report.ceiling_of(backend, device, p) for p in sweeps.CEILING_PRECISIONS)
            if f32 is None and f64 is None:
                continue
            first = f32 or f64
            rows.append({"framework": report.run.registry.backends[backend].display_name
                         if backend in report.run.registry.backends else backend,
                         "device": device, "matmul n": first.n,
                         "float32 GFLOP/s": _rate(f32), "float64 GFLOP/s": _rate(f64),
                         "bandwidth GB/s": f"{first.bandwidth_gbs:.3g}" if first.bandwidth_gbs else ""})
    intro = ("Measured in this run, before the grid, on the same threads: each framework's matmul of two n x n "
             "matrices (the median of repeated calls), and the memory's bandwidth, a copy of 1 GiB counted as "
             "bytes read plus bytes written. The machine's ceiling is the highest rate any framework reached.")
    return section("The machine's ceiling", intro, rows)


def _rate(c: Ceiling | None) -> str:
    return "" if c is None or not c.matmul_gflops else f"{c.matmul_gflops:.3g}" + (DAGGER if c.flag else "")


def points_section(report: SweepReport) -> Section:
    rows = []
    for p in report.points:
        row = {"point": p.label, "FLOPs per step": si(p.flops), "in matmuls": pct(p.dense_flops / p.flops),
               "least bytes": si(p.bytes, "B"), "FLOPs per byte": f"{p.intensity:.3g}"}
        if p.activation_bytes:
            row["unfused bytes"] = si(p.bytes + p.activation_bytes, "B")
        for device in report.devices:
            where = f" ({device})" if len(report.devices) > 1 else ""
            for unfused, name in ((False, "roofline GFLOP/s"), (True, "unfused roofline GFLOP/s")):
                bound = report.roofline(p, device, unfused)
                if bound is not None or not unfused:
                    row[name + where] = "" if bound is None else f"{bound:.3g}"
        rows.append(row)
    intro = (f"One step of recipe {report.recipe} as the task counts it (step_cost: forward, backward and update, "
             "a multiply-add counted as 2), the least bytes a step must move (the batch, the parameters and the "
             "optimizer's state read and written once), and the roofline's bound there: min(peak matmul, FLOPs "
             "per byte x bandwidth). Where the task counts them, the unfused bytes add every intermediate array "
             "written once and read once, as a step that runs each operation as its own kernel moves them; its "
             "roofline is the bound such a step cannot pass.")
    return section("The points", intro, rows)


def grid_section(report: SweepReport, device: str, figures: bool = False) -> Section:
    series = report.series(device)
    peak = report.peak(device)
    rows = []
    for variant, timings in series.items():
        by_point = {t.point: t for t in timings}
        row = {"variant": variant}
        for p in report.points:
            t = by_point.get(p)
            row[p.label] = "" if t is None else (ms(t) + f" ms · {t.gflops:.3g}"
                                                 + (f" ({t.gflops / peak.matmul_gflops:.1%})" if peak else ""))
        rows.append(row)
    intro = (f"Median step time and achieved GFLOP/s (the task's count over the step time) on {device}, "
             f"{report.precision}; in brackets the share of the machine's matmul ceiling"
             + (f" ({peak.matmul_gflops:.3g} GFLOP/s, {peak.backend})" if peak else "") + ".")
    plain = section(f"Step time and GFLOP/s ({device})", intro, rows, after=_flag_note(report, device))
    if not figures:
        return plain
    images = "".join(f"<figure>{figure_png(sweep_figure(report, device, kind), alt)}<figcaption>{alt}</figcaption>"
                     "</figure>" for kind, alt in FIGURES.items())
    return Section(plain.title, images + plain.html, plain.markdown)


FIGURES = {"time": "median step time against FLOPs per step, log-log, one line per variant",
           "rate": "achieved GFLOP/s against FLOPs per step, with the machine's ceiling measured in this run: "
                   "the peak matmul (dashed), the roofline's bound at each point (dotted) and, where the task "
                   "counts its intermediate arrays, the unfused roofline (dash-dot)"}


def _flag_note(report: SweepReport, device: str) -> str:
    flagged = [t for t in report.timings if t.device == device and t.flag]
    if not flagged:
        return ""
    kinds: dict = {}
    for t in flagged:  # "busy machine (others took 122% of a CPU)" -> "busy machine"
        for reason in t.flag.split("; "):
            kind = reason.split(" (")[0].split(" ")[0] if reason.startswith("spread") else reason.split(" (")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
    reasons = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
    return (f"{DAGGER} {len(flagged)} of {sum(t.device == device for t in report.timings)} timings are flagged "
            f"({reasons}; each record's load says how busy): measure again on a quiet machine before trusting them.")


def fastest_section(report: SweepReport, device: str) -> Section:
    rows = []
    for p in report.points:
        ranked = report.at(p, device)
        if not ranked:
            continue
        first = ranked[0]
        second = ranked[1] if len(ranked) > 1 else None
        rows.append({"point": p.label, "FLOPs per step": si(p.flops), "fastest": first.variant,
                     "step ms": ms(first), "GFLOP/s": f"{first.gflops:.3g}",
                     "share of ceiling": pct(_share(report, first, device)),
                     "runner-up": second.variant if second else "",
                     "runner-up is slower by": f"{second.step_s / first.step_s:.2f}x" if second else ""})
    intro = f"The fastest variant at each point on {device}, by median step time."
    return section(f"Fastest at each size ({device})", intro, rows, after=_flag_note(report, device))


def _share(report: SweepReport, t: Timing, device: str) -> float | None:
    peak = report.peak(device)
    return t.gflops / peak.matmul_gflops if peak else None


def crossover_section(report: SweepReport, device: str) -> Section:
    found = report.crossovers(device)
    rows = [{**c, "at about": si(c["at about"], "FLOP per step")} for c in found]
    leaders = report.leaders(device)
    if not found:
        intro = (f"No two leading variants ({', '.join(leaders)}) change places between the points on {device}."
                 if len(leaders) > 1 else f"One variant leads at every point on {device}.")
        return section(f"Crossovers ({device})", intro, [])
    intro = (f"Where two of the leading variants on {device} (first or second at some point: {', '.join(leaders)}) "
             "change places; the crossing is interpolated in log-log between the two points around it.")
    return section(f"Crossovers ({device})", intro, rows)


def largest_section(report: SweepReport, device: str) -> Section:
    largest = report.points[-1]
    rows = []
    for t in report.at(largest, device):
        own = report.ceiling_of(t.backend, device, report.precision)
        bound, unfused = report.roofline(largest, device), report.roofline(largest, device, unfused=True)
        row = {"variant": t.variant, "step ms": ms(t), "GFLOP/s": f"{t.gflops:.3g}",
               "of its framework's peak": pct(t.gflops / own.matmul_gflops if own else None),
               "of the machine's peak": pct(_share(report, t, device)),
               "of the roofline": pct(t.gflops / bound if bound else None)}
        if unfused is not None:
            row["of the unfused roofline"] = pct(t.gflops / unfused)
        rows.append(row)
    peak = report.peak(device)
    intro = (f"At the largest point ({largest.label}, {si(largest.flops)}FLOP per step) on {device}: each variant's "
             "achieved rate against its own framework's matmul peak, the machine's"
             + (f" ({peak.matmul_gflops:.3g} GFLOP/s, {peak.backend})" if peak else "")
             + " and the roofline's bound at this point's intensity.")
    return section(f"At the largest size ({device})", intro, rows)


def correctness_section(report: SweepReport) -> Section:
    rows = []
    rank = report.run.registry.rank
    keys = sorted(report.checks, key=lambda k: (k[1], rank(report.check_records[k]["backend"])))  # reference first
    for variant, device in dict.fromkeys((k[0], k[1]) for k in keys):
        row = {"variant": name_of(report, variant, device)}
        for p in report.points:
            j = report.checks.get((variant, device, p.sizes))
            row[p.label] = "" if j is None else (j.verdict + (f" {j.head:.1e}" if j.head is not None else ""))
        rows.append(row)
    steps = {r.get("steps") for r in report.check_records.values()}
    intro = (f"At every point a float64 run of {', '.join(str(s) for s in sorted(steps, key=str))} steps, each "
             "variant's losses against the reference's step by step (the verdict and the largest relative "
             "deviation; rosetta/judge.py).")
    return section("Correctness: float64 against the reference at each point", intro, rows)


def unfinished_section(report: SweepReport) -> Section:
    rows = [{"cell": r.get("cell"), "role": r.get("role"), "status": r.get("status"), "why": r.get("verdict")}
            for r in report.unfinished]
    return section("Cells that did not finish", "Skipped, failed or timed out; the rest of the sweep stands.", rows)


# ------------------------------------------------------------------------------------------ figures

def ceiling_lines(report: SweepReport, device: str) -> dict:
    """What the rate figure draws over the variants, from the run's own ceiling cells: the machine's peak matmul
    (a horizontal line) and the roofline's bound at each point (min(peak, intensity x bandwidth))."""
    peak = report.peak(device)
    if peak is None:
        return {}
    xs = [p.flops for p in report.points]
    lines = {"peak": (peak.matmul_gflops, f"peak matmul {peak.matmul_gflops:.3g} GFLOP/s ({peak.backend}, "
                                          f"{report.precision})"),
             "roofline": (xs, [report.roofline(p, device) for p in report.points])}
    unfused = [report.roofline(p, device, unfused=True) for p in report.points]
    if all(bound is not None for bound in unfused):
        lines["unfused"] = (xs, unfused)
    return lines


def sweep_figure(report: SweepReport, device: str, kind: str):
    """Log-log over FLOPs per step, one line per variant: step time (kind "time") or GFLOP/s ("rate", with
    the ceiling over them)."""
    series = report.series(device)
    if not series:
        return None
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(11, 5.5))
    # One colour per framework, one marker and dash per variant of it: eighteen lines stay told apart.
    frameworks = list(dict.fromkeys(timings[0].backend for timings in series.values()))
    palette = plt.get_cmap("tab10")
    seen: dict = {}
    for variant, timings in series.items():
        backend = timings[0].backend
        k = seen[backend] = seen.get(backend, -1) + 1
        xs = [t.point.flops for t in timings]
        ys = [t.step_s * 1e3 if kind == "time" else t.gflops for t in timings]
        ax.plot(xs, ys, label=variant, color=palette(frameworks.index(backend) % 10),
                marker="osD^v"[k % 5], linestyle=("-", "--", ":", "-.")[k % 4], markersize=5)
    if kind == "rate":
        lines = ceiling_lines(report, device)
        if lines:
            value, label = lines["peak"]
            ax.axhline(value, color="black", linestyle="--", linewidth=1.2, label=label)
            xs, bounds = lines["roofline"]
            ax.plot(xs, bounds, color="grey", linestyle=":", linewidth=1.5,
                    label="roofline: min(peak, FLOPs per byte x bandwidth)")
            if "unfused" in lines:
                xs, bounds = lines["unfused"]
                ax.plot(xs, bounds, color="black", linestyle="-.", linewidth=1.2,
                        label="unfused roofline: every intermediate array written and read once")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOPs per training step (the task's count)")
    ax.set_ylabel("median step time (ms)" if kind == "time" else "achieved GFLOP/s")
    ax.set_title(f"{report.run.run_id}: {report.task.name if report.task else ''} {report.recipe}, "
                 f"{report.precision}, {device}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside, never over
    figure.tight_layout()
    return figure


def write(run_dir, report: SweepReport) -> dict:
    """report.md (its figures as PNG files beside it) and report.html (figures embedded) of a sweep."""
    from pathlib import Path

    from rosetta.report.html import CSS, environment_html
    from rosetta.report.plots import save

    run_dir, run = Path(run_dir), report.run
    title = (f"Sweep {run.run_id}: {report.task.name if report.task else ''}, recipe {report.recipe}, "
             f"{report.precision}")
    written, images = {}, {}
    for device in report.devices:
        for kind in FIGURES:
            figure = sweep_figure(report, device, kind)
            if figure is not None:
                path = save(figure, run_dir / f"sweep-{kind}-{device}.png")
                images.setdefault(f"Step time and GFLOP/s ({device})", []).append(path)
                written[f"sweep {kind} {device}"] = path
    lines = [f"# {title}", ""]
    for s in sections(report):
        lines += [f"## {s.title}", "", s.markdown, ""]
        lines += [f"![{path.stem}]({path.name})\n" for path in images.get(s.title, [])]
    written["markdown"] = run_dir / "report.md"
    written["markdown"].write_text("\n".join(lines))
    body = "".join(f"<section><h2>{html.escape(s.title)}</h2>{s.html}</section>" for s in sections(report, True))
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            f"<header class='top'><h1>{html.escape(title)}</h1><div class='muted'>rebuilt from results.jsonl with "
            f"<code>rosetta report</code></div></header>{environment_html(run)}{body}\n</body></html>\n")
    written["html"] = run_dir / "report.html"
    written["html"].write_text(page, encoding="utf-8")
    return written
