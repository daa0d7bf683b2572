"""Task-specific parts of the reports: rosetta/report_sections/<task module>.py defines
`sections(records) -> list[Section]`, which report.md and report.html show after the task's results table.
A task without such a module gets the generic report only (loss curves, deviation from numpy, timings, code).
"""

from __future__ import annotations

import base64
import html
import importlib
import io
from dataclasses import dataclass

from rosetta.registry import task_module_name


@dataclass
class Section:
    title: str
    html: str
    markdown: str


def sections_for(task: str, records: list[dict]) -> list[Section]:
    """The task's own sections; a section module that fails is one section saying so, never a lost report."""
    try:
        module = importlib.import_module(f"rosetta.report_sections.{task_module_name(task)}")
    except ModuleNotFoundError as error:
        if error.name != f"rosetta.report_sections.{task_module_name(task)}":
            raise
        return []
    try:
        return list(module.sections(records))
    except Exception as error:  # a report must still be written for every other part of the run
        text = f"this section could not be drawn: {type(error).__name__}: {error}"
        return [Section(f"{task}: task-specific tables", f"<p class='bad'>{html.escape(text)}</p>", text)]


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
