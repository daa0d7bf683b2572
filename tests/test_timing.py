"""The measurement method: the summarizing math, the worker's clock protocol, threads, repeats, --quick,
and the harness-overhead benchmark's bare scripts. Behaviour only: no assertion on how long anything took."""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys

import pytest

from conftest import REFERENCE, REGISTRY, ROOT, backend_params, make_cell, rosetta
from rosetta import envs, repeats, runner
from rosetta.plan import RunOptions, plan
from rosetta.worker import cell as worker
from rosetta.worker import timing
from tasks import classifier

NUMPY = REFERENCE
TASK = REGISTRY.task("classifier")


# ------------------------------------------------------------------------------------------- the math

def test_warm_up_is_the_first_tenth_at_least_one_at_most_fifty():
    assert [timing.warmup_steps(n) for n in (1, 2, 9, 10, 100, 499, 500, 5000)] == [0, 1, 1, 1, 10, 49, 50, 50]


def test_steady_state_figures_leave_the_warm_up_out():
    # 100 steps: the first 10 are warm-up (a compile of 5 s, then slow steps); the rest are 1..90 ms.
    seconds = [5.0] + [0.5] * 9 + [i / 1000 for i in range(1, 91)]
    summary = timing.summarize(seconds, batch_size=20)
    assert summary["warmup_steps"] == 10
    assert summary["first_step_s"] == 5.0
    assert summary["step_median_s"] == pytest.approx(0.0455)  # median of 1..90 ms
    # inclusive quartiles of 1..90: 23.25 and 67.75
    assert summary["step_iqr_s"] == pytest.approx(0.0445)
    assert summary["step_mean_s"] == pytest.approx(0.0455)
    assert summary["samples_per_s"] == pytest.approx(20 / 0.0455)


def test_quartiles_on_known_inputs():
    assert timing.quartiles([1, 2, 3, 4, 5, 6, 7, 8, 9]) == (3, 5, 7)
    assert timing.quartiles([2.0]) == (2.0, 2.0, 2.0)
    assert timing.quartiles([1, 3]) == (1.5, 2, 2.5)


def test_coefficient_of_variation_is_sample_stdev_over_mean():
    assert repeats.coefficient_of_variation([1.0, 2.0, 3.0]) == pytest.approx(0.5)
    assert repeats.coefficient_of_variation([4.0, 4.0, 4.0]) == 0
    assert repeats.coefficient_of_variation([4.0]) is None
    assert repeats.coefficient_of_variation([1.0, None, 3.0]) == pytest.approx(statistics.stdev([1, 3]) / 2)


def test_across_repeats_gives_median_iqr_and_cv():
    figures = repeats.across_repeats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert figures["median"] == 3.0 and figures["iqr"] == 2.0 and figures["n"] == 5
    assert figures["cv"] == pytest.approx(statistics.stdev([1, 2, 3, 4, 100]) / 22)
    assert repeats.across_repeats([]) == {"median": None, "iqr": None, "cv": None, "n": 0}


def test_merging_repeats_keeps_each_repeat_and_takes_the_median_across_them():
    runs = [{"status": "ok", "step_median_s": m, "step_iqr_s": 0.1, "first_call_s": f, "import_s": 1.0,
             "batch_size": 20, "peak_rss_bytes": rss, "losses": [k], "load": {"busy": k == 1, "others_share": k}}
            for k, (m, f, rss) in enumerate([(1.0, 9.0, 10), (3.0, 7.0, 30), (2.0, 8.0, 20)])]
    merged = repeats.merge_repeats(runs)
    assert merged["repeats"] == 3
    assert merged["repeat_step_median_s"] == [1.0, 3.0, 2.0]
    assert merged["step_median_s"] == 2.0 and merged["step_repeat_iqr_s"] == 1.0
    assert merged["step_cv"] == pytest.approx(0.5)
    assert merged["first_call_s"] == 8.0 and merged["samples_per_s"] == 10.0
    assert merged["peak_rss_bytes"] == 30 and merged["losses"] == [2]  # the last repeat's curve
    assert merged["load"]["busy"]  # one disturbed repeat is enough to doubt the median
    failed = repeats.merge_repeats(runs[:1] + [{"status": "failed", "verdict": "failed: boom"}])
    assert failed["status"] == "failed" and failed["repeats"] == 2


# ------------------------------------------------------------------------- the worker's clock protocol

