"""Run folders: make one, save what it was made with, run its cells, resume it. What `rosetta run` does,
as functions a notebook can call (rosetta/api.py wraps them).

A run folder holds command.txt (the command line, when there was one), plan.json (the RunOptions: the same
options give the same cells again, which is how --resume finds what is left), results.jsonl (one record
per cell, appended as each ends), logs/ (each worker's output), and the reports written from the records.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rosetta import results
from rosetta.errors import UsageError
from rosetta.executors import Job, execute, make_executor
from rosetta.plan import Plan, RunOptions, plan
from rosetta.registry import Registry


@dataclass
class Prepared:
    run_dir: Path
    options: RunOptions
    plan: Plan
    todo: list  # the cells still to run
    resumed: bool = False


def new_run_dir(out: Path, name: str) -> Path:
    run_dir, suffix = Path(out) / name, 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path(out) / f"{name}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def named_run_dir(out: Path, name: str) -> Path:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UsageError(f"--name {name!r} is not a folder name; give a plain name such as example-classifier")
    run_dir = Path(out) / name
    if run_dir.exists():
        raise UsageError(f"{run_dir} already exists; choose another --name or remove that folder")
    run_dir.mkdir(parents=True)
    return run_dir


def load_options(run_dir: Path) -> RunOptions:
    path = Path(run_dir) / "plan.json"
    if not path.exists():
        raise UsageError(f"{run_dir} has no plan.json; --resume takes a run folder made by `rosetta run`")
    try:
        return RunOptions.from_dict(json.loads(path.read_text())["options"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UsageError(f"{path} is corrupt; start a new run with `rosetta run`") from None


def prepare(options: RunOptions, registry: Registry, out: Path, name: str | None = None,
            command: str | None = None) -> Prepared:
    """Plan a new run (bad input fails here, before any folder is made), then make its folder."""
    planned = plan(options, registry)
    stem = name if name is not None else time.strftime("%Y%m%d-%H%M%S") + "-" + "-".join(t.name for t in planned.tasks)
    run_dir = named_run_dir(out, stem) if name is not None else new_run_dir(out, stem)
    if command is not None:
        (run_dir / "command.txt").write_text(command + "\n")
    (run_dir / "plan.json").write_text(json.dumps({"schema": results.SCHEMA_VERSION,
                                                   "options": options.to_dict()}, indent=1))
    return Prepared(run_dir, options, planned, list(planned.cells))


def prepare_resume(run_dir: Path, registry: Registry) -> Prepared:
    """The cells an interrupted run did not finish, planned from its own plan.json."""
    run_dir = Path(run_dir)
    options = load_options(run_dir)
    planned = plan(options, registry)
    done = {r.get("cell") for r in results.repair(run_dir / "results.jsonl")}
    return Prepared(run_dir, options, planned, [c for c in planned.cells if c.id not in done], resumed=True)


def run(prepared: Prepared, registry: Registry, progress=None) -> list[dict]:
    """Run the prepared cells on the run's executor; returns the records written (the progress object, if
    any, is told of each cell as it starts and ends: see rosetta/progress.py)."""
    options = prepared.options
    jobs = [Job(cell, registry.backends[cell.backend], registry.task(cell.task), prepared.run_dir.name,
                options.timeout, options.thread_count, prepared.run_dir / "logs") for cell in prepared.todo]
    if progress is not None:
        progress.begin(len(jobs) * options.repeats)
    try:
        with make_executor(options) as executor:
            return execute(jobs, executor, prepared.run_dir,
                           on_start=progress.started if progress else None,
                           on_record=progress.finished if progress else None, repeats=options.repeats)
    finally:
        if progress is not None:
            progress.end()
