"""A task's own parts of the reports: beside its spec, a module <spec module>_report (tasks/cnn_report.py)
defines `sections(view) -> list[Section]`, which report.md and report.html show after the task's results
table. `view` is the task's part of the report model (rosetta/report/model.py: its records in the
registry's order, each judged). A task without such a module gets the generic report only (loss curves,
deviation from the reference, timings, code). This module also holds the helpers sections draw with.

The same module may define `scale(view) -> list[str]`: what the per-step figures measure at the run's size,
in place of the generic words (rosetta/report/text.py scale_lines(): a step's arithmetic, from the trained
parameters the records keep and the batch, against the fastest step measured).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass



@dataclass
class Section:
    title: str
    html: str
    markdown: str


def sections_for(view) -> list[Section]:
    """The task's own sections; a section module that fails is one section saying so, never a lost report."""
    if view.task is None:
        return []
    try:
        module = view.task.report_module()
        return list(module.sections(view)) if module is not None else []
    except Exception as error:  # a report must still be written for every other part of the run
        text = f"this section could not be drawn: {type(error).__name__}: {error}"
        return [Section(f"{view.name}: task-specific tables", f"<p class='bad'>{html.escape(text)}</p>", text)]


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_png(figure, alt: str = "") -> str:
    """An <img> tag holding the figure as an embedded PNG (the figure is closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,{data}'>"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: list[dict], columns: list[str] | None = None) -> tuple[str, str]:
    """(html, markdown) of a list of row dicts; columns default to the keys in order of appearance."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    html_table = f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    escape = lambda text: _cell(text).replace("|", "\\|").replace("\n", " ")
    md = ["| " + " | ".join(escape(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(escape(row.get(c)) for c in columns) + " |" for row in rows]
    return html_table, "\n".join(md)