FAKE_ADAPTER = '''
NAME = DISPLAY_NAME = "fakeclock"
IMPORT_NAME = "json"
ENVIRONMENT = "shared"
VARIANTS = {"fakeclock": "a backend that reports its own step times"}
SUPPORTS_GPU = False
SUPPORTS_FLOAT64 = True
calls = {"synchronize": 0, "threads": None}
def version(): return "0"
def gpu_name(): return None
def synchronize(device): calls["synchronize"] += 1
def set_threads(n): calls["threads"] = n
def threads_in_effect(): return {"fake pool": calls["threads"]}
def peak_device_memory(device): return None
'''

FAKE_TRAINING = '''
import numpy as np
from tasks.classifier import Chunk, Compiled, Result

def train(problem, device, variant):
    yield Compiled()  # compilation ends here
    n = problem.steps
    yield Chunk([1.0] * n, step_seconds=[7.0] + [float(i) for i in range(1, n)])
    return Result(params=problem.params, val_logits=np.zeros((len(problem.y_val), 3)))
'''

YIELDS_A_LIST = '''
def train(problem, device, variant):
    yield [1.0, 2.0]  # the step protocol has no plain lists: Chunk(losses) says what they are
'''


def test_the_worker_times_compilation_apart_and_uses_step_times_a_chunk_carries(tmp_path, monkeypatch):
    package = tmp_path / "fakeclock"
    package.mkdir()
    (package / "__init__.py").write_text(FAKE_ADAPTER)
    (package / "classifier.py").write_text(FAKE_TRAINING)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = {"backend_module": "fakeclock", "task_module": "tasks.classifier",
            "implementation": "fakeclock.classifier", "kind": "training", "variant": "fakeclock", "device": "cpu", "recipe": "manual-sgd",
            "precision": "float64", "size": 2000, "seed": 0, "steps": 21, "lr": None, "threads": 3}
    record = worker.run(spec)
    adapter = sys.modules["fakeclock"]
    assert record["status"] == "ok", record
    assert record["compile_s"] >= 0 and "first_call_s" in record
    assert record["first_step_s"] == 7.0 and record["warmup_steps"] == 2
    assert record["step_median_s"] == 11.0  # the median of 2..20: the backend's own step times, warm-up left out
    assert record["step_iqr_s"] == 9.0
    assert "chunk_setup_s" in record
    assert adapter.calls["synchronize"] == 3  # a barrier before the clock at each yield, and one at the end
    assert record["threads_in_effect"]["fake pool"] == 3 and record["threads_in_effect"]["cpus"] >= 1


def test_a_backend_that_yields_something_else_is_told_the_protocol(tmp_path, monkeypatch):
    package = tmp_path / "fakelist"
    package.mkdir()
    (package / "__init__.py").write_text(FAKE_ADAPTER.replace("fakeclock", "fakelist"))
    (package / "classifier.py").write_text(YIELDS_A_LIST)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = {"backend_module": "fakelist", "task_module": "tasks.classifier",
            "implementation": "fakelist.classifier", "kind": "training", "variant": "fakelist", "device": "cpu", "recipe": "manual-sgd",
            "precision": "float64", "size": 2000, "seed": 0, "steps": 2, "lr": None, "threads": None}
    with pytest.raises(TypeError, match=r"yielded a list: .*Chunk\(losses\)"):
        worker.run(spec)


# ------------------------------------------------------------------------------------------- threads

def backend_cell(backend, **changes):
    fields = dict(recipe="manual-sgd", precision="float32", size=2000, steps=20)
    return make_cell("classifier", backend, **{**fields, **changes})


# What each framework reads back with --threads 1 (keys of the record's threads_in_effect).
READ_BACK = {"numpy": ("openblas",), "torch": ("torch intra-op", "torch inter-op", "libgomp"),
             "tensorflow": ("tensorflow intra-op", "tensorflow inter-op"), "jax": ("xla cpu pool (cpus)",),
             "keras": ("tensorflow intra-op", "tensorflow inter-op"), "mxnet": ("libgomp", "mxnet engine workers")}


@pytest.mark.parametrize("backend", backend_params())
def test_threads_are_recorded_and_in_effect(backend):
    cell = backend_cell(backend)
    record = runner.run_cell(cell, backend, TASK, threads=1)
    assert record["status"] == "ok", record.get("verdict")
    assert record["threads"] == 1
    found = record["threads_in_effect"]
    assert found["os_threads"] >= 1
    for prefix in READ_BACK.get(backend.name, ()):
        matching = {k: v for k, v in found.items() if prefix in k}
        assert matching and set(matching.values()) == {1}, (prefix, found)


