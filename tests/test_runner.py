"""The runner's guarantees around real worker processes: crashes, time-outs, and setup."""

import json
import os

from conftest import BACKENDS, rosetta
from rosetta import envs, runner

NUMPY = BACKENDS["numpy"]


def numpy_cell(**changes):
    fields = dict(task="classifier", backend="numpy", variant="numpy", device="cpu", recipe="manual-sgd",
                  precision="float32", size=2000, seed=0, steps=20)
    return runner.Cell(**{**fields, **changes})


def test_a_worker_killed_by_a_signal_is_a_crashed_row(tmp_path, monkeypatch):
    # An interpreter that aborts as soon as it is asked to run the worker (but answers other questions).
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\ncase "$*" in *rosetta.worker*) echo "about to abort" >&2; kill -ABRT $$;; '
                      f'*) exec "{os.sys.executable}" "$@";; esac\n')
    python.chmod(0o755)
    monkeypatch.setenv("ROSETTA_PYTHON_NUMPY", str(python))
    record = runner.run_cell(numpy_cell(), NUMPY)
    assert record["status"] == "crashed"
    assert record["verdict"] == "crashed: signal 6 (SIGABRT)"
    assert "about to abort" in record["stderr_tail"]


def test_a_worker_past_its_timeout_is_killed_and_a_timed_out_row(tmp_path):
    record = runner.run_cell(numpy_cell(steps=1_000_000), NUMPY, timeout=1)
    assert record["status"] == "timed-out"
    assert record["verdict"] == "timed out after 1 s"


def test_an_exception_in_the_task_is_a_failed_row_with_its_message():
    record = runner.run_cell(numpy_cell(steps=0), NUMPY)  # make_problem refuses 0 steps inside the worker
    assert record["status"] == "failed"
    assert record["verdict"] == "failed: ValueError: steps must be at least 1, got 0"
    assert "Traceback" in record["error"]


def test_a_diverging_training_stops_early_and_says_where():
    record = runner.run_cell(numpy_cell(steps=500, lr=1e30), NUMPY)
    assert record["status"] == "diverged"
    step = int(record["verdict"].removeprefix("diverged at step "))
    assert len(record["losses"]) == step + 1 < 500


def test_setup_is_idempotent_and_fast_when_nothing_changed(tmp_path):
    env = {"ROSETTA_ENVS": str(tmp_path)}
    first = rosetta("setup", "numpy", env=env)
    second = rosetta("setup", "numpy", env=env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "numpy: installed" in first.stdout
    assert "numpy: up to date" in second.stdout
    assert json.loads((tmp_path / "stamps" / "numpy-cpu.json").read_text())["fingerprint"]


def test_a_backend_with_its_own_environment_runs_from_its_own_interpreter(monkeypatch, tmp_path):
    monkeypatch.setenv("ROSETTA_ENVS", str(tmp_path))
    own = [b for b in BACKENDS.values() if b.problem is None and b.environment != "shared"]
    for backend in own:
        assert envs.interpreter(backend) == tmp_path / backend.environment / "bin" / "python"
    assert envs.interpreter(NUMPY) == __import__("pathlib").Path(os.sys.executable)
