"""The cnn task: its spec (data, weights, batch order), every variant through the real worker process
against the reference on a small CIFAR-format data set, judged as the reports judge it, and the report's
CNN sections."""

import numpy as np
import pytest

from cifar_fixture import N_TEST, PER_BATCH, build_folder
from conftest import BACKENDS, REAL_CIFAR10, REFERENCE, REGISTRY, backend_params, make_cell, ok, reference_of, \
    variant_params
from rosetta import judge
from rosetta.report.model import build
from tasks import cifar10

TASK = REGISTRY.task("cnn")
spec = TASK.module
cnn_section = TASK.report_module()  # tasks/cnn_report.py
N_TRAIN = 5 * PER_BATCH
HEAD = TASK.agreement_steps
# A variant agrees with the reference over the first steps, or its deviation lies in the band its backend
# declares (DECLARED_DIFFERENCES: e.g. a float32 momentum in a float64 run), as the reports judge it.
ACCEPTED = (judge.AGREES, judge.DECLARED)
FLOAT32_STEPS = 5  # batch64 on 200 images: 3 steps an epoch, so the second epoch's reshuffle runs too
REAL = REAL_CIFAR10
needs_real_data = pytest.mark.skipif(not (REAL / "test_batch").exists(),
                                     reason=f"the real CIFAR-10 is not at {REAL} (see ../shared/data/README.md)")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return str(build_folder(tmp_path_factory.mktemp("cifar")))


def cell_of(backend, data_dir, variant=None, precision="float64", recipe="tutorial", steps=HEAD):
    """A cell of the small data set (all of its 200 training images); the variant defaults to the backend's
    first for the task."""
    return make_cell("cnn", backend, variant or backend.variants_for(TASK.name)[0], recipe, precision, N_TRAIN,
                     steps, options={"data_dir": data_dir})


def judged(cell):
    """The cell's record (run once per session through the real worker, finished) and its judgement against
    the reference's record of the same problem."""
    record = ok(cell)
    return record, judge.judge(record, reference_of(cell), TASK, REFERENCE.name)


def explain(j) -> str:
    if j is None or j.head is None:
        return f"no deviation measured: {j}"
    return (f"{j.verdict}: max relative deviation {j.head:.2e} over {j.steps} steps (tolerance {j.tolerance:g}"
            + (f", declared band {j.band[0]:.1e} to {j.band[1]:.1e}" if j.band else "") + f") {j.why}")


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

@pytest.mark.parametrize("backend, variant", variant_params(with_reference=False, task="cnn"))
def test_first_20_steps_match_the_reference_in_float64(backend, variant, small_data):
    record, j = judged(cell_of(backend, small_data, variant))
    assert j is not None and j.steps == HEAD and j.tolerance == TASK.agreement_tolerance["float64"], explain(j)
    assert j.verdict in ACCEPTED, (
        f"{variant}, tutorial, float64: {explain(j)}; if the framework's computation genuinely differs, "
        f"declare it in its backend's DECLARED_DIFFERENCES with its reason and measured band")
    check_results(record, HEAD)
    assert record["metrics"]["layout"] == record["report_data"]["layout"]


@pytest.mark.parametrize("backend", backend_params(task="cnn"))
def test_float32_training_runs_and_stays_close_to_the_reference(backend, small_data):
    cell = cell_of(backend, small_data, precision="float32", recipe="batch64", steps=FLOAT32_STEPS)
    record, j = judged(cell)
    check_results(record, FLOAT32_STEPS)
    assert record["batch_size"] == 64 and len(record["epoch_s"]) == 2  # 3 steps an epoch: 3 + 2
    if backend.reference:
        assert j.verdict == judge.REFERENCE
    else:
        assert j.steps == FLOAT32_STEPS and j.head is not None, explain(j)
        assert j.head <= TASK.agreement_tolerance["float32"], explain(j)


def test_the_report_section_renders(small_data):
    records = [ok(cell_of(REFERENCE, small_data))]
    torch = BACKENDS["torch"]
    if torch.implements(TASK):
        records.insert(0, ok(cell_of(torch, small_data)))  # the run's order: the view puts the reference first
    view = build(records, REGISTRY).task(TASK.name)
    assert view.is_reference(view.records[0])
    sections = cnn_section.sections(view)
    titles = [s.title for s in sections]
    assert any("per class" in t for t in titles) and any("confusion" in t for t in titles)
    text = "\n".join(s.markdown for s in sections)
    assert "Accuracy for class: plane is" in text and "NCHW" in text
    assert "<img" in "".join(s.html for s in sections)
    if len(records) > 1:
        assert any("across backends" in t for t in titles)
    failed = build([{**view.records[0], "status": "failed"}], REGISTRY).task(TASK.name)
    assert cnn_section.sections(failed) == []


def test_the_confusion_matrices_keep_the_reference_when_there_are_many_runs(small_data):
    """More runs of one setting than the section draws: the reference's matrix (from the view) and the one
    furthest from it."""
    reference = ok(cell_of(REFERENCE, small_data))
    copies = [{**reference, "backend": f"copy{k}", "variant": f"copy{k}", "reference": False, "framework": f"Copy {k}",
               "metrics": {**reference["metrics"], "test_accuracy": reference["metrics"]["test_accuracy"] + k / 100}}
              for k in range(1, cnn_section.MAX_MATRICES + 1)]
    view = build(copies + [reference], REGISTRY).task(TASK.name)
    confusion = next(s for s in cnn_section.sections(view) if "confusion" in s.title)
    drawn = [line.strip("*") for line in confusion.markdown.splitlines() if line.startswith("**")]
    assert drawn == [cnn_section.column(reference, view.records),
                     cnn_section.column(copies[-1], view.records)], drawn
    assert f"the reference's ({REFERENCE.name})" in confusion.markdown


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


def test_the_options_are_declared_for_the_command_line():
    assert set(TASK.options) == {"epochs", "batch_size", "data_dir", "download"}
    assert TASK.options["data_dir"].kind == "path" and TASK.options["download"].kind == "flag"
    assert not any(option.axis for option in TASK.options.values())


def test_the_options_reach_the_worker(small_data):
    """epochs and batch_size given as the cell's options replace the recipe's inside the worker."""
    cell = make_cell("cnn", REFERENCE, None, "batch64", "float32", N_TRAIN,
                     options={"data_dir": small_data, "epochs": 1, "batch_size": 50})
    record = ok(cell)
    assert record["batch_size"] == 50 and record["steps"] == len(record["losses"]) == N_TRAIN // 50
    assert record["options"] == {"data_dir": small_data, "epochs": 1, "batch_size": 50}
    assert record["metrics"]["epochs"] == 1


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
