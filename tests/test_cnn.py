"""The cnn task: its spec (data, weights, batch order), every backend through the real worker process
against the numpy reference on a small CIFAR-format data set, and the report's CNN section."""

import numpy as np
import pytest

from cifar_fixture import N_TEST, PER_BATCH, build_folder
from conftest import REAL_CIFAR10, BACKENDS, ROOT, backend_params
from rosetta import report, runner
from rosetta.report_sections import cnn as cnn_section
from tasks import cifar10
from tasks import cnn as spec

N_TRAIN = 5 * PER_BATCH
HEAD = spec.AGREEMENT_STEPS
# A backend whose framework genuinely computes something else (e.g. a float32 momentum in a float64 run)
# says so in Result.notes; its curve must then still stay this close to numpy's.
DOCUMENTED_DIFFERENCE_BOUND = 1e-6
FLOAT32_STEPS = 5  # batch64 on 200 images: 3 steps an epoch, so the second epoch's reshuffle runs too
REAL = REAL_CIFAR10
needs_real_data = pytest.mark.skipif(not (REAL / "test_batch").exists(),
                                     reason=f"the real CIFAR-10 is not at {REAL} (see ../shared/data/README.md)")

_records: dict = {}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return str(build_folder(tmp_path_factory.mktemp("cifar")))


def run(backend, data_dir, precision="float64", recipe="tutorial", steps=HEAD):
    """The backend's default variant through the real worker, once per setting."""
    key = (backend.name, precision, recipe, steps)
    if key not in _records:
        if not backend.implements("cnn"):
            pytest.skip(f"{backend.name} has no cnn module yet (backends/{backend.name}/cnn.py)")
        cell = runner.Cell("cnn", backend.name, backend.default_variant, "cpu", recipe, precision, N_TRAIN, 0,
                           steps, data_dir=data_dir)
        _records[key] = runner.run_cell(cell, backend)
    record = _records[key]
    if record["status"] == "skipped":
        pytest.skip(record["verdict"])
    assert record["status"] == "ok", (record.get("verdict", "") + "\n" +
                                      str(record.get("error") or record.get("stderr_tail")))
    return record


def numpy_record(data_dir, **kwargs):
    return run(BACKENDS["numpy"], data_dir, **kwargs)


def check_results(record, steps):
    metrics = record["metrics"]
    assert record["verdict"] == "ok" and len(record["losses"]) == record["steps"] == steps
    assert metrics["layout"] in ("NCHW", "NHWC") and metrics["n_test"] == N_TEST and metrics["n_train"] == N_TRAIN
    assert len(metrics["per_class_accuracy"]) == 10
    counts = np.asarray(metrics["confusion_matrix"])
    assert counts.shape == (10, 10) and counts.sum() == N_TEST
    assert np.isclose(counts.trace() / N_TEST, metrics["test_accuracy"])
    for key in ("step_median_s", "finish_s", "epoch_s", "peak_rss_bytes", "framework_version"):
        assert record.get(key) is not None, key


# ------------------------------------------------------------------------------------------ backends

@pytest.mark.parametrize("backend", backend_params(with_numpy=False))
def test_first_20_steps_match_numpy_in_float64(backend, small_data):
    record = run(backend, small_data)
    reference = numpy_record(small_data)
    deviation = report.relative_deviation(record["losses"], reference["losses"]).max()
    if record.get("notes") and deviation > spec.AGREEMENT_TOLERANCE["float64"]:
        assert deviation <= DOCUMENTED_DIFFERENCE_BOUND, f"{deviation:.2e} despite notes {record['notes']}"
    else:
        assert deviation <= spec.AGREEMENT_TOLERANCE["float64"], (
            f"max relative deviation {deviation:.2e} with no documented difference; name it in Result.notes "
            f"if the framework's computation genuinely differs")
    check_results(record, HEAD)
    assert record["metrics"]["layout"] == record["report_data"]["layout"]


@pytest.mark.parametrize("backend", backend_params())
def test_float32_training_runs_and_stays_close_to_numpy(backend, small_data):
    record = run(backend, small_data, precision="float32", recipe="batch64", steps=FLOAT32_STEPS)
    check_results(record, FLOAT32_STEPS)
    assert record["batch_size"] == 64 and len(record["epoch_s"]) == 2  # 3 steps an epoch: 3 + 2
    reference = numpy_record(small_data, precision="float32", recipe="batch64", steps=FLOAT32_STEPS)
    deviation = report.relative_deviation(record["losses"], reference["losses"]).max()
    assert deviation <= spec.AGREEMENT_TOLERANCE["float32"], f"max relative deviation {deviation:.2e}"


