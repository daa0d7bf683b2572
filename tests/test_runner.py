"""The runner's guarantees around real worker processes: crashes, time-outs, and setup."""

import json
import os

from conftest import BACKENDS, REFERENCE, REGISTRY, make_cell, rosetta
from rosetta import envs, runner

NUMPY = REFERENCE
TASK = REGISTRY.task("classifier")


def numpy_cell(**changes):
    fields = dict(recipe="manual-sgd", precision="float32", size=2000, steps=20)
    return make_cell("classifier", NUMPY, **{**fields, **changes})


def test_a_worker_killed_by_a_signal_is_a_crashed_row(tmp_path, monkeypatch):
    # An interpreter that aborts as soon as it is asked to run the worker (but answers other questions).
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\ncase "$*" in *rosetta.worker*) echo "about to abort" >&2; kill -ABRT $$;; '
                      f'*) exec "{os.sys.executable}" "$@";; esac\n')
    python.chmod(0o755)
    monkeypatch.setenv(f"ROSETTA_PYTHON_{NUMPY.name.upper()}", str(python))
    record = runner.run_cell(numpy_cell(), NUMPY, TASK)
    assert record["status"] == "crashed"
    assert record["verdict"] == "crashed: signal 6 (SIGABRT)"
    assert "about to abort" in record["stderr_tail"]


def test_a_worker_past_its_timeout_is_killed_and_a_timed_out_row(tmp_path):
    record = runner.run_cell(numpy_cell(steps=1_000_000), NUMPY, TASK, timeout=1)
    assert record["status"] == "timed-out"
    assert record["verdict"] == "timed out after 1 s"


def test_an_exception_in_the_task_is_a_failed_row_with_its_message():
    record = runner.run_cell(numpy_cell(steps=0), NUMPY, TASK)  # make_problem refuses 0 steps inside the worker
    assert record["status"] == "failed"
    assert record["verdict"] == "failed: ValueError: steps must be at least 1, got 0"
    assert "Traceback" in record["error"]


def test_a_diverging_training_stops_early_and_says_where():
    record = runner.run_cell(numpy_cell(steps=500, lr=1e30), NUMPY, TASK)
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


def results_of(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_a_killed_run_keeps_its_records_and_resume_runs_only_the_missing_cells(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    # 4 recipes x 2 backends on the CPU; numpy first, torch cells take a second or two each.
    command = [sys.executable, "-m", "rosetta", "run", "--backend", "numpy,torch", "--device", "cpu",
               "--size", "3000", "--steps", "300", "--out", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        run_dirs = list(tmp_path.iterdir())
        if run_dirs and (run_dirs[0] / "results.jsonl").exists() and len(results_of(run_dirs[0])) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    (run_dir,) = tmp_path.iterdir()
    assert process.returncode == 130, stderr
    assert f"continue with `rosetta run --resume {run_dir}`" in stderr
    before = results_of(run_dir)
    assert 2 <= len(before) < 8

    resumed = rosetta("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} of 8 cells done, {8 - len(before)} to run" in resumed.stderr
    after = results_of(run_dir)
    assert len(after) == 8 and after[: len(before)] == before
    assert len({r["cell"] for r in after}) == 8
    assert (run_dir / "report.md").exists()


def test_resume_drops_a_torn_last_line_before_appending(tmp_path):
    out = tmp_path / "out"
    first = rosetta("run", "--backend", "numpy", "--device", "cpu", "--size", "2000", "--steps", "10",
                    "--out", str(out))
    assert first.returncode == 0, first.stderr
    (run_dir,) = out.iterdir()
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    # as if the run had been killed while writing its third record, and before the fourth
    (run_dir / "results.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    resumed = rosetta("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    after = results_of(run_dir)
    assert len(after) == 4 and after[:2] == [json.loads(line) for line in lines[:2]]
    assert {r["recipe"] for r in after} == {"manual-sgd", "sgd-momentum", "adam", "adadelta"}


def test_resume_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    result = rosetta("run", "--resume", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has no plan.json" in result.stderr


LEAVES_A_CHILD = """
import os, subprocess, sys, time
def train(problem, device, variant):
    # a helper process of the kind frameworks start (a data loader, a replica), marked so the test can find it
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], env={**os.environ, "ROSETTA_TEST_MARK": "%s"})
    yield 1.0
    while True:
        time.sleep(0.1)
"""


def processes_marked(mark: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if f"ROSETTA_TEST_MARK={mark}".encode() in environ.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_timed_out_cell_leaves_no_process_behind(tmp_path, monkeypatch):
    """Frameworks start helper processes (loaders, replicas, compilers): a cell that is killed takes all of its
    processes with it, because the worker leads a process group of its own."""
    import shutil
    mark = f"orphan-{os.getpid()}"
    package = tmp_path / "leaky"
    shutil.copytree(NUMPY.path, package)
    (package / "classifier.py").write_text(LEAVES_A_CHILD % mark)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    from rosetta.backend import backend_from_module
    leaky = backend_from_module("leaky", "test")
    cell = make_cell("classifier", leaky, recipe="manual-sgd", precision="float32", size=2000, steps=5)
    record = runner.run_cell(cell, leaky, TASK, timeout=3)
    assert record["status"] == "timed-out"
    import time
    deadline = time.time() + 10
    while processes_marked(mark) and time.time() < deadline:
        time.sleep(0.1)
    assert processes_marked(mark) == []
