"""report.md: the comparison tables, each task's sections, what differs and why, and what failed."""

from __future__ import annotations

from pathlib import Path

from rosetta.report import columns
from rosetta.report.sections import sections_for
from rosetta.report.text import (BLANKS, environment_lines, legend, notes_of, scale_lines, task_takeaway,
                                 variant_lines, verdict_lines)


def render(report, plots: dict) -> str:
    parts = [f"# Rosetta run {report.run_id}", "", *[f"- {line}" for line in environment_lines(report)], ""]
    reference = report.reference_name
    for view in report.tasks:
        frame = report.frame[report.frame["task"] == view.name]
        parts += [f"## {view.name}", ""]
        if view.task is not None:
            parts += [view.task.summary + ".", ""]
        parts += [columns.display_table(frame, columns.MARKDOWN, reference).to_markdown(index=False), ""]
        parts += [legend(view, frame, markdown=True), "", BLANKS, ""]
        parts += [f"- {line}" for line in task_takeaway(view) + verdict_lines(view)] + [""]
        variants = variant_lines(view)
        if variants:
            parts += ["### How each variant runs", ""] + [f"- **{v}**: {how}" for v, how in variants] + [""]
        scale = scale_lines(view)
        if scale:
            parts += ["### What the timings measure at this size", ""] + [f"- {line}" for line in scale] + [""]
        for section in sections_for(view):
            parts += [f"### {section.title}", "", section.markdown, ""]
        declared, notes = notes_of(view)
        if declared:
            parts += ["### Where a framework's result differs from the reference, declared and measured", ""]
            parts += [f"- **{who}**: {why}" for who, why in declared] + [""]
        if notes:
            parts += ["### Notes the backends left", ""]
            parts += [f"- **{who}**: {note}" for who, note in notes] + [""]
        for r in view.failed:
            parts += [f"- **{r['cell']}**: {r.get('verdict')}", "", "```",
                      r.get("stderr_tail") or (r.get("error") or "").strip()[-2000:], "```", ""]
        for name, path in plots.get(view.name, {}).items():
            parts += [f"![{name}]({Path(path).name})", ""]
    return "\n".join(parts)
