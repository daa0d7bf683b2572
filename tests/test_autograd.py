"""The autograd task: the seeds' examples in every backend, through the real worker process, and the
gradient check's float64-against-float32 finding."""

import ast
import types

import numpy as np
import pytest

import backends.numpy as numpy_adapter
import backends.numpy.autograd as numpy_autograd
from conftest import BACKENDS, REFERENCE, REGISTRY, backend_params, make_cell, ok
from conftest import record as run_once
from rosetta.report.model import build

TASK = REGISTRY.task("autograd")
spec = TASK.module
section = TASK.report_module()  # tasks/autograd_report.py

AUTOGRAD = backend_params(task="autograd")  # the backends with an autograd module and no DOES_NOT_IMPLEMENT


def cell_of(backend):
    """One run of the task per backend (its default variant for the task, float32, the check size)."""
    return make_cell("autograd", backend, backend.variants_for("autograd")[0], precision="float32")


def record_of(backend) -> dict:
    """The backend's record, run once per session through the real worker, which must have finished."""
    return ok(cell_of(backend))


def checks_of(record) -> dict:
    return {row["check"]: row for row in record["report_data"]["checks"]}


def declared_accumulation(backend) -> tuple:
    """The backend module's ACCUMULATION = (pattern, words), read from its source: importing the module
    would import its framework, which the test's environment may not hold."""
    _, path = backend.module_for(TASK)
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ACCUMULATION" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} declares no ACCUMULATION = (pattern, words)")


def test_the_problem_reproduces_the_lectures_draws():
    problem = spec.make_problem()
    # np.random.seed(0), then randn for x, y and z: seed 004 prints grad_x (= y) and grad_y (= x)
    assert np.allclose(problem.lecture["y"][0], spec.SEED_004_GRAD_X_ROW0, atol=1e-8)
    assert np.allclose(problem.lecture["x"][0], [1.76405235, 0.40015721, 0.97873798, 2.2408932], atol=1e-8)
    assert problem.gradcheck_x.shape == (spec.DEFAULT_SIZE, spec.INPUTS)


def test_bad_input_is_a_one_line_value_error():
    with pytest.raises(ValueError, match="recipe"):
        spec.validate(8, "no-such-recipe")
    with pytest.raises(ValueError, match="size 0"):
        spec.make_problem(size=0)
    assert spec.make_problem(size=4, steps=10, lr=0.1).size == 4  # `--task all --steps N` must not break it


@pytest.mark.parametrize("backend", AUTOGRAD)
def test_the_seeds_examples(backend):
    record = record_of(backend)
    assert record["verdict"] == "ok"
    checks = checks_of(record)
    values = {name: row["values"] for name, row in checks.items()}
    assert np.ravel(values["square"][1]).tolist() == [4.0]
    assert np.ravel(values["vector_backward"][1]).tolist() == [-2.0, 2.0]
    assert np.ravel(values["control_flow"][0]).tolist() == [16.0]
    assert np.ravel(values["control_flow"][1]).tolist() == [32.0]

    problem = spec.make_problem(precision="float32")
    x, y, z = (problem.lecture[k].astype(np.float32) for k in "xyz")
    reference = numpy_autograd.lecture(x, y, z)  # the seed's hand-written backward
    c, grad_x, grad_y = values["lecture"]
    assert np.array_equal(np.reshape(grad_x, (3, 4)), reference[1])  # grad_x = y, exactly
    assert np.array_equal(np.reshape(grad_y, (3, 4)), reference[2])
    assert np.isclose(np.ravel(c)[0], reference[0], rtol=1e-6)


@pytest.mark.parametrize("backend", AUTOGRAD)
def test_the_custom_relu_backward_ran(backend):
    row = checks_of(record_of(backend))["custom_relu"]
    problem = spec.make_problem()
    y, grad, calls = row["values"]
    assert np.array_equal(np.ravel(grad), problem.relu_upstream * (problem.relu_x > 0))
    assert np.array_equal(np.ravel(y), np.maximum(problem.relu_x, 0))
    assert calls == 1, "the user-written backward must be the one that ran"


@pytest.mark.parametrize("backend", AUTOGRAD)
def test_repeated_backward_does_what_the_framework_documents(backend):
    record = record_of(backend)
    row = checks_of(record)["accumulate"]
    pattern, words = declared_accumulation(backend)
    assert pattern in spec.PATTERNS and words
    # the run judged against what the backend's module declares
    assert record["report_data"]["accumulation_model"] == {"pattern": pattern, "words": words}
    sequences = row["values"] if isinstance(row["values"], dict) else {"": row["values"]}
    first = np.asarray(next(iter(sequences.values())))
    expected = {"accumulates": [[1, 1], [2, 2], [3, 3]], "fresh": [[1, 1]] * 3}[pattern]
    assert first.tolist() == expected
    if backend.name == "mxnet":  # the default grad_req='write' overwrites
        assert np.asarray(sequences["grad_req='write'"]).tolist() == [[1, 1]] * 3
    assert row["status"] == "ok"


