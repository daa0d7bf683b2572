"""The cnn task: its spec (data, weights, batch order, width, sweep), every variant through the real worker
process against the reference on a small CIFAR-format data set (the tutorial's network, and a wider one at
another batch size), judged as the reports judge it, the report's CNN sections, and step_cost() against
counts made another way (PyTorch's FlopCounterMode, the numpy reference's operations, its arrays' bytes)."""

import importlib

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
    assert set(TASK.options) == {"epochs", "batch_size", "data_dir", "download", "width", "test_size"}
    assert TASK.options["width"].kind == TASK.options["test_size"].kind == "int"
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
    (dict(width=0), "--width"),
    (dict(width=1.5), "--width"),
    (dict(test_size=0), "--test-size"),
    (dict(test_size=10_001), "--test-size"),
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


# ------------------------------------------------------------------------------------- width and sweep

# The tutorial's network as the spec had it before width existed: width 1 must stay exactly this.
TUTORIAL_SHAPES = {"conv1_w": (6, 3, 5, 5), "conv1_b": (6,), "conv2_w": (16, 6, 5, 5), "conv2_b": (16,),
                   "fc1_w": (400, 120), "fc1_b": (120,), "fc2_w": (120, 84), "fc2_b": (84,),
                   "fc3_w": (84, 10), "fc3_b": (10,)}
TUTORIAL_FAN_IN = {"conv1": 75, "conv2": 150, "fc1": 400, "fc2": 120, "fc3": 84}


@pytest.mark.parametrize("settings, flag", [
    (dict(width=0), "--width"), (dict(width=-2), "--width"), (dict(width=2.0), "--width"),
    (dict(width=True), "--width"), (dict(test_size=0), "--test-size"), (dict(test_size=10_001), "--test-size"),
    (dict(test_size="500"), "--test-size"),
])
def test_cnn_validate_refuses_a_bad_width_or_test_size_in_one_line(settings, flag):
    with pytest.raises(ValueError) as error:
        spec.validate(100, "tutorial", None, **settings)
    assert str(error.value).startswith(flag) and "\n" not in str(error.value)
    spec.validate(100, "tutorial", None, width=3, test_size=10_000)  # the largest test set, any width: fine


def test_cnn_width_1_is_the_tutorials_network_unchanged(small_data):
    assert spec.PARAM_SHAPES == spec.param_shapes(1) == TUTORIAL_SHAPES
    assert list(spec.param_shapes(1)) == list(TUTORIAL_SHAPES)  # the order the weights are drawn in
    assert spec.FAN_IN == spec.fan_in(1) == TUTORIAL_FAN_IN
    kwargs = dict(size=120, seed=7, recipe="tutorial", precision="float64", steps=None, lr=None, data_dir=small_data)
    default, one = spec.make_problem(**kwargs), spec.make_problem(**kwargs, width=1)
    assert default.width == one.width == 1
    for name, shape in TUTORIAL_SHAPES.items():
        assert default.params[name].shape == shape and np.array_equal(default.params[name], one.params[name]), name
    assert np.array_equal(default.batches, one.batches) and np.array_equal(default.x_train, one.x_train)
    # the same random draws as before width existed: the first and last numbers of the first and last layers
    rng = np.random.default_rng(0)
    first = spec.initial_params(rng, "float64")
    rng = np.random.default_rng(0)
    bounds = {name: 1 / np.sqrt(TUTORIAL_FAN_IN[name.rpartition("_")[0]]) for name in TUTORIAL_SHAPES}
    expected = {name: rng.uniform(-bounds[name], bounds[name], shape) for name, shape in TUTORIAL_SHAPES.items()}
    for name in TUTORIAL_SHAPES:
        assert np.array_equal(first[name], expected[name]), name


def test_cnn_width_2_doubles_the_channels_and_initializes_by_its_fan_in(small_data):
    problem = spec.make_problem(size=120, seed=3, recipe="tutorial", precision="float32", steps=None, lr=None,
                                data_dir=small_data, width=2, test_size=25)
    shapes = {k: v.shape for k, v in problem.params.items()}
    assert shapes == {"conv1_w": (12, 3, 5, 5), "conv1_b": (12,), "conv2_w": (32, 12, 5, 5), "conv2_b": (32,),
                      "fc1_w": (800, 120), "fc1_b": (120,), "fc2_w": (120, 84), "fc2_b": (84,),
                      "fc3_w": (84, 10), "fc3_b": (10,)} == spec.param_shapes(2)
    assert problem.width == spec.width_of(problem.params) == 2
    assert spec.fan_in(2) == {"conv1": 75, "conv2": 300, "fc1": 800, "fc2": 120, "fc3": 84}
    for name, value in problem.params.items():  # uniform(+-1/sqrt(fan_in)) with width 2's fan-in
        bound = 1 / np.sqrt(spec.fan_in(2)[name.rpartition("_")[0]])
        assert value.dtype == np.float32 and np.abs(value).max() <= bound and np.abs(value).max() > 0.8 * bound, name
    # test_size keeps the first images of the test set; the training data and batches do not change
    whole = spec.make_problem(size=120, seed=3, recipe="tutorial", precision="float32", steps=None, lr=None,
                              data_dir=small_data)
    assert problem.x_test.shape == (25, 3, 32, 32) and np.array_equal(problem.x_test, whole.x_test[:25])
    assert np.array_equal(problem.y_test, whole.y_test[:25]) and np.array_equal(problem.batches, whole.batches)
    # more than the folder holds (the look-alike's 40): all of them
    assert len(spec.make_problem(size=120, seed=3, recipe="tutorial", precision="float32", steps=1, lr=None,
                                 data_dir=small_data, test_size=1000).x_test) == N_TEST


