"""The perceptron task (Course 1's 20-32-32 network, one sample a step, cost (sum z)^2): the spec, every
backend variant that implements it through the real worker against numpy, and its report section."""

import math

import numpy as np
import pytest

from conftest import BACKENDS, RUNNABLE, backend_params, variant_params
from rosetta import envs, report, runner
from rosetta.report_sections import perceptron as section
from rosetta.results import append_record
from tasks import perceptron as spec

STEPS = spec.AGREEMENT_STEPS  # all 1,000 of the course's steps: a few seconds a cell, mostly imports

_records: dict = {}


def implementing(params):
    """The variants that implement the task (the adapter's TASK_VARIANTS); a known float64 deviation of the
    adapter (a framework bug) is an expected failure, strictly, as in test_backends.py."""
    kept = []
    for p in params:
        backend, variant = p.values
        if not backend.implements("perceptron", variant):
            continue
        reason = backend.known_deviations.get(variant)
        marks = list(p.marks) + ([pytest.mark.xfail(reason=reason, strict=True)] if reason else [])
        kept.append(pytest.param(backend, variant, id=p.id, marks=marks))
    return kept


def run(backend, variant, precision="float64", steps=STEPS):
    key = (variant, precision, steps)
    if key not in _records:
        cell = runner.Cell("perceptron", backend.name, variant, "cpu", "course", precision, spec.DEFAULT_SIZE, 0, steps)
        record = runner.run_cell(cell, backend)
        assert record["status"] == "ok", (record.get("verdict", "") + "\n" +
                                          str(record.get("error") or record.get("stderr_tail")))
        _records[key] = record
    return _records[key]


def numpy_record(precision="float64", steps=STEPS):
    return run(BACKENDS["numpy"], "numpy", precision, steps)


def norms(record):
    return record["report_data"]["param_norms"]


# ------------------------------------------------------------------------------------------- spec

def test_learning_rate_follows_the_course_schedule():
    expected = {0: 1e-3, 500: 1e-3, 599: 1e-3, 600: 1e-4, 699: 1e-4, 700: 1e-5, 999: 1e-7}
    for step, lr in expected.items():
        assert spec.learning_rate(step) == pytest.approx(lr, rel=1e-12), step
    problem = spec.make_problem(size=10, precision="float64", lr=0.01)
    assert problem.learning_rate(0) == pytest.approx(0.01) and problem.learning_rate(650) == pytest.approx(0.001)


def test_problem_holds_the_course_network_and_samples_in_order():
    problem = spec.make_problem(size=7, seed=3, precision="float64", steps=20)
    assert {k: v.shape for k, v in problem.params.items()} == {
        "theta1": (32, 20), "bias1": (32,), "theta2": (32, 32), "bias2": (32,)}
    assert problem.samples.shape == (20, 20) and problem.steps == 20 and problem.batch_size == 1
    np.testing.assert_array_equal(problem.samples[7:14], problem.samples[:7])  # step i uses sample i % size
    assert 0.05 < problem.params["theta1"].std() < 0.2  # randn * 0.1
    longer = spec.make_problem(size=7, seed=3, precision="float64", steps=50)
    for name, value in problem.params.items():  # more steps never change the weights or the samples
        np.testing.assert_array_equal(longer.params[name], value)
    np.testing.assert_array_equal(longer.samples[:20], problem.samples)
    single = spec.make_problem(size=7, seed=3, precision="float32", steps=20)
    assert single.samples.dtype == np.float32 and single.params["theta2"].dtype == np.float32
    np.testing.assert_allclose(single.params["theta2"], problem.params["theta2"], rtol=1e-6)
    assert spec.make_problem(precision="float64").steps == 1000


@pytest.mark.parametrize("kwargs, message", [
    ({"recipe": "adam"}, "unknown recipe 'adam'; known recipes: course"),
    ({"size": 0}, "size 0 is too small"),
    ({"steps": 0}, "steps must be at least 1, got 0"),
    ({"precision": "float16"}, "unknown precision 'float16'"),
    ({"lr": -0.1}, "lr must be positive, got -0.1"),
])
def test_bad_arguments_are_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as error:
        spec.make_problem(**kwargs)
    assert "\n" not in str(error.value)


