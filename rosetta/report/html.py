"""report.html: the comparison people read, as one self-contained file rendered from the report model.

Everything is inline: the CSS, the plots (matplotlib figures as base64 PNG) and the syntax-highlighted
code (pygments, inline CSS). No script, no font, no request leaves the page, so it opens from a mail
attachment or an air-gapped machine.

Per task: the takeaways, how each variant and recipe runs, what the timings measure at the run's size, the
results table, the task's own sections, the plots (loss curves, deviation from the reference, time /
throughput / memory bars, accuracy bars, and for a task on a 2-D input domain the data and each backend's
decision regions), and the Rosetta view: each backend's implementation of the task, read from
backends/<name>/<task>.py, side by side.

Layout (tests/test_html.py checks it in Chromium at 390, 1366, 1920 and 2560 px): wide tables scroll inside
their own box, the results table keeping its first column in view; the code panels sit in a grid that wraps
to the window, and checkboxes (CSS :has() and :checked, no script) pick the frameworks shown, wrap long lines
or give each panel the whole width.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

from rosetta import judge
from rosetta.report import columns, plots
from rosetta.report.sections import sections_for
from rosetta.report.text import (BLANKS, ZERO_THREADS, environment, legend, load_line, machine_line, node_lines,
                                 notes_of, scale_lines, task_takeaway, variant_lines, verdict_lines,
                                 zero_threads_read_back)
from rosetta.task import file_stem

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; --ok: #1a7f37;
        --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 clamp(10px, 2.2vw, 28px) 40px; color: var(--fg); background: #fff; line-height: 1.45;
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { padding: 22px 0 10px; border-bottom: 1px solid var(--line); margin-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; overflow-wrap: anywhere; } h2 { font-size: 20px; margin: 34px 0 8px; padding-bottom: 4px;
border-bottom: 1px solid var(--line); } h3 { font-size: 16px; margin: 24px 0 6px; }
p, li { max-width: 1100px; overflow-wrap: anywhere; } .muted { color: var(--muted); } code { font-size: 12.5px; }
nav.toc { margin: 8px 0 0; font-size: 13px; display: flex; flex-wrap: wrap; gap: 2px 14px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
dl.env { display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: 2px 16px;
          margin: 10px 0; }
dl.env dt { color: var(--muted); overflow-wrap: anywhere; } dl.env dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table.results td:first-child, table.results th:first-child { position: sticky; left: 0; z-index: 1;
    box-shadow: 1px 0 0 var(--line); }
table.results td:first-child { background: #fff; } table.results tbody tr:nth-child(even) td:first-child { background: #fbfcfd; }
table.results th:first-child { z-index: 2; }
dl.how { display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: 2px 16px; margin: 6px 0; }
dl.how dt { font-weight: 600; overflow-wrap: anywhere; } dl.how dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 4px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; white-space: nowrap; text-align: left; }
th { background: var(--bg-soft); position: sticky; top: 0; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 240px; max-width: 520px; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; } .declared { color: var(--warn); }
figure { margin: 14px 0 20px; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
section img { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; max-width: 1100px; margin-top: 4px; }
pre.stderr { background: var(--bg-soft); padding: 8px; font-size: 12px; overflow-x: auto; max-height: 320px; }
.toggles { margin: 6px 0 10px; font-size: 13px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
.toggles label { cursor: pointer; white-space: nowrap; } .toggles .layout { color: var(--muted); }
.rosetta { display: grid; gap: 10px; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr));
           align-items: start; }
.panel { border: 1px solid var(--line); background: #fff; min-width: 0; }
.panel header { position: sticky; top: 0; z-index: 1; background: var(--bg-soft); padding: 6px 10px;
                border-bottom: 1px solid var(--line); font-size: 13px; white-space: normal; }
.panel header b { font-size: 14px; } .panel header div { color: var(--muted); font-size: 12px; }
.panel .code { overflow: auto; max-height: 80vh; }
.panel .code pre { margin: 0; padding: 8px 10px; font-size: 12px; line-height: 1.4; }
.rosetta-view:has(.wrap-lines:checked) .panel .code pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.rosetta-view:has(.one-per-row:checked) .rosetta { grid-template-columns: minmax(0, 1fr); }
@media (max-width: 600px) {
  dl.env, dl.how { grid-template-columns: minmax(0, 1fr); } dl.env dd, dl.how dd { margin-bottom: 6px; }
  h2 { font-size: 18px; } .panel .code { max-height: 70vh; }
}
.linenos, .hl .linenos { color: #8c959f; user-select: none; padding-right: 6px; }
"""


def write_html(run_dir: Path, report) -> Path:
    path = Path(run_dir) / "report.html"
    path.write_text(render(report), encoding="utf-8")
    return path