def test_cnn_width_is_part_of_the_problem_and_test_size_is_not():
    assert "width" in TASK.same_problem and "batch_size" in TASK.same_problem
    assert "test_size" not in TASK.same_problem  # it changes nothing before training ends
    wide = {"task": "cnn", "recipe": "tutorial", "precision": "float64", "seed": 0, "batch_size": 8,
            "options": {"width": 2, "test_size": 24}}
    assert judge.same_problem(wide, TASK) != judge.same_problem({**wide, "options": {"width": 3}}, TASK)
    assert judge.same_problem(wide, TASK) == judge.same_problem({**wide, "options": {"width": 2}}, TASK)


def test_cnn_sweep_goes_from_the_tutorial_to_arithmetic_bound_steps():
    sweep = spec.SWEEP
    assert TASK.sweep is sweep and set(sweep.sizes) == {"batch_size", "width"} <= set(TASK.options)
    assert sweep.grid[0] == {"batch_size": 4, "width": 1} == sweep.quick_grid[0]  # the tutorial's network first
    assert sweep.recipe in TASK.recipes and spec.RECIPES[sweep.recipe].batch_size == 4
    assert all(point in sweep.grid for point in sweep.quick_grid)
    size = sweep.size or TASK.quick_size
    for points in (sweep.grid, sweep.quick_grid):
        costs = [spec.step_cost(size, sweep.recipe, **sweep.options, **point) for point in points]
        assert all(a.flops < b.flops and a.intensity < b.intensity for a, b in zip(costs, costs[1:])), points
        for point in points:  # every cell of the sweep is valid: the timed and the check runs
            for steps in (sweep.steps, sweep.quick_steps, sweep.check_steps):
                spec.validate(size, sweep.recipe, steps, **sweep.options, **point)
    assert costs[-1].flops / spec.step_cost(size, sweep.recipe, **sweep.grid[0]).flops > 100
    assert 0 < sweep.options["test_size"] < spec.TEST_IMAGES


# A wider network at a batch the recipes do not use, as a sweep's cells run it, in every variant.
WIDE_POINT = {"width": 2, "batch_size": 8}
WIDE_STEPS = 4
WIDE_TEST_SIZE = 24


# Each backend's default variant: a backend's variants build the same network from the same weights (the sizes
# come from the weights and the batch order, in code they share), and every variant runs the width-1 tests above.
DEFAULT_VARIANTS = [p for p in variant_params(with_reference=False, task="cnn")
                    if p.values[1] == p.values[0].default_variant]


@pytest.mark.parametrize("backend, variant", DEFAULT_VARIANTS)
def test_cnn_at_width_2_and_batch_8_matches_the_reference_in_float64(backend, variant, small_data):
    cell = make_cell("cnn", backend, variant, "tutorial", "float64", N_TRAIN, WIDE_STEPS,
                     options={"data_dir": small_data, "test_size": WIDE_TEST_SIZE, **WIDE_POINT})
    record, j = judged(cell)
    assert record["batch_size"] == 8 and record["options"]["width"] == 2, record["options"]
    # check() found every final parameter in width 2's shapes and the logits of the first 24 test images
    assert record["verdict"] == "ok" and record["metrics"]["n_test"] == WIDE_TEST_SIZE
    assert j is not None and j.steps == WIDE_STEPS and j.tolerance == TASK.agreement_tolerance["float64"], explain(j)
    # a backend's declared band (a float32 momentum) may be wider than these few steps' drift: closer is fine
    assert j.verdict in ACCEPTED or (j.verdict == judge.CLOSER and j.head <= j.tolerance), \
        f"{variant}, width 2, batch 8, float64: {explain(j)}"


# ------------------------------------------------------------------------------------------ step cost
# step_cost() against counts made another way, never timed: exact, or within a stated tolerance.

