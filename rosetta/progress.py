"""Progress of a run as it goes: a bar in the terminal (the CLI); rosetta/api.py has a notebook's.

A progress object has begin(total), started(job), finished(record, job) and end(); rosetta/runs.py calls
them as the executor starts and ends cells (with --repeats, each repeat counts)."""

from __future__ import annotations


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
        flag = " [busy machine]" if (record.get("load") or {}).get("busy") else ""
        if self.repeats > 1:  # a cell that did not end "ok" is not repeated: its remaining repeats count as done
            done = record["repeat"]
            self.bar.advance(self.task, 1 if record.get("status") == "ok" else self.repeats - done + 1)
            self.bar.console.print(f"{job.cell.id} [{done}/{self.repeats}]: {record.get('verdict')}{flag}")
        else:
            self.bar.advance(self.task)
            self.bar.console.print(f"{job.cell.id}: {record.get('verdict')}{flag}")

    def end(self) -> None:
        self.bar.update(self.task, description="done")
        self.bar.stop()
