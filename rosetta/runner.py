"""The matrix of a run (task x backend x variant x recipe x device) and its execution, one worker
process per cell, each record appended to results.jsonl as soon as its cell ends.

Plain functions, so that a notebook can call them: `plan(...)`, then `execute(cells, run_dir)`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rosetta import __version__, envs, machine
from rosetta.errors import UsageError
from rosetta.registry import Backend, load_task, task_module_name
from rosetta.results import SCHEMA_VERSION, append_record

DEFAULT_TIMEOUT_S = {"classifier": 900}
STDERR_TAIL_LINES = 15


@dataclass(frozen=True)
class Cell:
    task: str
    backend: str
    variant: str
    device: str
    recipe: str
    precision: str
    size: int
    seed: int
    steps: int | None = None
    lr: float | None = None

    @property
    def id(self) -> str:
        return f"{self.task}/{self.variant}/{self.recipe}/{self.precision}/{self.device}"


def plan(tasks: list[str], picks: list[tuple[Backend, str]], devices: list[str], recipes: list[str] | None,
         precision: str, size: int | None, seed: int, steps: int | None, lr: float | None = None,
         unavailable: list[Backend] = ()) -> list[Cell]:
    """The cells of a run; each unavailable backend (retired, broken plugin) is one row per task saying why."""
    cells = []
    for task_name in tasks:
        task = load_task(task_name)
        task_size = size or task.DEFAULT_SIZE

        for recipe in recipes or list(task.RECIPES):
            try:
                task.validate(task_size, recipe, steps)
            except ValueError as error:
                raise UsageError(str(error)) from None
            for backend, variant in picks:
                for device in devices:
                    cells.append(Cell(task_name, backend.name, variant, device, recipe, precision,
                                      task_size, seed, steps, lr))
        cells += [Cell(task_name, b.name, b.name, "-", "-", precision, task_size, seed, steps, lr) for b in unavailable]
    return cells


def base_record(cell: Cell, backend: Backend, run_id: str) -> dict:
    return {
        "schema": SCHEMA_VERSION, "rosetta": __version__, "run_id": run_id, "cell": cell.id,
        **asdict(cell), "framework": backend.display_name, "environment": backend.environment,
        "machine": machine.describe(),
    }


def run_cell(cell: Cell, backend: Backend, run_id: str = "", timeout: float | None = None,
             threads: int | None = None, log_dir: Path | None = None) -> dict:
    """Run one cell in a fresh worker process and return its record (never raises for a cell's failure)."""
    record = base_record(cell, backend, run_id)
    record["threads"] = threads
    if backend.problem:
        return {**record, "status": "unavailable", "verdict": backend.problem}
    if not backend.implements(cell.task):
        return {**record, "status": "skipped", "verdict": f"skipped: {backend.name} does not implement {cell.task}"}
    if cell.device == "gpu" and not backend.supports_gpu:
        return {**record, "status": "skipped", "verdict": f"skipped: {backend.display_name} runs on the CPU only"}
    if cell.precision == "float64" and not backend.supports_float64:
        return {**record, "status": "skipped", "verdict": f"skipped: {backend.display_name} has no float64"}
    if not envs.is_installed(backend):
        return {**record, "status": "not-installed",
                "verdict": f"not installed: run `{envs.install_hint(backend)}`"}

    timeout = timeout or DEFAULT_TIMEOUT_S.get(cell.task, 900)
    spec = {**asdict(cell), "backend_module": backend.module,
            "task_module": f"tasks.{task_module_name(cell.task)}", "threads": threads}
    started = time.time()
    reply, stderr, returncode, timed_out = _spawn(envs.interpreter(backend), spec,
                                                  envs.worker_environment(backend, cell.variant, cell.device, threads),
                                                  timeout)
    record["wall_s"] = time.time() - started
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / (cell.id.replace("/", "__") + ".log")).write_text(stderr)
    tail = "\n".join(stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
    if timed_out:
        return {**record, "status": "timed-out", "verdict": f"timed out after {timeout:g} s", "stderr_tail": tail}
    if reply is None:
        how = (f"signal {-returncode} ({signal.Signals(-returncode).name})" if returncode < 0
               else f"exit code {returncode}")
        return {**record, "status": "crashed", "verdict": f"crashed: {how}", "stderr_tail": tail}
    if reply.get("status") == "failed":
        reply.setdefault("stderr_tail", tail)
    return {**record, **reply}


def _spawn(python: Path, spec: dict, env: dict, timeout: float):
    """Start the worker in its own process group; read its record from a pipe while it runs."""
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [str(python), "-m", "rosetta.worker", "--result-fd", str(write_fd)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        pass_fds=(write_fd,), env=env, start_new_session=True, text=True,
    )
    os.close(write_fd)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(read_fd, chunks), daemon=True)
    reader.start()
    timed_out = False
    try:
        output, _ = process.communicate(json.dumps(spec), timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: frameworks start helper processes
        output, _ = process.communicate()
    reader.join(timeout=10)
    raw = b"".join(chunks)
    reply = None
    if raw and not timed_out:
        try:
            reply = json.loads(raw)
        except json.JSONDecodeError:
            reply = None
    return reply, output or "", process.returncode, timed_out


def _drain(fd: int, chunks: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while block := pipe.read(65536):
            chunks.append(block)


def execute(cells: list[Cell], backends: dict[str, Backend], run_dir: Path, run_id: str,
            timeout: float | None = None, threads: int | None = None, on_record=None) -> list[dict]:
    """Run cells one after the other (timings need the machine to themselves), appending each record
    to run_dir/results.jsonl as it arrives. This loop is the seam for other executors (e.g. a Ray cluster)."""
    records = []
    for cell in cells:
        if on_record is not None:
            on_record(None, cell)
        record = run_cell(cell, backends[cell.backend], run_id, timeout, threads, run_dir / "logs")
        append_record(run_dir / "results.jsonl", record)
        records.append(record)
        if on_record is not None:
            on_record(record, cell)
    return records