numpy_cnn = importlib.import_module(REFERENCE.module_for(TASK)[0])  # backends/<reference>/cnn.py
# (batch, width): the tutorial's step, one image, odd widths, a larger batch.
COST_POINTS = [(4, 1), (1, 1), (8, 2), (3, 3), (32, 2)]


@pytest.mark.parametrize("batch, width", COST_POINTS)
def test_cnn_dense_flops_are_what_torch_counts_for_the_same_network(batch, width):
    """FlopCounterMode counts 2*M*N*K per matrix product and a convolution's multiply-adds (its bias adds not
    included), forward and backward, in the torch backend's own Net. The images need no gradient, so torch's
    convolution backward of conv1 computes (and counts) only the weight gradient: step_cost leaves conv1's
    input gradient out for the same reason, and asking torch for it adds exactly that product."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    torch_cnn = importlib.import_module("backends.torch.cnn")

    torch.manual_seed(0)
    net = torch_cnn.Net(width).double()
    x = torch.randn(batch, 3, 32, 32, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,))
    cost = spec.step_cost(N_TRAIN, "tutorial", batch_size=batch, width=width)

    def counted(images):
        net.zero_grad()
        with FlopCounterMode(display=False) as counter:
            torch.nn.CrossEntropyLoss()(net(images), y).backward()
        return counter.get_total_flops()

    assert counted(x) == cost.dense_flops
    conv1_input_gradient = 2 * batch * (6 * width * 28 * 28) * (3 * 5 * 5)
    assert counted(x.clone().requires_grad_(True)) == cost.dense_flops + conv1_input_gradient


@pytest.mark.parametrize("batch, width", COST_POINTS)
def test_cnn_activation_bytes_are_every_layer_output_written_and_read_once_forward_and_back(batch, width):
    """The unfused traffic from the sizes of the arrays the torch backend's Net really produces (forward hooks):
    each convolution's and dense layer's output and its ReLU, each pool's output, the logits and their
    log-softmax; the backward pass has one gradient of each; every parameter's gradient too; each written once
    and read once."""
    torch = pytest.importorskip("torch")
    torch_cnn = importlib.import_module("backends.torch.cnn")

    net = torch_cnn.Net(width)
    produced = []
    for module in (net.conv1, net.conv2, net.pool, net.fc1, net.fc2, net.fc3):
        module.register_forward_hook(lambda module, inputs, output: produced.append((module, output.numel())))
    net(torch.zeros(batch, 3, 32, 32))
    layers = sum(n for _, n in produced)  # conv1, pool, conv2, pool, fc1, fc2, fc3: each output once
    with_relu = sum(n for m, n in produced if m is not net.pool and m is not net.fc3)  # ReLU's output: the same
    logits = dict((id(m), n) for m, n in produced)[id(net.fc3)]
    forward = layers + with_relu + logits  # + the log-softmax
    parameters = sum(p.numel() for p in net.parameters())
    for precision, itemsize in (("float32", 4), ("float64", 8)):
        cost = spec.step_cost(N_TRAIN, "tutorial", batch_size=batch, width=width, precision=precision)
        assert cost.activation_bytes == 2 * (2 * forward + parameters) * itemsize


class Counting(np.ndarray):
    """An array that counts the arithmetic numpy does on it: a matmul 2*M*N*K per product (batched ones per
    item), any other ufunc one operation per element it produces, a reduction (sum, max) n - 1 per n numbers
    it reduces, argmax n - 1 compares per n numbers. Results are Counting again, so the count follows the values
    through the whole step. Array functions are recorded by name: one that computes (np.dot, np.einsum,
    np.tensordot) would escape the count, so the test checks that none runs."""

    matmul = 0
    elementwise = 0
    functions: set = set()

    @classmethod
    def reset(cls):
        cls.matmul, cls.elementwise, cls.functions = 0, 0, set()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [a.view(np.ndarray) if isinstance(a, Counting) else a for a in inputs]
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Counting) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if ufunc is np.matmul:
            a, b = np.shape(plain[0]), np.shape(plain[1])
            items = int(np.prod(np.broadcast_shapes(a[:-2], b[:-2])))
            Counting.matmul += 2 * items * a[-2] * a[-1] * b[-1]
        elif method == "__call__":
            Counting.elementwise += np.size(result)
        elif method == "reduce":
            Counting.elementwise += np.size(plain[0]) - np.size(result)
        else:
            raise AssertionError(f"{ufunc.__name__}.{method}: not counted")
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(Counting) if isinstance(result, np.ndarray) else result

    def __array_function__(self, func, types, args, kwargs):
        Counting.functions.add(func.__name__)
        return super().__array_function__(func, types, args, kwargs)

    def argmax(self, axis=None, **kwargs):
        result = self.view(np.ndarray).argmax(axis=axis, **kwargs)
        Counting.elementwise += self.size - np.size(result)
        return np.asarray(result).view(Counting)


def one_reference_step(problem):
    """Run the reference's first training step (train() up to its first yield: forward, backward, update) on
    counting arrays; the generator, whose frame holds the arrays the step used."""
    problem.params = {k: v.view(Counting) for k, v in problem.params.items()}
    problem.x_train = problem.x_train.view(Counting)
    Counting.reset()
    training = numpy_cnn.train(problem, "cpu", REFERENCE.default_variant)
    loss = next(training)
    assert np.isfinite(loss)
    return training


def numpy_beyond_the_ideal(batch, width):
    """The operations backends/numpy/cnn.py performs beyond the ideal step that step_cost counts, each a choice
    of its implementation (read from its code), counted as the Counting arrays count them."""
    c1, c2 = 6 * width, 16 * width
    a1, a2, h1, h2, z = c1 * 28 * 28, c2 * 10 * 10, 120, 84, spec.CLASSES
    col2im = batch * c1 * 25 * 10 * 10  # conv2's input gradient: the 25 kernel positions' pieces added up
    per_image_weight_gradients = (batch - 1) * (c1 * 3 * 25 + c2 * c1 * 25)  # a batched matmul, then summed
    relu_backward = batch * (a1 + a2 + h1 + h2)  # a compare, then a multiply: 2 per element, not 1 select
    maxpool_backward = batch * (a1 + a2)  # argmax == k, then a multiply: 2 per input element, not 1 select
    whole_log_softmax = batch * (z - 1)  # log-probabilities of every class, not only the label's
    return col2im + per_image_weight_gradients + relu_backward + maxpool_backward + whole_log_softmax


# numpy's whole count exceeds the ideal one by numpy_beyond_the_ideal(): measured 0.6 to 0.9 % of a step at
# these points, and it shrinks as the width grows (the extras grow with the width, the products with its square).
NUMPY_EXTRA = (0.0, 0.015)
# The element operations, once numpy's extras are added to the ideal ones, agree but for the loss's last
# scalar operations (its mean's divide, its sign), which numpy does on a scalar the Counting arrays cannot
# follow: 2 operations, far below this bound (a thousandth of the element operations).
ELEMENTWISE_TOLERANCE = 1e-3


@pytest.mark.parametrize("batch, width", COST_POINTS)
def test_cnn_flops_are_the_numpy_references_work(batch, width, small_data):
    problem = spec.make_problem(size=N_TRAIN, seed=0, recipe="tutorial", precision="float64", steps=1, lr=None,
                                data_dir=small_data, batch_size=batch, width=width, test_size=1)
    one_reference_step(problem)
    cost = spec.step_cost(N_TRAIN, "tutorial", batch_size=batch, width=width)
    assert not Counting.functions & {"dot", "einsum", "tensordot", "inner", "outer", "vdot", "convolve"}, \
        Counting.functions
    # the matrix products are the ideal ones exactly: im2col turns each convolution (forward, weight gradient,
    # conv2's input gradient; conv1's is skipped) into a matmul of the same multiply-adds
    assert Counting.matmul == cost.dense_flops
    total = Counting.matmul + Counting.elementwise
    extra = total / cost.flops - 1
    assert NUMPY_EXTRA[0] <= extra <= NUMPY_EXTRA[1], f"numpy counted {total:.6g}, step_cost {cost.flops:.6g}"
    # the element operations: the ideal ones (bias adds, ReLU, pooling, softmax, bias gradients, the update)
    # plus numpy's own extras
    ideal = cost.flops - cost.dense_flops
    expected = ideal + numpy_beyond_the_ideal(batch, width)
    assert abs(Counting.elementwise - expected) <= ELEMENTWISE_TOLERANCE * expected, \
        f"numpy counted {Counting.elementwise} element operations; step_cost's {ideal:.0f} and numpy's extras " \
        f"make {expected:.0f}"


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("batch, width", [(4, 1), (8, 2), (3, 3)])
def test_cnn_bytes_are_the_batch_and_the_state_the_reference_step_holds(batch, width, precision, small_data):
    problem = spec.make_problem(size=N_TRAIN, seed=0, recipe="tutorial", precision=precision, steps=1, lr=None,
                                data_dir=small_data, batch_size=batch, width=width, test_size=1)
    step = one_reference_step(problem).gi_frame.f_locals  # the arrays train() worked with
    read_batch = step["x"][step["batch"]].nbytes + step["y"][step["batch"]].nbytes
    state = sum(a.nbytes for a in step["params"].values()) + sum(a.nbytes for a in step["velocity"].values())
    assert set(step["velocity"]) == set(step["params"]) == set(spec.param_shapes(width))
    assert spec.step_cost(N_TRAIN, "tutorial", batch_size=batch, width=width, precision=precision).bytes \
        == read_batch + 2 * state  # the state read once and written once
