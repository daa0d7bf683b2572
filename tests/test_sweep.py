"""`rosetta sweep`: the planner (rosetta/sweeps.py), the report (rosetta/report/sweep.py) on constructed
timings, and one tiny sweep end to end through the real command line (two sizes, numpy and torch)."""

from __future__ import annotations

import json
import math

import pytest

from conftest import REGISTRY, ROOT, rosetta
from rosetta import sweeps
from rosetta.errors import UsageError
from rosetta.plan import RunOptions, plan
from rosetta.report import load
from rosetta.report import sweep as sweep_report

SIZES = ("--hidden", "12,64", "--batch-size", "20")


def sweep_options(**overrides) -> RunOptions:
    values = {"task": "classifier", "backend": "numpy,torch", "device": "cpu",
              "grid": [{"hidden": 12, "batch_size": 20}, {"hidden": 64, "batch_size": 20}], "ceiling_size": 64,
              **overrides}
    return RunOptions(**values)


# ------------------------------------------------------------------------------------------ the plan

def test_the_grid_is_every_combination_of_the_sizes_given_else_the_tasks_own():
    task = REGISTRY.task("classifier")
    given = sweeps.grid(task, {"hidden": (12, 64, 256), "batch_size": (20, 500)})
    assert given == [{"hidden": h, "batch_size": b} for h in (12, 64, 256) for b in (20, 500)]
    assert sweeps.grid(task, {"hidden": (12, 64)}) == [{"hidden": 12}, {"hidden": 64}]
    assert sweeps.grid(task, {}) == [dict(p) for p in task.sweep.grid]
    assert sweeps.grid(task, {}, quick=True) == [dict(p) for p in (task.sweep.quick_grid or task.sweep.grid)]


def test_a_sweep_plans_the_ceiling_first_then_each_point_timed_and_checked_in_float64():
    planned = plan(sweep_options(), REGISTRY)
    roles = [c.role for c in planned.cells]
    assert roles == ["ceiling"] * 4 + (["timed"] * 2 + ["check"] * 2) * 2
    ceiling = planned.cells[:4]
    assert {(c.backend, c.precision) for c in ceiling} == {(b, p) for b in ("numpy", "torch")
                                                           for p in ("float32", "float64")}
    assert all(c.size == 64 and c.recipe == REGISTRY.task(c.task).ceiling for c in ceiling)
    task = REGISTRY.task("classifier")
    for cell in planned.cells[4:]:
        assert cell.recipe == (task.sweep.recipe or task.default_recipe)
        assert dict(cell.axes)["batch_size"] == 20 and dict(cell.axes)["hidden"] in (12, 64)
        assert cell.precision == ("float32" if cell.role == "timed" else "float64")
        assert cell.steps == (task.sweep.steps if cell.role == "timed" else task.sweep.check_steps)
    assert len({c.id for c in planned.cells}) == len(planned.cells), "every cell has its own id"
    assert planned.cells[4].fields()["role"] == "timed" and "role" not in planned.cells[4].__class__(
        **{**planned.cells[4].__dict__, "role": ""}).fields(), "a plain run's records are as before"


def test_a_float64_sweep_is_its_own_check_and_the_reference_is_always_checked():
    planned = plan(sweep_options(precision="float64"), REGISTRY)
    assert "check" not in {c.role for c in planned.cells}
    alone = plan(sweep_options(backend="torch"), REGISTRY)
    checks = [c for c in alone.cells if c.role == "check"]
    assert {c.backend for c in checks} == {"numpy", "torch"}, "numpy checks torch even when not chosen"
    assert {c.backend for c in alone.cells if c.role == "timed"} == {"torch"}
    assert {c.backend for c in alone.cells if c.role == "ceiling"} == {"numpy", "torch"}


def test_the_saved_options_plan_the_same_cells_again_so_a_sweep_resumes():
    options = sweep_options(quick=True)
    again = RunOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert plan(again, REGISTRY).cells == plan(options, REGISTRY).cells


@pytest.mark.parametrize("overrides, message", [
    ({"task": "perceptron"}, "declares no sizes to sweep; tasks that do: "),
    ({"task": "classifier,cnn"}, "a sweep takes one task"),
    ({"grid": [{"width": 2}]}, "'width' is not a size of task classifier"),
    ({"grid": [{"hidden": 12, "batch_size": 10**9}]}, "batch"),
    ({"recipe": "nesterov"}, "unknown recipe 'nesterov'"),
])
def test_bad_sweeps_are_one_line_errors(overrides, message):
    with pytest.raises(UsageError, match=message) as error:
        plan(sweep_options(**overrides), REGISTRY)
    assert "\n" not in str(error.value)


