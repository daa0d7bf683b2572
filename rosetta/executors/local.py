"""The default executor: one cell after the other on this machine (a timing needs the machine to itself)."""

from __future__ import annotations

from rosetta.executors import Executor, Job
from rosetta.runner import run_cell


class LocalExecutor(Executor):
    name = "local"

    def run(self, jobs: list[Job], on_start=None):
        for job in jobs:
            if on_start is not None:
                on_start(job)
            yield job, run_cell(job.cell, job.backend, job.task, job.run_id, job.timeout, job.threads,
                                job.log_dir)