@pytest.mark.parametrize("backend", AUTOGRAD)
def test_the_compiled_loop_where_a_framework_compiles(backend):
    row = checks_of(record_of(backend))["control_flow_compiled"]
    if backend.name in ("tensorflow", "jax"):
        assert row["status"] == "ok"
        assert np.ravel(row["values"][1]).tolist() == [32.0]
    else:
        assert row["status"] == "n/a"


@pytest.mark.parametrize("backend", AUTOGRAD)
def test_the_gradient_check_needs_double_precision(backend):
    metrics = record_of(backend)["metrics"]
    # at eps 1e-6, measured: float64 ~3e-10 norm-wise (~5e-8 entry-wise), float32 ~0.2 (1: some entries wrong)
    e64, e32 = metrics["gradcheck_float64_norm_rel_error"], metrics["gradcheck_float32_norm_rel_error"]
    assert e64 < 1e-6 and metrics["gradcheck_float64_max_rel_error"] < 1e-6
    assert e32 > 1e4 * e64
    assert metrics["gradcheck_float32_max_rel_error"] > 0.1
    # ... although the float32 autograd gradient itself is fine: the finite differences are what fails
    assert metrics["analytic_float32_vs_float64_norm_rel_error"] < 1e-5
    assert metrics["gradcheck_float32_best_norm_rel_error"] > 100 * metrics["gradcheck_float64_best_norm_rel_error"]


def test_keras_does_not_implement_autograd():
    keras = BACKENDS["keras"]
    assert not keras.implements(TASK)
    assert "no autograd API of its own" in keras.does_not_implement["autograd"]
    assert "keras" not in [p.values[0].name for p in AUTOGRAD]
    skipped = run_once(make_cell("autograd", keras, precision="float32"))  # no worker: the engine says why
    assert skipped["status"] == "skipped"
    assert skipped["verdict"] == (f"skipped: {keras.display_name} does not implement autograd: "
                                    f"{keras.does_not_implement['autograd']}")


def broken_module(**replacements):
    """The reference's autograd module (its checks and its declared ACCUMULATION), with some functions replaced."""
    module = types.ModuleType("broken_autograd")
    for name in spec.BACKEND_FUNCTIONS:
        setattr(module, name, getattr(numpy_autograd, name))
    module.ACCUMULATION = numpy_autograd.ACCUMULATION
    for name, function in replacements.items():
        setattr(module, name, function)
    return module


def test_a_wrong_gradient_is_a_failed_verdict_naming_the_check():
    problem = spec.make_problem(precision="float64")

    def square(x):
        return x ** 2, x  # forgot the 2

    def gradients(params, x, y):
        grads = numpy_autograd.gradients(params, x, y)
        return {**grads, "b2": grads["b2"] * 1.01}

    def custom_relu(x, upstream):
        return np.maximum(x, 0), upstream * (x > 0), 0  # the custom backward never ran

    def accumulate(x):
        return [np.ones_like(x)] * 3  # not what numpy's model (accumulation) says

    assert numpy_autograd.ACCUMULATION[0] == "accumulates"
    result = spec.run_backend(problem, broken_module(square=square, gradients=gradients, custom_relu=custom_relu,
                                                     accumulate=accumulate), numpy_adapter, "cpu", "numpy")
    verdict = result["verdict"]
    assert verdict != "ok"
    for name in ("square", "gradient_check", "custom_relu", "accumulate"):
        assert f"{name}:" in verdict
    assert "lecture" not in verdict and "control_flow" not in verdict
    assert result["metrics"]["checks_failed"] == 4


def test_a_check_that_raises_is_reported_and_the_others_still_run():
    def control_flow(x):
        raise RuntimeError("no loops here")

    result = spec.run_backend(spec.make_problem(), broken_module(control_flow=control_flow), numpy_adapter, "cpu",
                              "numpy")
    assert result["verdict"] == "control_flow: raises RuntimeError: no loops here"
    assert checks_of(result)["lecture"]["status"] == "ok"


def test_the_report_sections_render():
    torch = BACKENDS["torch"]
    skipped = run_once(make_cell("autograd", BACKENDS["keras"], precision="float32"))
    assert skipped["status"] == "skipped"
    # in the run's order (keras, torch, numpy): the view puts them in the registry's, the reference first
    view = build([skipped, record_of(torch), record_of(REFERENCE)], REGISTRY).task("autograd")
    assert [r["backend"] for r in view.records] == [REFERENCE.name, "keras", "torch"]
    sections = section.sections(view)
    titles = [s.title for s in sections]
    assert len(sections) == 3, titles
    checks, accumulation, gradcheck = sections
    assert checks.markdown.splitlines()[0].endswith(f"| {REFERENCE.display_name} | {torch.display_name} |")
    assert "✓ x.grad = [-2, 2]" in checks.markdown
    assert "Keras 3 has no autograd API" in checks.markdown
    assert "PyTorch" in accumulation.markdown and "optimizer.zero_grad()" in accumulation.markdown
    assert "<img" in gradcheck.html and "double precision" in gradcheck.markdown
    assert section.sections(build([skipped], REGISTRY).task("autograd")) == []