def test_the_command_line_refuses_bad_sweeps_with_exit_2_and_no_folder(tmp_path):
    for args, message in ((["--task", "perceptron"], "declares no sizes to sweep"),
                          (["--hidden", "12,x"], "'x' is not a whole number"),
                          (["--task", "cnn", "--epochs", "1,2"], "--epochs takes one value in a sweep")):
        result = rosetta("sweep", *args, "--backend", "numpy", "--out", str(tmp_path), timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ the report's arithmetic

def _report(times: dict, flops=(1e6, 1e7, 1e8), peak=100.0, bandwidth=10.0, nbytes=1e6) -> sweep_report.SweepReport:
    points = [sweep_report.Point((("hidden", i),), f, f, nbytes) for i, f in enumerate(flops)]
    report = sweep_report.SweepReport(run=None, task=None, recipe="r", precision="float32", points=points,
                                      ceilings=[sweep_report.Ceiling("numpy", "numpy", "cpu", "float32", peak,
                                                                     bandwidth, 64)], timings=[])
    for variant, seconds in times.items():
        report.timings += [sweep_report.Timing(variant, variant, "cpu", p, s, None, "")
                           for p, s in zip(points, seconds) if s is not None]
    return report


def test_crossovers_name_the_points_around_the_swap_and_interpolate_in_log_log():
    report = _report({"a": [1.0, 1.0, 10.0], "b": [2.0, 2.0, 5.0], "c": [3.0, 3.0, 30.0]})
    assert report.leaders("cpu") == ["a", "b"]
    (found,) = report.crossovers("cpu")
    assert found["faster before"] == "a" and found["faster after"] == "b"
    assert found["between"] == "hidden=1 and hidden=2"
    # log(a/b) goes from log(1/2) to log(10/5): zero halfway between log(1e7) and log(1e8)
    assert math.isclose(found["at about"], math.sqrt(1e7 * 1e8), rel_tol=1e-12)
    assert _report({"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}).crossovers("cpu") == []


def test_the_roofline_is_the_lower_of_the_peak_and_intensity_times_bandwidth():
    report = _report({"a": [1.0, 1.0, 1.0]}, flops=(1e6, 1e7, 1e9), peak=100.0, bandwidth=10.0, nbytes=1e6)
    assert [report.roofline(p, "cpu") for p in report.points] == [10.0, 100.0, 100.0]  # 1, 10, 1000 FLOP/B
    assert report.at(report.points[0], "cpu")[0].gflops == pytest.approx(1e6 / 1.0 / 1e9)


# ------------------------------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """Two sizes of the classifier, numpy and PyTorch, through the real command line."""
    out = tmp_path_factory.mktemp("sweeps")
    result = rosetta("sweep", "--task", "classifier", "--backend", "numpy,torch", "--device", "cpu", *SIZES,
                     "--steps", "6", "--ceiling-size", "256", "--out", str(out), "--name", "tiny", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "tiny", result


def test_a_tiny_sweep_runs_every_cell_and_writes_its_report(tiny_sweep):
    run_dir, result = tiny_sweep
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(r["status"] == "ok" for r in records), [r.get("verdict") for r in records]
    assert sorted(r["role"] for r in records) == ["ceiling"] * 4 + ["check"] * 4 + ["timed"] * 4
    report = (run_dir / "report.md").read_text()
    for title in ("The machine's ceiling", "The points", "Step time and GFLOP/s (cpu)", "Fastest at each size (cpu)",
                  "Crossovers (cpu)", "At the largest size (cpu)", "Correctness: float64 against the reference"):
        assert f"## {title}" in report
    assert "![sweep-rate-cpu](sweep-rate-cpu.png)" in report and (run_dir / "sweep-rate-cpu.png").stat().st_size
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Fastest at each size" in page
    assert "Fastest at each size" in result.stdout, "the terminal shows the sweep's summary"


def test_the_float64_checks_agree_with_numpy_at_every_point(tiny_sweep):
    run_dir, _ = tiny_sweep
    model = sweep_report.build(load(run_dir, REGISTRY))
    assert len(model.checks) == 4
    for (variant, device, sizes), judgement in model.checks.items():
        expected = "reference" if variant == "numpy" else "agrees"
        assert judgement is not None and judgement.verdict == expected, (variant, sizes, judgement)


def test_the_roofline_is_drawn_from_the_runs_own_ceiling(tiny_sweep):
    run_dir, _ = tiny_sweep
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    peaks = {r["backend"]: r["metrics"]["peak_matmul_gflops"] for r in records
             if r["role"] == "ceiling" and r["precision"] == "float32"}
    bandwidth = max(r["metrics"]["bandwidth_gbs"] for r in records if r["role"] == "ceiling")
    model = sweep_report.build(load(run_dir, REGISTRY))
    lines = sweep_report.ceiling_lines(model, "cpu")
    assert lines["peak"][0] == max(peaks.values())
    task = REGISTRY.task("classifier")
    for point, bound in zip(model.points, lines["roofline"][1]):
        cost = task.step_cost(records[0]["size"], model.recipe, precision="float32", **dict(point.sizes))
        assert bound == min(max(peaks.values()), cost.flops / cost.bytes * bandwidth)
    figure = sweep_report.sweep_figure(model, "cpu", "rate")
    drawn = {line.get_label(): list(line.get_ydata()) for line in figure.axes[0].get_lines()}
    peak_line = next(values for label, values in drawn.items() if label.startswith("peak matmul"))
    assert set(peak_line) == {max(peaks.values())}
    assert {"numpy", "torch"} <= set(drawn), "one line per variant"
    measured = {t.variant: t.gflops for t in model.timings if t.point == model.points[-1]}
    assert drawn["torch"][-1] == measured["torch"]


def test_a_sweep_rebuilds_from_its_records_and_its_sections_publish(tiny_sweep, tmp_path):
    from rosetta.published import Table, render

    run_dir, _ = tiny_sweep
    before = (run_dir / "report.md").read_text()
    result = rosetta("report", str(run_dir), timeout=300)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "report.md").read_text() == before
    shown = render(Table(str(run_dir.relative_to(ROOT)) if run_dir.is_relative_to(ROOT) else str(run_dir), None, (),
                         "", "Fastest at each size"), REGISTRY, tmp_path, root=ROOT)
    assert "| point |" in shown and "hidden=64" in shown
