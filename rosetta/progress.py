"""Progress of a run as it goes: a bar in the terminal (the CLI), an HTML bar updated in place in a notebook
(rosetta.run() in Jupyter), chosen by for_here().

A progress object has begin(total), started(job), finished(record, job) and end(); rosetta/runs.py calls
them as the executor starts and ends cells (with --repeats, each repeat counts)."""

from __future__ import annotations

import html
import sys
import time


def finished_cell(record: dict, job, repeats: int) -> tuple[int, str]:
    """How far a finished cell moves the bar, and the line that says how it ended."""
    flag = " [busy machine]" if (record.get("load") or {}).get("busy") else ""
    if repeats > 1:  # a cell that did not end "ok" is not repeated: its remaining repeats count as done
        done = record["repeat"]
        return (1 if record.get("status") == "ok" else repeats - done + 1,
                f"{job.cell.id} [{done}/{repeats}]: {record.get('verdict')}{flag}")
    return 1, f"{job.cell.id}: {record.get('verdict')}{flag}"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab): IPython is loaded and has a kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def for_here(repeats: int = 1):
    """The progress object that suits where the run was started from."""
    return NotebookProgress(repeats) if in_notebook() else TerminalProgress(repeats)


class TerminalProgress:
    """A rich progress bar on stderr, and one line per finished cell with its verdict."""

    def __init__(self, repeats: int = 1):
        self.repeats = repeats

    def begin(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("starting", total=total)

    def started(self, job) -> None:
        self.bar.update(self.task, description=f"running {job.cell.id}")

    def finished(self, record: dict, job) -> None:
        advance, line = finished_cell(record, job, self.repeats)
        self.bar.advance(self.task, advance)
        self.bar.console.print(line)

    def end(self) -> None:
        self.bar.update(self.task, description="done")
        self.bar.stop()


class NotebookProgress:
    """An HTML progress bar that a notebook updates in place (IPython display handles: it needs no ipywidgets),
    with one line per finished cell and its verdict."""

    def __init__(self, repeats: int = 1):
        self.repeats = repeats

    def begin(self, total: int) -> None:
        from IPython.display import HTML, display

        self.total, self.done, self.lines, self.now, self.since = total, 0, [], "starting", time.monotonic()
        self.handle = display(HTML(self.html()), display_id=True)

    def started(self, job) -> None:
        self.now = f"running {job.cell.id}"
        self.update()

    def finished(self, record: dict, job) -> None:
        advance, line = finished_cell(record, job, self.repeats)
        self.done = min(self.done + advance, self.total)
        self.lines.append(line)
        self.update()

    def end(self) -> None:
        self.now = "done" if self.done >= self.total else "stopped"
        self.update()

    def update(self) -> None:
        from IPython.display import HTML

        self.handle.update(HTML(self.html()))

    def html(self) -> str:
        elapsed = time.monotonic() - self.since
        head = (f'<progress value="{self.done}" max="{max(self.total, 1)}" style="width:40ch"></progress> '
                f"{self.done}/{self.total} &middot; {elapsed:.0f} s &middot; {html.escape(self.now)}")
        lines = "".join(html.escape(line) + "\n" for line in self.lines)
        return f"<div>{head}</div>" + (f'<pre style="margin:0.3em 0">{lines}</pre>' if lines else "")
