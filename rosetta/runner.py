"""One cell, run: a fresh worker process with the backend's interpreter, its record read back over a pipe.

`run_cell` never raises for a cell's failure: a crash, a time-out, an exception in the backend, a cell that
cannot run here (no GPU, not installed) each come back as a record that says so. Every executor (local,
Ray) runs cells through this function, on whichever machine the cell lands.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from rosetta import __version__, envs
from rosetta.backend import Backend
from rosetta.plan import Cell
from rosetta.results import SCHEMA_VERSION
from rosetta.task import Task
from rosetta.worker import machine

STDERR_TAIL_LINES = 15


def base_record(cell: Cell, backend: Backend, run_id: str, threads: int | None) -> dict:
    """What every record says, whether its cell ran or not."""
    declared = [entry for entry in backend.declared_differences if entry.get("task") == cell.task]
    return {
        "schema": SCHEMA_VERSION, "rosetta": __version__, "run_id": run_id, **cell.fields(),
        "framework": backend.display_name, "environment": backend.environment, "reference": backend.reference,
        "declared_differences": declared, "threads": threads, "machine": machine.describe(),
    }


def why_not(cell: Cell, backend: Backend, task: Task) -> tuple[str, str] | None:
    """(status, verdict) of a cell that cannot run here, or None."""
    if backend.problem:
        return "unavailable", backend.problem
    if task.name in backend.does_not_implement:
        return "skipped", f"skipped: {backend.display_name} does not implement {task.name}: " \
                          f"{backend.does_not_implement[task.name]}"
    if not backend.has_module(task):
        return "skipped", f"skipped: {backend.name} does not implement {task.name}"
    if not backend.implements(task, cell.variant):
        return "skipped", (f"skipped: {task.name} is implemented by {', '.join(backend.variants_for(task.name))}, "
                           f"not {cell.variant}")
    if cell.device == "gpu" and not backend.supports_gpu:
        return "skipped", f"skipped: {backend.display_name} runs on the CPU only"
    if cell.precision == "float64" and not backend.supports_float64:
        return "skipped", f"skipped: {backend.display_name} has no float64"
    if not envs.is_installed(backend):
        return "not-installed", f"not installed: run `{envs.install_hint(backend)}`"
    return None


def run_cell(cell: Cell, backend: Backend, task: Task, run_id: str = "", timeout: float | None = None,
             threads: int | None = None, log_dir: Path | None = None) -> dict:
    """Run one cell in a fresh worker process and return its record."""
    record = base_record(cell, backend, run_id, threads)
    refused = why_not(cell, backend, task)
    if refused:
        return {**record, "status": refused[0], "verdict": refused[1]}
    timeout = timeout or task.timeout_s
    implementation, implementation_path = backend.module_for(task)
    spec = {**cell.fields(), "kind": task.kind, "task_module": task.module_name, "task_path": task.path,
            "implementation": implementation, "implementation_path": str(implementation_path),
            "backend_module": backend.module,
            "backend_path": str(backend.path) if backend.path else None,  # a plugin outside this environment
            "threads": threads}
    started = time.time()
    reply, stderr, returncode, timed_out = _spawn(
        envs.interpreter(backend), spec,
        envs.worker_environment(backend, cell.variant, cell.device, threads, cell.precision), timeout)
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
        kill_group(process.pid)  # the whole group: frameworks start helper processes, replicas
        output, _ = process.communicate()
    except BaseException:  # Ctrl-C, or the executor cancelling: the worker has a session of its own
        kill_group(process.pid)
        process.wait()
        raise
    kill_group(process.pid)  # whatever the worker left behind (a replica that outlived it) ends with it
    reader.join(timeout=10)
    raw = b"".join(chunks)
    reply = None
    if raw and not timed_out:
        try:
            reply = json.loads(raw)
        except json.JSONDecodeError:
            reply = None
    return reply, output or "", process.returncode, timed_out


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # it had already ended
        pass


def _drain(fd: int, chunks: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while block := pipe.read(65536):
            chunks.append(block)
