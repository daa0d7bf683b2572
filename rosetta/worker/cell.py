"""One cell of the matrix, in a process of its own: `python -m rosetta.worker --result-fd N < spec.json`.

Imports only the standard library, numpy, the task spec and ONE backend, so that it runs in any
backend's environment. The record goes back as one JSON document over the file descriptor the runner
passed, so whatever the framework prints on stdout or stderr cannot corrupt it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import numbers
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from rosetta.worker.imports import import_adapter, import_task
from rosetta.worker.load import LoadMeter
from rosetta.worker.machine import cpu_model
from rosetta.worker.timing import peak_rss_bytes, summarize, threads_in_effect


def run(spec: dict) -> dict:
    record: dict = {"status": "failed", "python": platform.python_version(), "interpreter": sys.executable}
    adapter = import_adapter(spec["backend_module"], spec.get("backend_path"))
    task = import_task(spec["task_module"], spec.get("task_path"))
    protocol = importlib.import_module("tasks.protocol")
    problem = task.make_problem(size=spec["size"], seed=spec["seed"], recipe=spec["recipe"],
                                precision=spec["precision"], steps=spec["steps"], lr=spec.get("lr"),
                                **spec.get("options", {}))
    record["steps"] = getattr(problem, "steps", None)
    record["batch_size"] = getattr(problem, "batch_size", None)

    started = time.perf_counter()
    importlib.import_module(adapter.IMPORT_NAME)
    if spec.get("threads"):
        adapter.set_threads(spec["threads"])
    module = import_task(spec["implementation"], spec.get("implementation_path"))
    record["import_s"] = time.perf_counter() - started
    # The report shows this file's code; the digest tells it whether the file changed since the run.
    record["source_sha256"] = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()
    record["framework_version"] = adapter.version()

    device = spec["device"]
    if device == "gpu":
        gpu = adapter.gpu_name()
        if not gpu:
            record.update(status="skipped", verdict=f"skipped: no GPU visible to {adapter.DISPLAY_NAME}")
            return record
        record["device_name"] = gpu
    else:
        record["device_name"] = cpu_model()

    try:
        if spec["kind"] == "checks":  # a task of checks and measurements, not a training
            started = time.perf_counter()
            record.update(task.run_backend(problem, module, adapter, device, spec["variant"]))
            record["run_s"] = time.perf_counter() - started
            record["status"] = "ok"
        else:
            train(record, problem, task, module, adapter, device, spec["variant"], protocol)
    except protocol.CannotRun as reason:  # the backend's own reason not to run this cell
        record.update(status="skipped", verdict=f"skipped: {reason}")
    record.update(resources_in_effect(adapter, device))
    return record


def train(record: dict, problem, task, module, adapter, device: str, variant: str, protocol) -> None:
    """Drive the backend's train() generator, timing each step (the step protocol: tasks/protocol.py)."""
    Chunk, Compiled = protocol.Chunk, protocol.Compiled
    losses: list[float] = []
    step_seconds: list[float] = []
    synchronize = adapter.synchronize
    barrier = getattr(adapter, "step_barrier", synchronize)
    training = module.train(problem, device, variant)
    # Each step is timed around next() alone: from just before the generator resumes to just after the
    # backend's barrier (its queued work done, e.g. MXNet's engine, CUDA), so the worker's own bookkeeping
    # between steps is never charged to a step.
    started = lap = time.perf_counter()
    try:
        while True:
            out = next(training)
            barrier(device)
            now = time.perf_counter()
            if type(out) is float and step_seconds:  # one more step: the common case, kept as lean as a bare loop
                step_seconds.append(now - lap)
                losses.append(out)
                if out - out != 0:  # NaN or infinite
                    training.close()
                    break
                lap = time.perf_counter()
                continue
            if isinstance(out, Compiled):  # setup, tracing and compilation end here, training starts
                record["compile_s"] = now - started
                lap = time.perf_counter()
                continue
            if isinstance(out, Chunk):
                chunk = list(out)
                if not chunk:
                    lap = time.perf_counter()
                    continue
            elif isinstance(out, numbers.Real):  # a numpy scalar, or the first step's float
                chunk = [float(out)]
            else:
                raise TypeError(f"train() yielded a {type(out).__name__}: yield each step's loss as a float, "
                                f"Chunk(losses) for several steps, or Compiled() (tasks/protocol.py)")
            if not step_seconds:  # setup, tracing or compilation, and the first step or chunk of steps
                record["first_call_s"] = now - started
            inside = getattr(out, "step_seconds", None)  # a chunk whose steps the backend timed (Keras' fit())
            if inside is not None:
                step_seconds += inside
                record["chunk_setup_s"] = record.get("chunk_setup_s", 0.0) + (now - lap) - sum(inside)
            else:  # steps run inside one call (a compiled loop): each gets an equal share of it
                step_seconds += [(now - lap) / len(chunk)] * len(chunk)
            losses += chunk
            if not all(math.isfinite(v) for v in chunk):
                training.close()
                break
            lap = time.perf_counter()
    except StopIteration as finished:
        if finished.value is None:  # a contract mistake, named in the row rather than as a traceback
            raise TypeError(f"train() in {module.__name__} returned nothing: end it with `return Result(...)` "
                            f"(the task's Result, from tasks/{task.NAME.replace('-', '_')}.py)") from None
        result = finished.value
        record["finish_s"] = time.perf_counter() - lap  # evaluation and transfer back to numpy
    else:
        result = None  # stopped early: a loss was not finite

    synchronize(device)
    train_s = (time.perf_counter() - started) - record.get("finish_s", 0.0)
    record.update(summarize(step_seconds, problem.batch_size))
    per_epoch = getattr(problem, "steps_per_epoch", None)
    if per_epoch and len(step_seconds) == len(losses):  # the sum of the step times of each (possibly cut) epoch
        record["epoch_s"] = [sum(step_seconds[i:i + per_epoch]) for i in range(0, len(step_seconds), per_epoch)]
    record["train_s"] = train_s  # wall time of the training, compilation and the worker's bookkeeping included
    record["losses"] = losses
    if result is None:
        bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        record.update(status="diverged", verdict=f"diverged at step {bad}")
        return
    metrics = task.check(problem, result, losses)
    record["verdict"] = metrics.pop("verdict")
    record["metrics"] = metrics
    for_report = getattr(task, "summary_for_report", None)  # small data for the report's plots
    if for_report is not None and record["verdict"] == "ok":
        record["report_data"] = for_report(problem, result)
    record["notes"] = list(getattr(result, "notes", []))
    record["status"] = "ok"


def resources_in_effect(adapter, device: str) -> dict:
    """What the cell ran with and used: threads read back, peak resident and device memory."""
    return {"threads_in_effect": {**threads_in_effect(), **getattr(adapter, "threads_in_effect", dict)()},
            "peak_rss_bytes": peak_rss_bytes(), "peak_device_bytes": adapter.peak_device_memory(device)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rosetta.worker")
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    spec = json.loads(sys.stdin.read())
    load = LoadMeter().start()
    try:
        record = run(spec)
    except Exception as error:  # the runner turns this into a "failed" row; other cells go on
        record = {"status": "failed", "verdict": f"failed: {type(error).__name__}: {error}".splitlines()[0],
                  "error": traceback.format_exc()}
    record["load"] = load.stop()
    with os.fdopen(args.result_fd, "w") as out:
        json.dump(record, out)
    return 0
