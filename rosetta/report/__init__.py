"""The reports of a run, rebuilt from results.jsonl alone: one model (model.py), several renderers.

    model.py      records -> RunReport: judged once (rosetta/judge.py), grouped by task, ordered by the registry
    columns.py    the comparison table's columns: headers, formats, meanings
    text.py       the words: environment, legends, takeaways, declared differences
    plots.py      matplotlib figures from a TaskView
    sections.py   a task's own sections (tasks/<task>_report.py) and the helpers they draw with
    sweep.py      a sweep's report: the grid against the machine's ceiling (rosetta/sweeps.py)
    terminal.py, markdown.py, html.py, and CSV here: the renderers

`write_reports(run_dir, registry)` writes results.csv, report.md, the PNG plots and report.html.
"""

from __future__ import annotations

from pathlib import Path

from rosetta.report import html, markdown, plots, sweep
from rosetta.report.model import RunReport, build
from rosetta.results import read_records


def load(run_dir: Path, registry) -> RunReport:
    return build(read_records(Path(run_dir) / "results.jsonl"), registry)


def write_reports(run_dir: Path, registry) -> dict[str, Path]:
    """Rebuild every report of a run directory from its results.jsonl; returns what was written."""
    run_dir = Path(run_dir)
    report = load(run_dir, registry)
    written = {"csv": run_dir / "results.csv", "markdown": run_dir / "report.md"}
    report.frame.to_csv(written["csv"], index=False)
    swept = sweep.build(report)
    if swept is not None:  # a sweep's report reads the grid against the ceiling
        return {"csv": written["csv"], **sweep.write(run_dir, swept)}
    with_curves = [view for view in report.tasks if plots.curves(view)]
    pngs: dict = {}
    for view in with_curves:
        suffix = "" if len(with_curves) == 1 else f"-{view.name}"
        for name, draw, stem in (("loss curves", plots.loss_curves, "loss_curves"),
                                 ("deviation from the reference", plots.deviation, "deviation")):
            figure = draw(view)
            if figure is not None:
                path = plots.save(figure, run_dir / f"{stem}{suffix}.png")
                pngs.setdefault(view.name, {})[name] = path
                written[f"{name}{suffix}"] = path
    written["markdown"].write_text(markdown.render(report, pngs))
    written["html"] = html.write_html(run_dir, report)
    return written
