"""Tables published in docs/, generated from committed runs, so that every published number has its data.

A page marks each table with the run folder it comes from (results.jsonl and command.txt, committed under
docs/results/ or reports/), and optionally the columns (rosetta/report/columns.py keys) and a filter, or a
section of the task's own report (tasks/<task>_report.py) by the start of its title:

    <!-- table: docs/results/classifier-float64 columns=variant,recipe,agreement,max_rel_dev_head where=device:cpu -->
    ...generated...
    <!-- end table -->
    <!-- table: docs/results/autograd section="Autograd: the gradient check" -->
    <!-- table: docs/results/sweep-classifier section="Fastest at each size" -->   (a sweep's sections)

`rosetta publish PAGE` rewrites every marked table from its run's records, through the same report model
(and the same judge) as the run's own report; tests/test_docs.py checks that each published table is what
its data gives.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from rosetta.errors import UsageError
from rosetta.registry import ROOT, Registry

MARK = re.compile(r"<!-- table: (?P<run>\S+)(?P<args>[^>]*?) -->\n(?P<body>.*?)<!-- end table -->", re.S)


@dataclass(frozen=True)
class Table:
    run: str  # the run folder, relative to the repository
    columns: tuple[str, ...] | None
    where: tuple[tuple[str, str], ...]
    body: str
    section: str | None = None


def tables(text: str) -> list[Table]:
    found = []
    for match in MARK.finditer(text):
        args = {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', match["args"])}
        columns = tuple(args["columns"].split(",")) if "columns" in args else None
        where = tuple(tuple(clause.split(":", 1)) for clause in args["where"].split(";")) if "where" in args else ()
        found.append(Table(match["run"], columns, where, match["body"], args.get("section")))
    return found


def render(table: Table, registry: Registry, page_dir: Path, root: Path = ROOT, loaded: dict | None = None) -> str:
    """The table's Markdown, from its run's results.jsonl, with the data and the command that made it.
    loaded: run folder -> its report, shared by the tables of one page (a run is read and judged once)."""
    from rosetta.report import columns, load

    run_dir = root / table.run
    results, command = run_dir / "results.jsonl", run_dir / "command.txt"
    for needed in (results, command):
        if not needed.exists():
            raise UsageError(f"{needed.relative_to(root)} is missing: a published table needs its run's data and "
                             "command committed")
    loaded = {} if loaded is None else loaded
    if run_dir not in loaded:
        loaded[run_dir] = load(run_dir, registry)
    report = loaded[run_dir]
    source = (f"Data: [{table.run}/results.jsonl]({os.path.relpath(results, page_dir)}), from "
              f"`{command.read_text().strip()}`; regenerate with `rosetta publish`.\n")
    if table.section:
        return _section(report, table) + "\n\n" + source
    frame = report.frame
    for key, value in table.where:
        if key not in frame:
            raise UsageError(f"{table.run}: cannot filter on {key!r}; columns: {', '.join(frame.columns)}")
        frame = frame[frame[key].astype(str) == value]
    keys = table.columns or columns.MARKDOWN
    unknown = [k for k in keys if k not in columns.BY_KEY]
    if unknown:
        raise UsageError(f"{table.run}: unknown column {', '.join(unknown)}; known: {', '.join(columns.BY_KEY)}")
    shown = columns.display_table(frame, keys, report.reference_name).to_markdown(index=False)
    return f"{shown}\n\n{source}"


def _section(report, table: Table) -> str:
    from rosetta.report import sweep
    from rosetta.report.sections import sections_for

    swept = sweep.build(report)  # a sweep's sections (rosetta/report/sweep.py), else the tasks' own
    every = sweep.sections(swept) if swept is not None else [s for view in report.tasks for s in sections_for(view)]
    found = [s for s in every if s.title.startswith(table.section)]
    if not found:
        titles = [s.title for s in every]
        raise UsageError(f"{table.run} has no report section titled {table.section!r}; its sections: "
                         f"{'; '.join(titles) or 'none'}")
    return found[0].markdown.strip()


def publish(page: Path, registry: Registry, root: Path = ROOT) -> int:
    """Rewrite every marked table of a page; returns how many there were."""
    text = page.read_text()
    found = tables(text)
    loaded: dict = {}
    rendered = [render(table, registry, page.parent, root, loaded) for table in found]  # all, before any write
    pieces, end = [], 0
    for match, body in zip(MARK.finditer(text), rendered):
        pieces += [text[end:match.start("body")], body]
        end = match.end("body")
    page.write_text("".join(pieces) + text[end:])
    return len(found)
