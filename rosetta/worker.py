"""One cell of the matrix, in a process of its own: `python -m rosetta.worker --result-fd N < spec.json`.

Imports only the standard library, numpy, the task spec and ONE backend, so that it runs in any
backend's environment. The record goes back as one JSON document over the file descriptor the runner
passed, so whatever the framework prints on stdout or stderr cannot corrupt it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time
import traceback

from rosetta.machine import cpu_model
from rosetta.timing import peak_rss_bytes, summarize


def run(spec: dict) -> dict:
    record: dict = {"status": "failed", "python": platform.python_version(), "interpreter": sys.executable}
    adapter = importlib.import_module(spec["backend_module"])
    task = importlib.import_module(spec["task_module"])
    problem = task.make_problem(size=spec["size"], seed=spec["seed"], recipe=spec["recipe"],
                                precision=spec["precision"], steps=spec["steps"], lr=spec.get("lr"))
    record["steps"] = problem.steps
    record["batch_size"] = problem.batch_size

    started = time.perf_counter()
    importlib.import_module(adapter.IMPORT_NAME)
    if spec.get("threads"):
        adapter.set_threads(spec["threads"])
    module = importlib.import_module(f"{spec['backend_module']}.{spec['task_module'].rpartition('.')[2]}")
    record["import_s"] = time.perf_counter() - started
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

    losses: list[float] = []
    step_seconds: list[float] = []
    training = module.train(problem, device, spec["variant"])
    lap = time.perf_counter()
    try:
        while True:
            out = next(training)
            now = time.perf_counter()
            chunk = list(out) if isinstance(out, (list, tuple)) else [out]
            if not step_seconds:  # setup, tracing or compilation, and the first step or chunk of steps
                record["first_call_s"] = now - lap
            step_seconds += [(now - lap) / len(chunk)] * len(chunk)
            losses += [float(v) for v in chunk]
            lap = now
            if not all(math.isfinite(v) for v in chunk):
                training.close()
                break
    except StopIteration as finished:
        result = finished.value
        record["finish_s"] = time.perf_counter() - lap  # evaluation and transfer back to numpy
    else:
        result = None

    adapter.synchronize(device)
    record.update(summarize(step_seconds, problem.batch_size))
    record["losses"] = losses
    record["peak_rss_bytes"] = peak_rss_bytes()
    record["peak_device_bytes"] = adapter.peak_device_memory(device)
    if result is None:
        bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        record.update(status="diverged", verdict=f"diverged at step {bad}")
        return record
    metrics = task.check(problem, result, losses)
    record["verdict"] = metrics.pop("verdict")
    record["metrics"] = metrics
    record["notes"] = list(result.notes)
    record["status"] = "ok"
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rosetta.worker")
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    spec = json.loads(sys.stdin.read())
    try:
        record = run(spec)
    except Exception as error:  # the runner turns this into a "failed" row; other cells go on
        record = {"status": "failed", "verdict": f"failed: {type(error).__name__}: {error}".splitlines()[0],
                  "error": traceback.format_exc()}
    with os.fdopen(args.result_fd, "w") as out:
        json.dump(record, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
