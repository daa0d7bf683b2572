"""Executors: where a run's cells run. The one place their contract is documented.

Every cell is independent: an executor takes the run's jobs and hands back each job's record as the cell
ends, in whatever order cells end. It never writes files: the driver (`execute` below) appends each record
to results.jsonl as it arrives (fsync'd, rosetta/results.py), in this process, whichever executor ran it.

    class MyExecutor(Executor):
        name = "mine"
        def run(self, jobs, on_start):    # yield (job, record) as each cell ends; call on_start(job) when
            ...                           # one starts; run each through rosetta.runner.run_cell
        def close(self):                  # release what it holds (a cluster connection); cancel what is
            ...                           # still queued when called during a run (Ctrl-C)

Built in: "local" (rosetta/executors/local.py, the default: one cell at a time on this machine, because a
timing needs the machine to itself) and "ray" (rosetta/executors/ray.py: the cells spread over a Ray cluster).
`make_executor(options)` picks one from the run's options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rosetta.backend import Backend
from rosetta.plan import Cell, RunOptions
from rosetta.repeats import merge_repeats
from rosetta.results import append_record
from rosetta.task import Task


@dataclass(frozen=True)
class Job:
    """One cell and what running it needs."""

    cell: Cell
    backend: Backend
    task: Task
    run_id: str = ""
    timeout: float | None = None
    threads: int | None = None
    log_dir: Path | None = None


class Executor:
    name = ""

    def run(self, jobs: list[Job], on_start=None):
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# What an optional executor needs in the engine's environment: checked without importing it, before a run
# folder is made, so that a missing install is a one-line error and nothing else.
REQUIRES = {"ray": ("ray", "pip install -e '.[ray]'")}


def unavailable(name: str) -> str | None:
    """Why the executor cannot run here (its package is missing, and the command that installs it), or None."""
    import importlib.util
    if name in REQUIRES and importlib.util.find_spec(REQUIRES[name][0]) is None:
        module, install = REQUIRES[name]
        return f"the {name} executor needs {module}, which is not installed in this environment; install it with `{install}`"
    return None


def make_executor(options: RunOptions) -> Executor:
    if options.executor == "ray":
        from rosetta.executors.ray import RayExecutor  # Ray is an optional install: imported only when asked
        return RayExecutor(address=options.address, cells_per_node=options.cells_per_node)
    from rosetta.executors.local import LocalExecutor
    return LocalExecutor()


def execute(jobs: list[Job], executor: Executor, run_dir: Path, on_start=None, on_record=None,
            repeats: int = 1) -> list[dict]:
    """Run the jobs on the executor, appending each record to run_dir/results.jsonl as it arrives.

    repeats > 1: each cell `repeats` times, each time in a fresh worker, in rounds (every cell once, then
    every cell again), so that a slow drift of the machine spreads over all cells instead of landing on one.
    Each repeat's record goes to repeats.jsonl as it ends; a cell's record in results.jsonl merges its
    repeats (rosetta/repeats.py) and is written once its last repeat is done. A cell that does not end
    "ok" (skipped, failed) is not repeated."""
    results = run_dir / "results.jsonl"
    if repeats <= 1:
        records = []
        for job, record in executor.run(jobs, on_start):
            record.setdefault("executor", executor.name)
            append_record(results, record)
            records.append(record)
            if on_record is not None:
                on_record(record, job)
        return records
    runs: dict[str, list[dict]] = {job.cell.id: [] for job in jobs}
    merged: dict[str, dict] = {}
    for round_number in range(1, repeats + 1):
        pending = [job for job in jobs if job.cell.id not in merged]
        for job, record in executor.run(pending, on_start):
            record.setdefault("executor", executor.name)
            record.update(repeat=round_number, repeats_planned=repeats)
            append_record(run_dir / "repeats.jsonl", record)
            runs[job.cell.id].append(record)
            if round_number == repeats or record.get("status") != "ok":
                merged[job.cell.id] = merge_repeats(runs[job.cell.id])
                append_record(results, merged[job.cell.id])
            if on_record is not None:
                on_record(record, job)
    return [merged[job.cell.id] for job in jobs if job.cell.id in merged]