def test_without_threads_nothing_is_forced_but_the_counts_are_still_read_back():
    record = runner.run_cell(backend_cell(NUMPY), NUMPY, TASK)
    assert record["threads"] is None
    assert record["threads_in_effect"]["cpus"] >= 1 and record["threads_in_effect"]["os_threads"] >= 1


# ------------------------------------------------------------------------------------------- repeats

def test_repeats_run_each_cell_n_times_in_rounds_and_merge_them(tmp_path):
    result = rosetta("run", "--backend", "numpy", "--device", "all", "--recipe", "manual-sgd,adam", "--size",
                     "2000", "--steps", "30", "--repeats", "3", "--out", str(tmp_path), "--name", "r")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "r"
    merged = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    each = [json.loads(line) for line in (run_dir / "repeats.jsonl").read_text().splitlines()]
    # a cell's merged record is written once its last repeat ends (a skipped one at once)
    assert sorted(r["cell"] for r in merged) == sorted(["classifier/numpy/manual-sgd/float32/cpu",
                                                        "classifier/numpy/manual-sgd/float32/gpu",
                                                        "classifier/numpy/adam/float32/cpu",
                                                        "classifier/numpy/adam/float32/gpu"])
    cpu = [r for r in merged if r["device"] == "cpu"]
    for r in cpu:
        assert r["repeats"] == 3 and len(r["repeat_step_median_s"]) == 3
        assert r["step_median_s"] == statistics.median(r["repeat_step_median_s"])
        assert r["step_cv"] is not None
    # rounds: every cell once, then again; a skipped cell (numpy on a GPU) runs once only
    ran = [(r["cell"], r["repeat"]) for r in each]
    assert ran == [("classifier/numpy/manual-sgd/float32/cpu", 1), ("classifier/numpy/manual-sgd/float32/gpu", 1),
                   ("classifier/numpy/adam/float32/cpu", 1), ("classifier/numpy/adam/float32/gpu", 1),
                   ("classifier/numpy/manual-sgd/float32/cpu", 2), ("classifier/numpy/adam/float32/cpu", 2),
                   ("classifier/numpy/manual-sgd/float32/cpu", 3), ("classifier/numpy/adam/float32/cpu", 3)]
    assert "CV" in (run_dir / "report.md").read_text()


# ------------------------------------------------------------------------------------------- --quick

def test_quick_plans_every_task_on_every_backend_at_small_sizes(tmp_path):
    from cifar_fixture import build_folder

    options = RunOptions(task="all", backend="all", device="all", quick=True,
                         task_options={"data_dir": str(build_folder(tmp_path))})
    planned = plan(options, REGISTRY)
    cells = planned.cells
    assert [t.name for t in planned.tasks] == list(REGISTRY.tasks)
    runnable = REGISTRY.runnable()
    unavailable = [b for b in REGISTRY.backends.values() if not b.runnable]
    expected = 0
    for task in planned.tasks:
        axes = 1
        for option in task.options.values():
            if option.axis:
                axes *= len({option.baseline, *(option.default or ())} - {None})
        expected += len(task.recipes) * len(runnable) * 2 * axes + len(unavailable)
        ran = [c for c in cells if c.task == task.name and c.recipe != "-"]
        assert {c.variant for c in ran} == {b.default_variant for b in runnable}
        assert {c.device for c in ran} == {"cpu", "gpu"}
        assert {c.recipe for c in ran} == set(task.recipes)
        assert {c.size for c in ran} == {task.quick_size}
        for c in ran:
            assert c.steps == task.quick_steps.get(c.recipe)
    assert len(cells) == expected
    # an explicit size or step count wins over --quick
    options.size, options.steps = 3000, 7
    cells = plan(options, REGISTRY).cells
    assert {(c.size, c.steps) for c in cells if c.recipe != "-"} == {(3000, 7)}


def test_quick_sizes_are_smaller_than_the_defaults():
    assert classifier.QUICK_SIZE < classifier.DEFAULT_SIZE
    for recipe, steps in classifier.QUICK_STEPS.items():
        assert steps < (classifier.RECIPES[recipe].steps or classifier.DEFAULT_SIZE)
        classifier.validate(classifier.QUICK_SIZE, recipe, steps)


# ---------------------------------------------------------------------------- the overhead benchmark

BARE = ROOT / "benchmarks" / "bare"
ALLOWED_IMPORTS = {"argparse", "json", "os", "statistics", "time", "numpy", "torch", "tensorflow", "jax", "optax",
                   "keras", "mxnet", "paddle"}