def render(report) -> str:
    from pygments.formatters import HtmlFormatter

    names = [view.name for view in report.tasks]
    body = [f"<header class='top'><h1>Rosetta run {_e(report.run_id)}</h1>",
            f"<div class='muted'>{len(report.records)} cells, task{'s' if len(names) > 1 else ''} "
            f"{_e(', '.join(names))}; rebuilt from results.jsonl with <code>rosetta report</code></div>",
            "<nav class='toc'><a href='#environment'>environment</a>"
            + "".join(f"<a href='#{_id(t)}-results'>{_e(t)}: results</a><a href='#{_id(t)}-plots'>plots</a>"
                      f"<a href='#{_id(t)}-code'>code</a>" for t in names)
            + "</nav></header>", environment_html(report)]
    for view in report.tasks:
        body.append(task_html(view, report.frame[report.frame["task"] == view.name]))
    style = CSS + HtmlFormatter(style="default").get_style_defs(".hl")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Rosetta run {_e(report.run_id)}</title><style>{style}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------ environment

def environment_html(report) -> str:
    env = environment(report)
    rows = [("machine", machine_line(m)) for m in env["machines"].values()]
    if len(env["machines"]) > 1:
        rows.append(("", "the cells ran on different machines: compare timings only within one machine"))
    rows += [("node", line) for line in node_lines(env)]
    rows += [("GPU", env["gpu"]), ("threads", env["threads"])]
    rows += [(f"threads in effect ({', '.join(map(str, variants))})", found)
             for found, variants in env["threads_in_effect"].items()]
    if zero_threads_read_back(env):
        rows.append(("0 threads", ZERO_THREADS))
    rows += [("load", load_line(env).removeprefix("machine load: ")), ("rosetta", env["rosetta"])]
    parts = ["<section id='environment'><h2>Environment</h2><dl class='env'>"]
    parts += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows]
    parts.append("</dl><div class='scroll'><table><thead><tr><th>framework</th><th>version</th>"
                 "<th>environment</th><th>Python</th><th>variants run</th></tr></thead><tbody>")
    for (name, version), info in env["frameworks"].items():
        parts.append(f"<tr><td>{_e(name)}</td><td>{_e(version)}</td><td>{_e(info['environment'])}</td>"
                     f"<td>{_e(info['python'])}</td><td>{_e(', '.join(map(str, info['variants'])))}</td></tr>")
    parts.append("</tbody></table></div></section>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ task

def task_html(view, frame) -> str:
    counts = frame["status"].value_counts().to_dict()
    parts = [f"<section id='{_id(view.name)}-results'><h2>{_e(view.name)}</h2>"]
    if view.task is not None:
        parts.append(f"<p>{_e(view.task.summary)}.</p>")
    parts.append("<p class='muted'>" + ", ".join(f"{n} {s}" for s, n in counts.items()) + "</p>")
    glance = task_takeaway(view) + verdict_lines(view)
    if glance:
        parts.append("<h3>At a glance</h3><ul class='glance'>" + "".join(f"<li>{_e(g)}</li>" for g in glance)
                     + "</ul>")
    parts.append(how_it_runs(view))
    scale = scale_lines(view)
    if scale:
        parts.append("<h3>What the timings measure at this size</h3><ul class='scale'>"
                     + "".join(f"<li>{_e(line)}</li>" for line in scale) + "</ul>")
    parts.append("<h3>Results</h3>")
    ran = frame[~frame["status"].isin(("skipped", "unavailable", "not-installed"))]
    if ran.empty:
        parts.append("<p>No cell of this task ran.</p>")
    else:
        parts.append(results_table(ran, view.reference_name))
        text = legend(view, ran)
        if text:
            parts.append(f"<p class='muted'>{_e(text)}</p>")
        parts.append(f"<p class='muted'>{_e(BLANKS)}</p>")
    for section in sections_for(view):
        parts += [f"<h3>{_e(section.title)}</h3>", section.html]
    declared, notes = notes_of(view)
    if declared:
        parts.append("<h3>Where a framework's result differs from the reference, declared and measured</h3><ul>")
        parts += [f"<li><b>{_e(who)}</b>: {_e(why)}</li>" for who, why in declared]
        parts.append("</ul>")
    if notes:
        parts.append("<h3>Notes the backends left</h3><ul>")
        parts += [f"<li><b>{_e(who)}</b>: {_e(note)}</li>" for who, note in notes]
        parts.append("</ul>")
    for r in view.failed:
        text = r.get("stderr_tail") or (r.get("error") or "").strip()[-2000:]
        parts.append(f"<h3 class='bad'>{_e(r['cell'])}: {_e(r.get('verdict'))}</h3>"
                     + (f"<pre class='stderr'>{_e(text)}</pre>" if text else ""))
    if view.idle:
        parts += ["<h3>Cells that did not run</h3>", idle_table(view.idle)]
    parts.append("</section>")

    parts.append(f"<section id='{_id(view.name)}-plots'><h2>{_e(view.name)}: plots</h2>")
    drawn = task_plots(view)
    if not drawn:
        parts.append("<p>No cell ran a training, so there is nothing to plot.</p>")
    for title, png, caption in drawn:
        parts.append(f"<figure><img alt='{_e(title)}' src='data:image/png;base64,{png}'>"
                     f"<figcaption><b>{_e(title)}</b>. {_e(caption)}</figcaption></figure>")
    parts.append("</section>")
    parts.append(code_html(view))
    return "\n".join(parts)


def how_it_runs(view) -> str:
    """One line per variant that ran (the adapters' VARIANTS) and per recipe that ran (the spec's RECIPES)."""
    variants = variant_lines(view)
    recipes = [] if view.task is None else [
        (name, getattr(view.task.recipes.get(name), "summary", ""))
        for name in dict.fromkeys(r.get("recipe") for r in view.ran) if name in view.task.recipes]
    if not variants and not recipes:
        return ""
    parts = ["<h3>How each variant runs</h3><dl class='how'>"]
    parts += [f"<dt>{_e(v)}</dt><dd>{_e(how)}</dd>" for v, how in variants]
    parts.append("</dl>")
    if recipes and any(summary for _, summary in recipes):
        parts.append("<h3>Recipes</h3><dl class='how'>")
        parts += [f"<dt>{_e(name)}</dt><dd>{_e(summary)}</dd>" for name, summary in recipes]
        parts.append("</dl>")
    return "".join(parts)


def results_table(ran, reference: str | None) -> str:
    keys = [k for k in columns.HTML if k in ran and (k in columns.ALWAYS_SHOWN or ran[k].notna().any())]
    head = "".join(f"<th title='{_e(columns.BY_KEY[k].meaning)}'>{_e(columns.header(columns.BY_KEY[k], reference))}"
                   f"</th>" for k in keys)
    rows = []
    for _, row in ran[keys].iterrows():
        cells = []
        for k in keys:
            column = columns.BY_KEY[k]
            text = columns.formatted(row[k], column)
            css = "num" if column.fmt else ""
            if k == "verdict":
                css = "ok" if row[k] == "ok" else "bad"
            elif k == "agreement" and row[k]:
                css = {"ok": "ok", "declared": "declared", "warn": "warn", "bad": "bad"}.get(
                    judge.KIND.get(row[k], "bad"), "")
            elif k == "timing_flag" and text:
                css = "warn"
            cells.append(f"<td class='{css}'>{_e(text)}</td>" if css else f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='scroll'><table class='results'><thead><tr>{head}</tr></thead><tbody>"
            + "\n".join(rows) + "</tbody></table></div>")


def idle_table(idle: list[dict]) -> str:
    """Cells that did not run, one row per reason and variant (a GPU-less machine skips a dozen)."""
    grouped: dict = {}
    for r in idle:
        key = (r.get("verdict"), r.get("variant"), r.get("device"))
        grouped.setdefault(key, []).append(r)
    rows = []
    for (verdict, variant, device), group in grouped.items():
        recipes = [x for x in dict.fromkeys(r.get("recipe") for r in group) if x and x != "-"]
        rows.append((variant, device, ", ".join(recipes) or "-", len(group), verdict))
    body = "".join(f"<tr><td>{_e(v)}</td><td>{_e(d)}</td><td>{_e(rc)}</td><td class='num'>{n}</td>"
                   f"<td class='wrap'>{_e(why)}</td></tr>" for v, d, rc, n, why in rows)
    return ("<div class='scroll'><table><thead><tr><th>variant</th><th>device</th><th>recipes</th><th>cells</th>"
            f"<th>why</th></tr></thead><tbody>{body}</tbody></table></div>")


def task_plots(view) -> list[tuple[str, str, str]]:
    """(title, base64 PNG, caption) of each plot of one task."""
    drawn = []
    reference = view.reference_name or "the reference"
    figure = plots.loss_curves(view)
    if figure is not None:
        drawn.append(("Loss curves", plots.png_base64(figure), f"Training loss of every backend, one chart per "
                      f"recipe, smoothed over {plots.SMOOTHING} steps. Curves that agree lie on top of each other "
                      f"(line widths and dashes differ so each stays visible)."))
    figure = plots.deviation(view)
    if figure is not None:
        window = (f"judged over the steps left of the dotted line" if view.task.agreement_steps
                  else "judged over the whole run")
        drawn.append((f"Deviation from {reference}", plots.png_base64(figure),
                      f"|value - {reference}'s| / {reference}'s, of each backend's curve from the same data, "
                      f"initial weights and batches, as the largest value in each window of steps (exact "
                      f"agreement shows as the floor, 1e-16). The dashed line is the tolerance of the verdict, "
                      f"{window}; rounding grows through training."))
    figure = plots.time_bars(view)
    if figure is not None:
        drawn.append(("Time, throughput and memory", plots.png_base64(figure), "Median step time after warm-up "
                      "(the whisker, centred on the median, is one interquartile range wide), samples per second "
                      "at that median, compile + first step, and the worker's peak resident memory, per backend "
                      "and recipe; time and throughput on log scales."))
    figure = plots.accuracy_bars(view)
    if figure is not None:
        name = plots.accuracy_name(view)
        drawn.append((name[0].upper() + name[1:], plots.png_base64(figure), f"The {name} after training."))
    figure = plots.decision_regions(view)
    if figure is not None:
        drawn.append(("Data and decision regions", plots.png_base64(figure),
                      "Left: the training data, coloured by zone. Then, per recipe (rows) and backend (columns), "
                      "the class each backend's trained network predicts over the input square, computed in numpy "
                      "from the final parameters stored in results.jsonl; the dashed lines are the true zone "
                      "boundaries."))
    return drawn


# ------------------------------------------------------------------------------------------------ code

def code_html(view) -> str:
    """The Rosetta view: each backend's implementation of the task, highlighted, side by side."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    backends = view.registry.backends
    ran = list(dict.fromkeys(r["backend"] for r in view.ran if r["backend"] in backends))
    stem = file_stem(view.name)
    panels, toggles, rules = [], [], []
    for name in ran:
        backend = backends[name]
        found = backend.module_for(view.task) if view.task else None
        source = found[1] if found else None
        if source is None or not source.exists():
            continue
        text = source.read_text(encoding="utf-8")
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        recorded = {r.get("source_sha256") for r in view.records if r["backend"] == name and r.get("source_sha256")}
        if not recorded:
            state = "<span class='warn'>no digest in the records: the file as it is now</span>"
        elif recorded == {digest}:
            state = "<span class='ok'>the code that ran</span> (sha256 matches the records)"
        else:
            state = "<span class='bad'>changed since this run</span> (sha256 differs from the records)"
        shown = _shown(source, view.registry)
        key = _id(f"{view.name}-{name}")
        variants = "; ".join(f"{v}: {d}" for v, d in backend.variants.items()
                             if v in {r.get("variant") for r in view.ran if r["backend"] == name})
        formatter = HtmlFormatter(cssclass="hl", linenos="inline")
        toggles.append(f"<label><input type='checkbox' id='show-{key}' checked> {_e(backend.display_name)}</label>")
        rules.append(f"#rosetta-{_id(view.name)}:has(#show-{key}:not(:checked)) .panel-{key} {{ display: none; }}")
        panels.append(f"<div class='panel panel-{key}'><header><b>{_e(backend.display_name)}</b> "
                      f"<code>{_e(shown)}</code>, {len(text.splitlines())} lines; {state}"
                      f"<div>{_e(variants)}</div></header><div class='code'>"
                      f"{highlight(text, PythonLexer(), formatter)}</div></div>")
    parts = [f"<section id='{_id(view.name)}-code'><h2>{_e(view.name)}: the code, side by side</h2>"]
    if not panels:
        parts.append("<p>No backend implementation of this task is at hand.</p></section>")
        return "\n".join(parts)
    parts.append("<p class='muted'>Each backend's implementation, read from "
                 f"<code>backends/&lt;name&gt;/{_e(stem)}.py</code> when this report was built; the header says "
                 "whether it is byte for byte the file that ran. Tick the frameworks to compare: the panels "
                 "wrap to the width of the window, each scrolls on its own; wrap long lines, or give each panel "
                 "the whole width, with the last two boxes.</p>")
    toggles.append("<label class='layout'><input type='checkbox' class='wrap-lines'> wrap long lines</label>"
                   "<label class='layout'><input type='checkbox' class='one-per-row'> one panel per row</label>")
    parts.append(f"<style>{''.join(rules)}</style><div id='rosetta-{_id(view.name)}' class='rosetta-view'>"
                 f"<div class='toggles'>{''.join(toggles)}</div>"
                 f"<div class='rosetta'>{''.join(panels)}</div></div></section>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- helpers

def _shown(path: Path, registry) -> str:
    from rosetta.registry import ROOT
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _id(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text)).strip("-").lower()
