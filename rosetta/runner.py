"""The matrix of a run (task x backend x variant x recipe x device) and its execution, one worker
process per cell, each record appended to results.jsonl as soon as its cell ends.

Plain functions, so that a notebook can call them: `plan(...)`, then `execute(cells, run_dir)`.
"""

from __future__ import annotations

import inspect
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
from rosetta.registry import TASKS, Backend, load_task, task_module_name
from rosetta.results import SCHEMA_VERSION, append_record
from rosetta.timing import merge_repeats

# Seconds before a cell is killed, per task (the CNN's full default recipe trains 25,000 steps).
DEFAULT_TIMEOUT_S = {"classifier": 900, "tensor-ops": 900, "autograd": 300, "perceptron": 300, "cnn": 4 * 3600}
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
    epochs: int | None = None
    batch_size: int | None = None
    data_dir: str | None = None

    @property
    def id(self) -> str:
        return f"{self.task}/{self.variant}/{self.recipe}/{self.precision}/{self.device}"


TASK_OPTIONS = ("epochs", "batch_size", "data_dir")


def plan(tasks: list[str], picks: list[tuple[Backend, str]], devices: list[str], recipes: list[str] | None,
         precision: str, size: int | None, seed: int, steps: int | None, lr: float | None = None,
         unavailable: list[Backend] = (), quick: bool = False, options: dict | None = None) -> list[Cell]:
    """The cells of a run; each unavailable backend (retired, broken plugin) is one row per task saying why.
    quick: where size and steps are not given, each task's small QUICK_SIZE and QUICK_STEPS (per recipe).
    recipes: the recipes asked for; each task runs those it has. options: TASK_OPTIONS the user gave."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    modules = [load_task(t) for t in tasks]
    refused = [name for name in options if not any(name in accepted_options(m) for m in modules)]
    if refused:
        flag = "--" + refused[0].replace("_", "-")
        takers = [t for t in TASKS if refused[0] in accepted_options(load_task(t))]
        raise UsageError(f"{flag} is not an option of task {', '.join(tasks)}; "
                         f"it applies to task {', '.join(takers) or 'none'}")
    cells = []
    for task_name in tasks:
        task = load_task(task_name)
        task_options = {k: v for k, v in options.items() if k in accepted_options(task)}
        task_recipes = [r for r in recipes if r in task.RECIPES] if recipes else list(task.RECIPES)
        if not task_recipes:
            raise UsageError(f"task {task_name} has none of the recipes {', '.join(recipes)}; "
                             f"its recipes: {', '.join(task.RECIPES)}")
        by_backend = {} if size or quick else getattr(task, "DEFAULT_SIZE_BY_BACKEND", {})
        task_size = size or (getattr(task, "QUICK_SIZE", task.DEFAULT_SIZE) if quick else task.DEFAULT_SIZE)
        for recipe in task_recipes:
            recipe_steps = steps or (getattr(task, "QUICK_STEPS", {}).get(recipe) if quick else None)
            for cell_size in sorted({task_size, *(by_backend[b.name] for b, _ in picks if b.name in by_backend)}):
                try:
                    task.validate(cell_size, recipe, recipe_steps, **task_options)
                except ValueError as error:
                    raise UsageError(str(error)) from None
            for backend, variant in picks:
                for device in devices:
                    cells.append(Cell(task_name, backend.name, variant, device, recipe, precision,
                                      by_backend.get(backend.name, task_size), seed, recipe_steps, lr, **task_options))
        cells += [Cell(task_name, b.name, b.name, "-", "-", precision, task_size, seed, steps, lr, **task_options)
                  for b in unavailable]
    return cells


def accepted_options(task) -> list[str]:
    """The TASK_OPTIONS a task spec takes: those its make_problem names."""
    return [name for name in TASK_OPTIONS if name in inspect.signature(task.make_problem).parameters]


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
    if not backend.implements(cell.task, cell.variant):
        return {**record, "status": "skipped",
                "verdict": f"skipped: {cell.task} is implemented by {', '.join(backend.task_variants[cell.task])}, "
                           f"not {cell.variant}"}
    if cell.device == "gpu" and not backend.supports_gpu:
        return {**record, "status": "skipped", "verdict": f"skipped: {backend.display_name} runs on the CPU only"}
    if cell.precision == "float64" and not backend.supports_float64:
        return {**record, "status": "skipped", "verdict": f"skipped: {backend.display_name} has no float64"}
    if not envs.is_installed(backend):
        return {**record, "status": "not-installed",
                "verdict": f"not installed: run `{envs.install_hint(backend)}`"}

    timeout = timeout or DEFAULT_TIMEOUT_S.get(cell.task, 900)
    spec = {**asdict(cell), "backend_module": backend.module,
            "backend_path": str(backend.path) if backend.path else None,  # a plugin outside this environment
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
        _kill_group(process.pid)  # the whole group: frameworks start helper processes
        output, _ = process.communicate()
    except KeyboardInterrupt:  # the worker has a session of its own: Ctrl-C reaches only us
        _kill_group(process.pid)
        process.wait()
        raise
    reader.join(timeout=10)
    raw = b"".join(chunks)
    reply = None
    if raw and not timed_out:
        try:
            reply = json.loads(raw)
        except json.JSONDecodeError:
            reply = None
    return reply, output or "", process.returncode, timed_out


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # it had already ended
        pass


def _drain(fd: int, chunks: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while block := pipe.read(65536):
            chunks.append(block)


def execute(cells: list[Cell], backends: dict[str, Backend], run_dir: Path, run_id: str,
            timeout: float | None = None, threads: int | None = None, on_record=None,
            repeats: int = 1) -> list[dict]:
    """Run cells one after the other (timings need the machine to themselves), appending each record
    to run_dir/results.jsonl as it arrives. This loop is the seam for other executors (e.g. a Ray cluster).
    repeats > 1: see execute_repeated."""
    if repeats > 1:
        return execute_repeated(cells, backends, run_dir, run_id, timeout, threads, on_record, repeats)
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


def execute_repeated(cells: list[Cell], backends: dict[str, Backend], run_dir: Path, run_id: str,
                     timeout: float | None, threads: int | None, on_record, repeats: int) -> list[dict]:
    """Each cell `repeats` times, each time in a fresh worker process, in rounds (every cell once, then
    every cell again), so that a slow drift of the machine spreads over all cells instead of landing on
    one. Each repeat's record is appended to repeats.jsonl as it ends; a cell's record in results.jsonl
    merges its repeats (timing.merge_repeats: median, IQR and coefficient of variation across them) and
    is written, in plan order, once its last repeat is done. A cell that does not end "ok" (skipped,
    failed) is not repeated."""
    runs: list[list[dict]] = [[] for _ in cells]
    merged: list[dict | None] = [None] * len(cells)
    written = 0
    for round_number in range(1, repeats + 1):
        for k, cell in enumerate(cells):
            if merged[k] is not None:
                continue
            if on_record is not None:
                on_record(None, cell)
            record = run_cell(cell, backends[cell.backend], run_id, timeout, threads, run_dir / "logs")
            record.update(repeat=round_number, repeats_planned=repeats)
            append_record(run_dir / "repeats.jsonl", record)
            runs[k].append(record)
            if round_number == repeats or record.get("status") != "ok":
                merged[k] = merge_repeats(runs[k])
            while written < len(cells) and merged[written] is not None:
                append_record(run_dir / "results.jsonl", merged[written])
                written += 1
            if on_record is not None:
                on_record(record, cell)
    return merged
