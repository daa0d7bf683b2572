"""The ladder's own report section: the grid, levels down and frameworks across.

Each cell holds the code of that level (its function in backends/<name>/ladder.py, named after the level:
"custom-function" -> custom_function), with the lines that differ from the level below highlighted; its lines
of code; its median step time and what the abstraction cost or saved against the level below (the ratio of
the step times, and the lines of code gained or lost); the achieved GFLOP/s; and its agreement with numpy. A
level a framework does not have is a cell that says which of its APIs comes closest (the skipped record's
reason). Reading one column teaches a framework; reading one row compares frameworks.

"The level below" is the recipe's `below` (tasks/ladder.py), or the next one down that chain that the
framework has: the TensorFlow graph is compared with GradientTape, Keras' fit() with its own by-hand level.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import html
from pathlib import Path

from rosetta.report.sections import Section
from tasks.ladder import RECIPES, flops_per_step

LEVELS = list(RECIPES)


# ------------------------------------------------------------------------------------------ code

def function_name(level: str) -> str:
    return level.replace("-", "_")


def level_sources(path: Path) -> dict:
    """level -> the source of its function (dedented), for each level the module defines."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef):
            for level in LEVELS:
                if node.name == function_name(level):
                    found[level] = "\n".join(lines[node.lineno - 1:node.end_lineno])
    return found


def lines_of_code(source: str) -> int:
    """Lines that are neither blank nor comments nor docstrings, the def line included."""
    count, in_doc = 0, False
    for line in source.splitlines():
        stripped = line.strip()
        if in_doc:
            in_doc = not stripped.endswith('"""')
            continue
        if stripped.startswith('"""'):
            in_doc = not (len(stripped) > 3 and stripped.endswith('"""'))
            continue
        if stripped and not stripped.startswith("#"):
            count += 1
    return count


def changed_lines(source: str, below: str | None) -> list[int]:
    """1-based numbers of the lines of `source` that are not in `below` (compared stripped, in order); the
    def line, which always differs by its name, is left out."""
    if below is None:
        return []
    mine = [line.strip() for line in source.splitlines()]
    theirs = [line.strip() for line in below.splitlines()]
    matcher = difflib.SequenceMatcher(None, theirs, mine, autojunk=False)
    same = set()
    for block in matcher.get_matching_blocks():
        same.update(range(block.b, block.b + block.size))
    return [i + 1 for i, line in enumerate(mine) if i > 0 and line and i not in same]


def below_of(level: str, present: set) -> str | None:
    """The level this one is compared with: its recipe's `below`, or the next one down that chain the
    framework has."""
    below = RECIPES[level].below
    while below is not None and below not in present:
        below = RECIPES[below].below
    return below


# ------------------------------------------------------------------------------------------ grid

def _groups(records):
    """(precision, device, size, steps) -> records, the float64 CPU runs first."""
    groups = {}
    for r in records:
        if r.get("recipe") in RECIPES and r.get("status") in ("ok", "skipped"):
            groups.setdefault((r.get("precision"), r.get("device"), r.get("size"), r.get("steps")), []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0] != "float64", kv[0][1] != "cpu", str(kv[0]))))


def grid(view, records) -> dict:
    """The grid of one group of records: {"columns": [(key, label)], "cells": {(level, key): cell}}; the key is the
    backend's name (with the variant, where the records hold several variants of one backend)."""
    backends = view.registry.backends
    pairs = list(dict.fromkeys((r["backend"], r.get("variant")) for r in records))
    several = {b for b, _ in pairs if sum(1 for other, _ in pairs if other == b) > 1}
    columns, labels = [], {}
    cells = {}
    for backend_name, variant in pairs:
        # one column per framework; per variant only where a run holds several variants of one framework
        name = f"{backend_name} ({variant})" if backend_name in several else backend_name
        columns.append(name)
        labels[name] = view.display_name(backend_name) + (f" ({variant})" if backend_name in several else "")
        mine = {r["recipe"]: r for r in records if r["backend"] == backend_name and r.get("variant") == variant}
        backend = backends.get(backend_name)
        found = backend.module_for(view.task) if backend is not None and view.task is not None else None
        sources = level_sources(found[1]) if found and found[1].exists() else {}
        digest = hashlib.sha256(found[1].read_bytes()).hexdigest() if sources else None
        present = {level for level, r in mine.items() if r.get("status") == "ok" and level in sources}
        for level in LEVELS:
            r = mine.get(level)
            if r is None:
                continue
            if r.get("status") != "ok":
                cells[(level, name)] = {"status": "skipped",
                                        "why": (r.get("verdict") or "").removeprefix("skipped: ")}
                continue
            source = sources.get(level)
            below = below_of(level, present)
            step = r.get("step_median_s")
            size = r.get("size") or (r.get("report_data") or {}).get("sizes", [None])[0]
            flops = (r.get("metrics") or {}).get("flops_per_step") or (flops_per_step(size) if size else None)
            j = view.judgement(r)
            cell = {"status": "ok", "source": source, "loc": lines_of_code(source) if source else None,
                    "step_s": step, "gflops": flops / step / 1e9 if flops and step else None,
                    "below": below, "changed": changed_lines(source, sources.get(below)) if source else [],
                    "deviation": j.head if j is not None else None, "verdict": j.verdict if j is not None else None,
                    # the code shown is the file as it is now; say so when it is not the code that ran
                    "code_changed": bool(r.get("source_sha256") and digest and r["source_sha256"] != digest)}
            if below is not None and below in mine and mine[below].get("status") == "ok":
                below_step = mine[below].get("step_median_s")
                cell["vs_below"] = step / below_step if step and below_step else None
                below_loc = lines_of_code(sources[below]) if below in sources else None
                cell["loc_change"] = cell["loc"] - below_loc if cell["loc"] is not None and below_loc else None
            cells[(level, name)] = cell
    return {"columns": [(name, labels[name]) for name in columns], "cells": cells}