def test_the_report_section_renders(small_data):
    records = [numpy_record(small_data)]
    if BACKENDS["torch"].implements("cnn"):
        records.append(run(BACKENDS["torch"], small_data))
    sections = cnn_section.sections(records)
    titles = [s.title for s in sections]
    assert any("per class" in t for t in titles) and any("confusion" in t for t in titles)
    text = "\n".join(s.markdown for s in sections)
    assert "Accuracy for class: plane is" in text and "NCHW" in text
    assert "<img" in "".join(s.html for s in sections)
    if len(records) > 1:
        assert any("across backends" in t for t in titles)
    assert cnn_section.sections([{**records[0], "status": "failed"}]) == []


# ---------------------------------------------------------------------------------------------- spec

def test_the_problem_follows_the_contract(small_data):
    problem = spec.make_problem(size=120, seed=3, recipe="tutorial", precision="float64", steps=None,
                                lr=None, data_dir=small_data)
    assert problem.x_train.shape == (120, 3, 32, 32) and problem.x_train.dtype == np.float64
    assert problem.x_test.shape == (N_TEST, 3, 32, 32) and problem.y_test.dtype == np.int64
    assert problem.x_train.min() >= -1 and problem.x_train.max() <= 1
    assert problem.class_names == cifar10.CLASS_NAMES
    assert {k: v.shape for k, v in problem.params.items()} == spec.PARAM_SHAPES
    for name, value in problem.params.items():  # PyTorch's default init: uniform(+-1/sqrt(fan_in))
        bound = 1 / np.sqrt(spec.FAN_IN[name.rpartition("_")[0]])
        assert value.dtype == np.float64 and np.abs(value).max() <= bound and np.abs(value).max() > 0.8 * bound
    assert problem.batch_size == 4 and problem.steps_per_epoch == 30 and problem.steps == 60
    assert problem.recipe.hyper == {"lr": 0.001, "momentum": 0.9}
    # epoch 1 visits the subset in order, epoch 2 is a reshuffle of the same images
    assert problem.batches[:30].ravel().tolist() == list(range(120))
    second = problem.batches[30:].ravel()
    assert sorted(second.tolist()) == list(range(120)) and second.tolist() != list(range(120))


def test_the_first_batches_do_not_depend_on_the_subset_size(small_data):
    kwargs = dict(seed=0, recipe="tutorial", precision="float32", steps=20, lr=None, data_dir=small_data)
    small, full = spec.make_problem(size=80, **kwargs), spec.make_problem(size=N_TRAIN, **kwargs)
    assert np.array_equal(small.x_train[small.batches], full.x_train[full.batches])
    assert np.array_equal(small.y_train[small.batches], full.y_train[full.batches])
    for name in small.params:
        assert np.array_equal(small.params[name], full.params[name])


def test_options_replace_the_recipe(small_data):
    problem = spec.make_problem(size=100, seed=0, recipe="batch64", precision="float32", steps=None, lr=0.01,
                                epochs=3, batch_size=10, data_dir=small_data)
    assert problem.batch_size == 10 and problem.epochs == 3 and problem.steps == 30
    assert problem.recipe.hyper == {"lr": 0.01, "momentum": 0.9}
    assert spec.make_problem(size=100, seed=0, recipe="batch64", precision="float32", steps=2, lr=None,
                             data_dir=small_data).steps == 2


@pytest.mark.parametrize("settings, words", [
    (dict(recipe="nope"), "unknown recipe"),
    (dict(size=3), "smaller than one batch"),
    (dict(size=60_000), "more than the 50000"),
    (dict(epochs=0), "--epochs"),
    (dict(batch_size=0), "--batch-size"),
    (dict(data_dir=None), "--data-dir"),
    (dict(size=1000), f"more than the {N_TRAIN} training images"),
])
def test_bad_settings_are_one_line_errors(small_data, settings, words):
    arguments = {**dict(size=100, seed=0, recipe="tutorial", precision="float32", steps=None, lr=None,
                        data_dir=small_data), **settings}
    with pytest.raises(ValueError) as error:
        spec.make_problem(**arguments)
    assert words in str(error.value) and "\n" not in str(error.value)


@needs_real_data
def test_the_real_data_gives_the_same_first_batches_for_any_subset():
    kwargs = dict(seed=0, recipe="tutorial", precision="float32", steps=HEAD, lr=None, data_dir=str(REAL))
    small, large = spec.make_problem(size=100, **kwargs), spec.make_problem(size=5000, **kwargs)
    assert np.array_equal(small.x_train[small.batches], large.x_train[large.batches])
    assert small.x_test.shape == (10_000, 3, 32, 32)
    means = large.x_train.mean(axis=(0, 2, 3))  # (0.4914, 0.4822, 0.4465) * 2 - 1 over the whole set
    assert np.allclose(means, [-0.017, -0.036, -0.107], atol=0.02), means
