"""The data-parallel task: every backend's cell at a small size, float64 agreement of N replicas with numpy's single
device, the "needs N GPUs" rows, no replica process left behind, and the report's sections.

The fast lane runs numpy and PyTorch; the other frameworks' cells are marked slow (conftest.variant_params).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from cifar_fixture import build_folder
from conftest import BACKENDS, REFERENCE, REGISTRY, make_cell, ok, record, variant_params
from rosetta import judge, runner
from rosetta.errors import UsageError
from rosetta.plan import RunOptions, plan
from tasks import classifier as classifier_task
from tasks import data_parallel as spec
from tasks.protocol import CannotRun

TASK = REGISTRY.task("data-parallel")
SIZE = 2000  # the classifier: 1900 training points, 3 steps of 500
CNN_SIZE = 200  # the fake CIFAR-10 folder's first images, 3 steps of 64 an epoch
CNN_STEPS = 20  # MXNet and Paddle differ from numpy above the tolerance from about step 10
# Keras' distribution API runs on its JAX backend only (backends/keras/data_parallel.py says why).
KERAS_NOT_JAX = {"keras", "keras-torch", "keras-tensorflow"}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return str(build_folder(tmp_path_factory.mktemp("cifar"), per_batch=40))


def dp_cell(backend, variant=None, recipe="classifier", replicas=2, precision="float64", data_dir=None, **kw):
    options = {"data_dir": data_dir} if recipe == "cnn" else {}
    size, steps = (CNN_SIZE, CNN_STEPS) if recipe == "cnn" else (SIZE, None)
    return make_cell("data-parallel", backend, variant=variant, recipe=recipe, precision=precision,
                     size=kw.pop("size", size), steps=kw.pop("steps", steps), options=options,
                     axes={"replicas": replicas}, **kw)


def numpy_single(recipe="classifier", precision="float64", data_dir=None):
    return ok(dp_cell(REFERENCE, recipe=recipe, replicas=1, precision=precision, data_dir=data_dir))


# ------------------------------------------------------------------------------------------- the spec

def test_the_problem_is_the_classifier_tasks_and_its_shards_tile_each_batch():
    problem = spec.make_problem(SIZE, 0, "classifier", "float64", replicas=2)
    base = classifier_task.make_problem(SIZE, 0, "sgd-momentum", "float64")
    assert np.array_equal(problem.x_train, base.x_train) and np.array_equal(problem.batches, base.batches)
    assert all(np.array_equal(problem.params[k], base.params[k]) for k in base.params)
    assert problem.hyper == {"lr": 0.1, "momentum": 0.9} and problem.local_batch_size == 250
    rows = problem.batches[0]
    assert np.array_equal(np.concatenate([problem.shard(rows, r) for r in range(2)]), rows)
    assert np.array_equal(problem.shard_batches(1), problem.batches[:, 250:])


def test_replicas_that_do_not_split_the_batch_evenly_are_refused_with_what_to_use():
    with pytest.raises(ValueError, match=r"does not split into 3 equal shards; use --replicas 2,4,5"):
        spec.validate(SIZE, "classifier", None, replicas=(2, 3))


def test_the_plan_runs_one_replica_beside_those_asked_and_judges_them_all_against_numpy_single():
    cells = plan(RunOptions(task="data-parallel", backend="numpy,torch", device="cpu", recipe="classifier",
                            task_options={"replicas": (2, 4)}), REGISTRY).cells
    assert [c.id for c in cells if c.backend == "torch"] == [
        f"data-parallel/torch/classifier/float32/cpu/replicas={n}" for n in (1, 2, 4)]
    assert "replicas" not in TASK.same_problem  # every replica count is a run of numpy's single-device problem


def test_the_cnn_recipe_without_cifar10_is_refused_at_planning_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("ROSETTA_CIFAR10", raising=False)
    monkeypatch.setenv("ROSETTA_CACHE", str(tmp_path))
    with pytest.raises(UsageError, match="the cnn recipe needs CIFAR-10"):
        plan(RunOptions(task="data-parallel", backend="numpy", device="cpu", recipe="cnn"), REGISTRY)
    # the classifier recipe needs no data
    assert plan(RunOptions(task="data-parallel", backend="numpy", device="cpu", recipe="classifier"), REGISTRY).cells


# ------------------------------------------------------------------------------------- the reference

def test_numpys_all_reduce_by_hand_gives_the_single_device_curve():
    one = numpy_single()
    two = ok(dp_cell(REFERENCE, replicas=2))
    assert judge.relative_deviation(two["losses"], one["losses"]).max() < 1e-14
    assert two["report_data"]["mapping"]["replicas"] == 2
    assert len(two["report_data"]["sync_seconds"]) == len(two["losses"])


# ------------------------------------------------------------------------- every backend, float64

def judged(record_, reference):
    return judge.judge(record_, reference, TASK, REFERENCE.name)


@pytest.mark.parametrize("backend,variant", variant_params(with_reference=False, task="data-parallel"))
def test_each_backend_trains_the_classifier_on_two_replicas_as_numpy_does_on_one(backend, variant):
    found = record(dp_cell(backend, variant))
    if variant in KERAS_NOT_JAX:
        assert found["status"] == "skipped"
        assert "distribution API" in found["verdict"] or "keras.distribution" in found["verdict"]
        return
    assert found["status"] == "ok", f"{found.get('verdict')}\n{found.get('error') or found.get('stderr_tail')}"
    assert found["report_data"]["mapping"]["replicas"] == 2
    verdict = judged(found, numpy_single())
    assert verdict.verdict in (judge.AGREES, judge.DECLARED), verdict


@pytest.mark.parametrize("backend,variant", [p for p in variant_params(with_reference=False, task="data-parallel")
                                             if p.values[1] not in KERAS_NOT_JAX])
def test_each_backend_trains_the_cnn_on_two_replicas_as_numpy_does_on_one(backend, variant, cifar):
    found = ok(dp_cell(backend, variant, recipe="cnn", data_dir=cifar))
    verdict = judged(found, numpy_single("cnn", data_dir=cifar))
    assert verdict.verdict in (judge.AGREES, judge.DECLARED), verdict


# ------------------------------------------------------------------------------------------- GPU rows

def test_a_gpu_cell_on_a_machine_without_one_is_a_skipped_row():
    torch = BACKENDS["torch"]
    found = record(dp_cell(torch, device="gpu"))
    if found.get("device_name") and found["status"] == "ok":
        pytest.skip("this machine has GPUs")
    assert found["status"] == "skipped"
    assert "no GPU visible" in found["verdict"] or "needs 2 GPUs" in found["verdict"]


def test_fewer_gpus_than_replicas_says_how_many_are_needed():
    with pytest.raises(CannotRun, match=r"^needs 4 GPUs, 1 visible$"):
        spec.gpus_needed(4, 1)
    spec.gpus_needed(2, 2)  # enough: nothing raised
    torch = pytest.importorskip("torch")
    from backends.torch import data_parallel
    problem = spec.make_problem(SIZE, 0, "classifier", "float64", replicas=torch.cuda.device_count() + 1)
    with pytest.raises(CannotRun, match=rf"needs {problem.replicas} GPUs, {problem.replicas - 1} visible"):
        next(data_parallel.train(problem, "gpu", "torch"))


# ------------------------------------------------------------------------------------------- orphans

def processes_marked(mark: str, replicas_only: bool = False) -> list[int]:
    """Live processes started with ROSETTA_TEST_MARK=mark; replicas_only: the spawned replicas alone (not
    multiprocessing's resource tracker, which belongs to the process that made the queue)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if f"ROSETTA_TEST_MARK={mark}".encode() not in environ.read():
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if replicas_only and b"spawn_main" not in cmdline.read():
                        continue
                found.append(int(entry))
            except OSError:
                continue
    return found


def wait_until_gone(mark: str, seconds: float = 15, replicas_only: bool = False) -> list[int]:
    deadline = time.time() + seconds
    while processes_marked(mark, replicas_only) and time.time() < deadline:
        time.sleep(0.2)
    return processes_marked(mark, replicas_only)


def test_a_timed_out_ddp_cell_leaves_no_replica_behind(monkeypatch):
    """The worker and its replica processes share a process group, which the runner kills with the cell."""
    mark = f"dp-orphan-{os.getpid()}"
    monkeypatch.setenv("ROSETTA_TEST_MARK", mark)  # inherited by the worker and every replica it spawns
    torch = BACKENDS["torch"]
    cell = dp_cell(torch, size=200_000, steps=100_000)
    most = [0]

    def watch():
        while not done.is_set():
            most[0] = max(most[0], len(processes_marked(mark)))
            time.sleep(0.2)

    done = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    found = runner.run_cell(cell, torch, TASK, timeout=25, threads=1)
    done.set()
    watcher.join()
    assert found["status"] == "timed-out"
    assert most[0] >= 3, "the worker and its two replicas should have been running"  # worker + 2 replicas (+ helpers)
    assert wait_until_gone(mark) == []


def test_a_ddp_training_closed_early_takes_its_replicas_with_it(monkeypatch):
    """What an interrupted or diverged cell does: the worker closes train(); its replicas end with it."""
    pytest.importorskip("torch")
    from backends.torch import data_parallel
    mark = f"dp-closed-{os.getpid()}"
    monkeypatch.setenv("ROSETTA_TEST_MARK", mark)
    problem = spec.make_problem(SIZE, 0, "classifier", "float64", steps=1000, replicas=2)
    training = data_parallel.train(problem, "cpu", "torch")
    next(training)
    assert len(processes_marked(mark, replicas_only=True)) == 2
    training.close()
    assert wait_until_gone(mark, replicas_only=True) == []


# --------------------------------------------------------------------------------------------- report

def test_the_report_shows_curves_deviation_scaling_and_the_data_parallel_lines():
    from rosetta.report.model import build
    from tasks import data_parallel_report
    torch = BACKENDS["torch"]
    records = [numpy_single(), ok(dp_cell(REFERENCE)), ok(dp_cell(torch, replicas=1)), ok(dp_cell(torch)),
               record(dp_cell(torch, device="gpu"))]
    view = build(records, REGISTRY).task("data-parallel")
    titles = [s.title for s in data_parallel_report.sections(view)]
    assert titles == ["Data parallel: single-device and N-replica curves", "Data parallel: deviation from one device",
                      "Data parallel: scaling against one replica",
                      "Data parallel: the data-parallel lines, side by side"]
    rows = [r for r in data_parallel_report.scaling_rows(view.finished) if r["framework"] == "PyTorch"]
    two = next(r for r in rows if r["replicas"] == 2)
    assert two["speedup"] and two["efficiency"] == round(two["speedup"] / 2, 3)
    assert two["processes"] == 2 and two["sync ms"] is not None
    code = data_parallel_report.sections(view)[-1].markdown
    assert "DDP(" in code and "all_reduce_mean" in code


@pytest.mark.parametrize("recipe", ["classifier", "cnn"])
def test_a_global_steps_cost_is_its_replicas_shares_plus_the_all_reduce(recipe):
    """Independent of how data_parallel counts: r replicas each running the model's own step on B / r rows
    do, in matrix products, exactly the work of one step on B rows (each product is linear in the batch);
    everything else of the global step is the all-reduce, r additions per parameter."""
    from tasks import classifier, cnn, data_parallel

    chosen = data_parallel.RECIPES[recipe]
    base = classifier if chosen.model == "classifier" else cnn
    parameters = sum(int(np.prod(shape)) for shape in base.param_shapes().values())
    one = data_parallel.step_cost(2000, recipe, replicas=1)
    assert one == base.step_cost(2000, chosen.base_recipe)
    for r in (2, 4):
        shares = [base.step_cost(2000, chosen.base_recipe, batch_size=chosen.batch_size // r) for _ in range(r)]
        cost = data_parallel.step_cost(2000, recipe, replicas=r)
        assert cost.dense_flops == sum(s.dense_flops for s in shares)
        assert cost.flops - one.flops == r * parameters
        assert cost.bytes - one.bytes == 2 * (r - 1) * parameters * 4