def cell_summary(cell: dict | None) -> str:
    """One line of the cell's numbers (the Markdown grid, and the HTML cell's header)."""
    if cell is None:
        return "not run"
    if cell["status"] != "ok":
        return "skipped: " + cell["why"]
    parts = []
    if cell.get("loc") is not None:
        change = cell.get("loc_change")
        parts.append(f"{cell['loc']} lines" + (f" ({change:+d} vs {cell['below']})" if change is not None else ""))
    if cell.get("step_s"):
        ratio = cell.get("vs_below")
        parts.append(f"{1e3 * cell['step_s']:.3g} ms/step" + (f" (x{ratio:.2f} vs {cell['below']})" if ratio else ""))
    if cell.get("gflops"):
        parts.append(f"{cell['gflops']:.3g} GFLOP/s")
    if cell.get("deviation") is not None:
        parts.append(f"dev {cell['deviation']:.1e}")
    if cell.get("verdict"):
        parts.append(str(cell["verdict"]))
    if cell.get("code_changed"):
        parts.append("the code shown changed since this run")
    return ", ".join(parts)


def _code_html(cell: dict) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    if not cell.get("source"):
        return "<p class='muted'>(the module has no function for this level)</p>"
    formatter = HtmlFormatter(cssclass="hl", hl_lines=cell.get("changed") or [])
    return highlight(cell["source"], PythonLexer(), formatter)


def grid_html(data: dict) -> str:
    head = "<th>level</th>" + "".join(f"<th>{html.escape(label)}</th>" for _, label in data["columns"])
    rows = []
    for level in LEVELS:
        cells = [data["cells"].get((level, name)) for name, _ in data["columns"]]
        if all(c is None for c in cells):
            continue
        tds = []
        for cell in cells:
            summary = html.escape(cell_summary(cell))
            if cell is None or cell["status"] != "ok":
                tds.append(f"<td class='muted'>{summary}</td>")
            else:
                tds.append(f"<td><div class='ladder-numbers'>{summary}</div>{_code_html(cell)}</td>")
        recipe = RECIPES[level]
        rows.append(f"<tr><th><b>{html.escape(level)}</b><div class='muted'>{html.escape(recipe.summary)}"
                    f"</div></th>{''.join(tds)}</tr>")
    style = ("<style>.ladder td, .ladder th { vertical-align: top; min-width: 22em; } .ladder .hll "
             "{ background-color: #fff3a8; } .ladder pre { font-size: 11px; } .ladder-numbers "
             "{ font-size: 12px; margin-bottom: 4px; }</style>")
    return (f"{style}<div class='scroll ladder'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def grid_markdown(data: dict) -> str:
    escape = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    lines = ["| level | " + " | ".join(escape(label) for _, label in data["columns"]) + " |",
             "|" + "---|" * (len(data["columns"]) + 1)]
    for level in LEVELS:
        cells = [data["cells"].get((level, name)) for name, _ in data["columns"]]
        if all(c is None for c in cells):
            continue
        lines.append(f"| {level} | " + " | ".join(escape(cell_summary(c)) for c in cells) + " |")
    return "\n".join(lines)


def arithmetic_sentence(records) -> str:
    size = next((r.get("size") for r in records if r.get("size")), None)
    if not size:
        return ""
    flops = flops_per_step(size)
    return (f"At N = {size} a step is {flops / 1e6:.1f} MFLOP (five matmuls and the update), so arithmetic, not "
            f"each framework's per-operation overhead, dominates a step: this is the suite's first task where "
            f"the GFLOP/s a level achieves is the measure of its cost.")


def sections(view) -> list[Section]:
    out = []
    for (precision, device, size, steps), records in _groups(view.records).items():
        data = grid(view, records)
        if not data["cells"]:
            continue
        title = f"The ladder, {precision} on {device} (N = {size}, {steps} steps)"
        legend = ("Levels down, frameworks across. Each cell: the level's code with the lines that differ from "
                  "the level below highlighted; its lines of code (and the change against the level below); the "
                  "median step time (and its ratio to the level below's: above 1 the abstraction costs, below 1 "
                  "it saves); the achieved GFLOP/s; the max relative deviation of its loss curve from numpy's "
                  "and the verdict. A skipped cell names what comes closest in that framework. "
                  + arithmetic_sentence(records))
        out.append(Section(title, f"<p class='muted'>{html.escape(legend)}</p>{grid_html(data)}",
                           f"{legend} (The code of each cell is in report.html.)\n\n{grid_markdown(data)}"))
    return out