def test_reference_answers_the_exercise_and_explains_why():
    """In-process numpy: the norm falls a little but stays above the norm of what no step can change."""
    from backends.numpy.perceptron import train
    problem = spec.make_problem(precision="float64")
    training = train(problem, "cpu", "numpy")
    losses = []
    try:
        while True:
            losses.append(next(training))
    except StopIteration as finished:
        result = finished.value
    metrics = spec.check(problem, result, losses)
    assert metrics["verdict"] == "ok" and metrics["norm_fell"] and not metrics["norm_converges_to_zero"]
    assert metrics["norm_floor"] < metrics["final_param_norm"] < metrics["initial_param_norm"]
    # the floor is invariant: the updates of theta2 and bias2 only move them along the all-ones direction
    assert metrics["final_norm_floor"] == pytest.approx(metrics["norm_floor"], rel=1e-13)
    assert metrics["mean_cost_last_100"] < metrics["mean_cost_first_100"]
    assert result.param_norms[-1] == pytest.approx(spec.param_norm(result.params), rel=1e-14)
    summary = spec.summary_for_report(problem, result)
    assert len(summary["param_norms"]) == 1000 and summary["norms_every"] == 1

    broken = spec.Result(params=result.params, param_norms=result.param_norms[:-1])
    assert spec.check(problem, broken, losses)["verdict"] == "wrong: 999 parameter norms for 1000 steps"
    assert spec.check(problem, result, losses[:10])["verdict"] == "wrong: 10 costs for 1000 steps"
    assert spec.check(problem, result, losses[:-1] + [math.nan])["verdict"] == "diverged at step 999"


# ---------------------------------------------------------------------------------------- backends

@pytest.mark.parametrize("backend, variant", implementing(variant_params(with_numpy=False)))
def test_float64_parameter_norms_match_numpy_at_every_step(backend, variant):
    record, reference = run(backend, variant), numpy_record()
    assert record["verdict"] == "ok" and len(record["losses"]) == len(norms(record)) == STEPS
    deviation = report.relative_deviation(norms(record), norms(reference))
    assert deviation.max() <= spec.AGREEMENT_TOLERANCE["float64"], f"max relative deviation {deviation.max():.2e}"
    # The costs agree too, but (sum z)^2 falls to ~1e-7 at some steps, where sum z is a difference of numbers
    # a thousand times larger: measured up to 1.7e-12 relative, hence the norms as the compared series.
    assert report.relative_deviation(record["losses"], reference["losses"]).max() <= 1e-10
    verdict = report.agreement(record, report.references_of([reference]))
    assert verdict["agreement"] == "agrees" and verdict["head_steps"] == STEPS


@pytest.mark.parametrize("backend", backend_params())
def test_float32_default_variant_trains_and_reports_everything(backend):
    if not backend.implements("perceptron", backend.default_variant):
        pytest.skip(f"{backend.name} does not implement the perceptron")
    record = run(backend, backend.default_variant, "float32")
    metrics = record["metrics"]
    assert record["verdict"] == "ok" and record["precision"] == "float32"
    assert record["steps"] == STEPS and record["batch_size"] == 1 and record["step_median_s"] > 0
    assert metrics["norm_floor"] < metrics["final_param_norm"] < metrics["initial_param_norm"]
    if backend.name != "numpy":  # float32 rounding only: measured up to 6e-7 relative over the 1,000 steps
        deviation = report.relative_deviation(norms(record), norms(numpy_record("float32")))
        assert deviation.max() <= spec.AGREEMENT_TOLERANCE["float32"]


# ------------------------------------------------------------------------------------------ report

def test_report_section_and_reports_render_with_every_backend(tmp_path):
    installed = [b for b in RUNNABLE if envs.is_installed(b) and b.implements("perceptron", b.default_variant)]
    records = [run(b, b.default_variant) for b in installed]
    records += [run(b, b.default_variant, "float32") for b in installed if b.name == "numpy"]
    sections = section.sections(records)
    assert [s.title for s in sections] == ["Does the parameter norm converge to zero?",
                                           "Parameter norm, cost and per-step time"]
    answer, table = sections
    assert answer.markdown.startswith("No: over 1000 steps (numpy, float64) the parameter norm fell from")
    assert "<img" in answer.html
    for b in installed:
        assert f"| {b.default_variant} |" in table.markdown
    rows = section.rows_of(records)
    numpy_row = next(r for r in rows if r["variant"] == "numpy" and r["precision"] == "float64")
    assert numpy_row["x numpy"] == 1.0 and numpy_row["norm change %"] < 0

    for record in records:
        append_record(tmp_path / "results.jsonl", record)
    written = report.write_reports(tmp_path)
    markdown, page = written["markdown"].read_text(), written["html"].read_text()
    assert "Does the parameter norm converge to zero?" in markdown and "could not be drawn" not in markdown
    assert "Parameter norm, cost and per-step time" in page and "could not be drawn" not in page