def test_the_benchmarked_backends_have_bare_scripts_that_import_nothing_of_rosetta():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import overhead
    for name in overhead.BACKENDS:
        assert (BARE / f"{name}_manual_sgd.py").exists(), f"no bare script for {name}"
    for script in BARE.glob("*_manual_sgd.py"):
        tree = ast.parse(script.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported <= ALLOWED_IMPORTS, f"{script.name} imports {imported - ALLOWED_IMPORTS}"


@pytest.fixture(scope="module")
def problem_file(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import overhead
    path = tmp_path_factory.mktemp("bare") / "problem.npz"
    return path, overhead.write_problem(path, size=2000, seed=0, precision="float32", steps=25)


@pytest.mark.parametrize("backend", backend_params())
def test_a_bare_script_runs_and_prints_what_the_worker_would_for_the_same_problem(backend, problem_file):
    path, config = problem_file
    script = BARE / f"{backend.name}_manual_sgd.py"
    if not script.exists():
        pytest.skip(f"benchmarks/bare has no script for {backend.name}")
    env = envs.worker_environment(backend, backend.default_variant, "cpu", 1)
    done = subprocess.run([str(envs.interpreter(backend)), str(script), "--problem", str(path), "--threads", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("BARE ")]
    assert len(lines) == 1, done.stdout
    out = json.loads(lines[0][len("BARE "):])
    assert out["steps"] == 25 and len(out["losses"]) == 25 and out["warmup_steps"] == 2
    assert out["step_median_s"] > 0 and out["step_iqr_s"] >= 0 and out["first_step_s"] > 0
    cell = backend_cell(backend, size=config["size"], steps=config["steps"])
    record = runner.run_cell(cell, backend, TASK, threads=1)
    assert record["status"] == "ok", record.get("verdict")
    assert out["losses"] == record["losses"], "the bare script does not do the same work as the backend"


def test_the_overhead_benchmark_prints_its_table_and_writes_its_results(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--backends", "numpy",
                           "--rounds", "2", "--size", "2000", "--steps", "30", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("| backend"))
    for column in ("bare step us", "rosetta step us", "ratio", "CV bare", "CV rosetta"):
        assert column in header
    row = next(line for line in done.stdout.splitlines() if line.startswith("| numpy"))
    assert "identical" in row
    (written,) = tmp_path.glob("*.json")
    saved = json.loads(written.read_text())
    assert saved["rounds"] == 2 and len(saved["runs"]["numpy"]["bare"]) == 2
    assert len(saved["summary"]["numpy"]["paired_ratios"]) == 2
    assert saved["summary"]["numpy"]["loss_max_rel_dev"] == 0


def test_the_timing_doc_reports_the_benchmark():
    doc = (ROOT / "docs" / "timing.md").read_text()
    assert "## Harness overhead and stability" in doc
    assert "benchmarks/overhead.py" in doc and "benchmarks/results/" in doc
    for line in ("| numpy ", "| torch ", "| tensorflow ", "| jax ", "| keras ", "| mxnet "):
        assert line in doc[doc.index("## Harness overhead and stability"):]



# ------------------------------------------------------------------------------------- a busy machine

BUSY_LOOP = "import time\nend = time.time() + 120\nwhile time.time() < end: pass\n"


def busy_cell():
    # numpy by hand, one thread, long enough (about two seconds) for the load meter's 10 ms ticks
    return make_cell("classifier", NUMPY, recipe="manual-sgd", precision="float64", size=20_000, steps=3000)


def test_a_cell_beside_a_busy_process_is_flagged_and_says_how_busy():
    """Another job on the machine while a cell runs: the record says how much CPU others took, and the report
    flags the timings instead of ranking them."""
    from rosetta.report.model import timing_flag
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(os.cpu_count() or 1)]
    try:
        record = runner.run_cell(busy_cell(), NUMPY, TASK, threads=1)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert record["status"] == "ok"
    load = record["load"]
    assert load["measured"] and load["busy"], load
    assert load["others_share"] > 0.5 and load["own_cpu_s"] > 0
    assert timing_flag(record).startswith("busy machine (others took")


def test_a_cell_on_a_quiet_machine_is_not_flagged():
    from rosetta.report.model import timing_flag
    from rosetta.worker.load import sample
    before = sample(1.0)
    if before["busy"]:
        pytest.skip(f"the machine is busy before the cell starts (other processes use {before['others_share']:.0%} "
                    f"of a CPU): the quiet case cannot be observed here")
    record = runner.run_cell(busy_cell(), NUMPY, TASK, threads=1)
    assert record["status"] == "ok"
    assert record["load"]["measured"] and not record["load"]["busy"], record["load"]
    assert "busy" not in timing_flag(record)
