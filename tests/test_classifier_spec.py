"""The task spec itself: data, labels, weights, batch order, metrics, and the reference backend's module,
run in-process through the step protocol (tasks/protocol.py)."""

import importlib
import itertools

import numpy as np
import pytest

from conftest import REFERENCE, REGISTRY, train_in_process
from rosetta.errors import UsageError

TASK = REGISTRY.task("classifier")
spec = TASK.module
reference = importlib.import_module(REFERENCE.module_for(TASK)[0])  # backends/<reference>/classifier.py


def train(problem):
    return train_in_process("classifier", problem)


def test_labels_follow_the_three_zones():
    x = np.array([[0.1, 0.2], [0.3, 0.1], [0.9, 0.8], [0.6, 0.7], [0.2, 0.2]])
    # x0 > x1 -> 2; then x0 + x1 > 1 overrides -> 1; else 0 (a tie x0 == x1 below the diagonal stays 0)
    assert spec.labels_of(x).tolist() == [0, 2, 1, 1, 0]


def test_problem_shapes_split_and_dtypes():
    p = spec.make_problem(size=1000, seed=1, recipe="manual-sgd", precision="float64", steps=30)
    assert p.x_train.shape == (950, 2) and p.x_val.shape == (50, 2)
    assert p.x_train.dtype == np.float64 and p.y_train.dtype == np.int64
    assert {k: v.shape for k, v in p.params.items()} == {"W1": (2, 12), "b1": (12,), "W2": (12, 3), "b2": (3,)}
    assert p.batches.shape == (30, 20) and p.batches.max() < 950
    assert np.array_equal(p.y_train, spec.labels_of(p.x_train))
    p32 = spec.make_problem(size=1000, seed=1, precision="float32", steps=30)
    assert p32.x_train.dtype == np.float32 and all(v.dtype == np.float32 for v in p32.params.values())


def test_initial_weights_are_small_gaussians_like_the_course():
    p = spec.make_problem(size=200_000, seed=0)
    weights = np.concatenate([v.ravel() for v in p.params.values()])
    assert 0.006 < weights.std() < 0.014 and abs(weights.mean()) < 0.005


def test_same_seed_same_problem_and_other_seed_another():
    a = spec.make_problem(size=2000, seed=7, recipe="adam", precision="float64")
    b = spec.make_problem(size=2000, seed=7, recipe="adam", precision="float64")
    c = spec.make_problem(size=2000, seed=8, recipe="adam", precision="float64")
    for name in ("x_train", "y_train", "x_val", "batches"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]) and not np.array_equal(a.params[k], c.params[k])


def test_more_steps_never_change_data_or_weights_and_extend_the_batch_order():
    short = spec.make_problem(size=2000, seed=3, steps=10)
    long = spec.make_problem(size=2000, seed=3, steps=500)
    assert np.array_equal(short.x_train, long.x_train)
    assert all(np.array_equal(short.params[k], long.params[k]) for k in short.params)
    assert np.array_equal(short.batches, long.batches[:10])


def test_each_epoch_visits_each_training_point_at_most_once():
    p = spec.make_problem(size=1000, seed=0, recipe="sgd-momentum", steps=4)  # 950 points: 1 batch per epoch
    assert p.steps == 4
    p = spec.make_problem(size=10_000, seed=0, recipe="manual-sgd", steps=475)  # exactly one epoch
    assert len(np.unique(p.batches)) == p.batches.size == 9500


def test_recipes_default_steps_follow_the_course():
    assert spec.make_problem(size=200_000, recipe="manual-sgd").steps == 5000
    assert spec.make_problem(size=200_000, recipe="adam").steps == 190_000 // 500
    assert spec.manual_sgd_learning_rate(0) == 0.5 == spec.manual_sgd_learning_rate(1100 - 1)
    assert spec.manual_sgd_learning_rate(1100) == pytest.approx(0.05)
    assert spec.manual_sgd_learning_rate(4999) == pytest.approx(5e-5)


@pytest.mark.parametrize("size, recipe, steps, options, message", [
    (10, "manual-sgd", None, {}, "too small"),
    (300, "adam", None, {}, "fewer than one batch"),
    (1000, "nope", None, {}, "known recipes: manual-sgd"),
    (1000, "adam", 0, {}, "at least 1"),
    (1000, "manual-sgd", None, {"hidden": 0}, "--hidden must be a whole number of at least 1, got 0"),
    (1000, "manual-sgd", None, {"hidden": 2.5}, "--hidden must be a whole number"),
    (1000, "manual-sgd", None, {"hidden": True}, "--hidden must be a whole number"),
    (1000, "manual-sgd", None, {"batch_size": 0}, "--batch-size must be a whole number of at least 1, got 0"),
    (1000, "manual-sgd", None, {"batch_size": "64"}, "--batch-size must be a whole number"),
    (1000, "manual-sgd", None, {"batch_size": 951}, "950 training points, fewer than one batch of 951 for recipe "
                                                    "manual-sgd; use a larger --size or a smaller --batch-size"),
    (20_000, "adam", None, {"batch_size": 19_001, "hidden": 64}, "fewer than one batch of 19001"),
])
def test_validate_says_what_is_wrong(size, recipe, steps, options, message):
    with pytest.raises(ValueError, match=message):
        spec.validate(size, recipe, steps, **options)
    with pytest.raises(ValueError, match=message):  # make_problem validates before it draws anything
        spec.make_problem(size=size, recipe=recipe, steps=steps, **options)
    with pytest.raises(UsageError, match=message) as error:  # what the engine shows: one line, no traceback
        TASK.validate(size, recipe, steps, **options)
    assert "\n" not in str(error.value)


def test_validate_accepts_a_batch_that_exactly_fits_and_numpy_integers():
    spec.validate(1000, "adam", None, hidden=np.int64(3), batch_size=950)  # 950 training points: one batch
    assert spec.make_problem(size=1000, recipe="adam", batch_size=950, hidden=1).steps == 1


# ------------------------------------------------------------------------------ options: hidden, batch_size

def test_problem_shapes_at_another_hidden_width_and_batch_size():
    p = spec.make_problem(size=1000, seed=1, recipe="manual-sgd", precision="float64", steps=7, hidden=37,
                          batch_size=50)
    assert {k: v.shape for k, v in p.params.items()} == {"W1": (2, 37), "b1": (37,), "W2": (37, 3), "b2": (3,)}
    assert p.hidden == 37 and p.batch_size == p.recipe.batch_size == 50
    assert p.batches.shape == (7, 50) and p.batches.max() < 950
    assert all(v.dtype == np.float64 for v in p.params.values())
    # a one-epoch recipe's steps follow the batch size given
    assert spec.make_problem(size=1000, recipe="adam", batch_size=50).steps == 950 // 50
    # the recipe's other settings stay; RECIPES itself is untouched
    assert p.recipe.hyper == spec.RECIPES["manual-sgd"].hyper and spec.RECIPES["manual-sgd"].batch_size == 20


def test_the_options_change_only_what_they_name():
    base = spec.make_problem(size=2000, seed=4, recipe="sgd-momentum", precision="float64", steps=9)
    wide = spec.make_problem(size=2000, seed=4, recipe="sgd-momentum", precision="float64", steps=9, hidden=40)
    small = spec.make_problem(size=2000, seed=4, recipe="sgd-momentum", precision="float64", steps=9, batch_size=30)
    for other in (wide, small):  # the data never changes
        for name in ("x_train", "y_train", "x_val", "y_val"):
            assert np.array_equal(getattr(base, name), getattr(other, name)), name
    assert np.array_equal(base.batches, wide.batches) and small.batches.shape == (9, 30)
    assert all(np.array_equal(base.params[k], small.params[k]) for k in base.params)
    assert wide.params["b2"].shape == base.params["b2"].shape == (3,)


@pytest.mark.parametrize("recipe", list(spec.RECIPES))
def test_the_default_problem_is_what_it_always_was(recipe):
    """Defaults leave every existing run bit for bit: hidden=None is hidden=12 is the course's width, batch_size=None
    is the recipe's own, and the weights are the draws the spec made before the options existed (written out here:
    three streams spawned from the seed, the weights from the second, randn * 0.01 in the order W1, b1, W2, b2)."""
    default = spec.make_problem(size=2000, seed=5, recipe=recipe, precision="float64", steps=30)
    explicit = spec.make_problem(size=2000, seed=5, recipe=recipe, precision="float64", steps=30, hidden=12,
                                 batch_size=spec.RECIPES[recipe].batch_size)
    for name in ("x_train", "y_train", "x_val", "y_val", "batches"):
        assert np.array_equal(getattr(default, name), getattr(explicit, name)), name
    assert default.params.keys() == explicit.params.keys()
    assert all(np.array_equal(default.params[k], explicit.params[k]) for k in default.params)
    assert default.params["W1"].shape == (2, 12) and default.hidden == 12
    assert default.recipe == spec.RECIPES[recipe]

    _, init_rng, order_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(5).spawn(3))
    before = {"W1": init_rng.standard_normal((2, 12)) * 0.01, "b1": init_rng.standard_normal((12,)) * 0.01,
              "W2": init_rng.standard_normal((12, 3)) * 0.01, "b2": init_rng.standard_normal((3,)) * 0.01}
    assert all(np.array_equal(default.params[k], before[k]) for k in before)
    assert np.array_equal(default.batches, spec.batch_order(order_rng, 1900, spec.RECIPES[recipe].batch_size, 30))


# --------------------------------------------------------------------------------------------------- sweep

def test_the_sweep_starts_at_the_course_s_size_and_grows():
    sweep = spec.SWEEP
    recipe = sweep.recipe or TASK.default_recipe
    size = sweep.size or TASK.quick_size
    assert set(sweep.sizes) <= set(spec.OPTIONS) and recipe in spec.RECIPES
    assert sweep.grid[0] == {"hidden": spec.HIDDEN, "batch_size": spec.RECIPES[recipe].batch_size}
    for point in sweep.grid:  # every point runs at the sweep's data set size
        assert set(point) == set(sweep.sizes)
        spec.validate(size, recipe, sweep.steps, **point, **sweep.options)
    flops = [spec.step_cost(size, recipe, **point).flops for point in sweep.grid]
    assert flops == sorted(flops) and flops[-1] / flops[0] > 1e4


@pytest.mark.slow  # the largest point takes the reference about a second a step
@pytest.mark.parametrize("precision", ["float32"])  # the timed cells' precision: the float64 checks run 5 steps
def test_no_point_of_the_sweep_diverges_in_its_steps(precision):
    sweep = spec.SWEEP
    recipe = sweep.recipe or TASK.default_recipe
    for point in sweep.grid:
        p = spec.make_problem(size=sweep.size or TASK.quick_size, seed=0, recipe=recipe, precision=precision,
                              steps=sweep.steps, **point, **sweep.options)
        losses, result = train(p)
        assert spec.check(p, result, losses)["verdict"] == "ok", point
        assert max(losses) < 1.2 and losses[-1] < losses[0], (point, losses)  # ln 3 = 1.10 at the start


def brute_force_auc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 80).astype(float)  # many ties on purpose
    positive = rng.random(80) < 0.4
    assert spec.roc_auc(scores, positive) == pytest.approx(brute_force_auc(scores, positive))
    assert spec.roc_auc(np.array([0.1, 0.9]), np.array([False, True])) == 1.0


def test_precision_recall_and_accuracy_on_a_hand_example():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    logits = np.eye(3)[predicted] * 5.0
    m = spec.classification_metrics(logits, labels)
    assert m["val_accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert m["recall"] == pytest.approx([1 / 2, 1.0, 1 / 2])


def test_numpy_backward_matches_central_finite_differences():
    p = spec.make_problem(size=500, seed=2, precision="float64", steps=1)
    params = {k: v * 100 for k, v in p.params.items()}  # away from zero so the ReLUs are not all dead
    x, y = p.x_train[:40], p.y_train[:40]
    _, gradients = reference.loss_and_gradients(params, x, y)
    h = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            plus = {**params, name: value.copy()}
            minus = {**params, name: value.copy()}
            plus[name][index] += h
            minus[name][index] -= h
            numeric[index] = (reference.loss_and_gradients(plus, x, y)[0]
                              - reference.loss_and_gradients(minus, x, y)[0]) / (2 * h)
        assert np.allclose(gradients[name], numeric, rtol=1e-6, atol=1e-9), name


def test_adam_first_step_moves_each_weight_by_about_lr():
    # With bias correction, Adam's first update is lr * g / (|g| + eps): about lr in size, against g.
    p = spec.make_problem(size=1000, seed=0, recipe="adam", precision="float64", steps=1)
    _, gradients = reference.loss_and_gradients(p.params, p.x_train[p.batches[0]], p.y_train[p.batches[0]])
    _, result = train(p)
    for k in p.params:
        step = result.params[k] - p.params[k]
        g = gradients[k]
        assert np.allclose(step, -1e-3 * g / (np.abs(g) + 1e-8), rtol=1e-9, atol=1e-15), k


def test_check_reports_divergence_and_wrong_shapes():
    p = spec.make_problem(size=1000, seed=0, steps=3)
    good = spec.Result(params=p.params, val_logits=np.zeros((len(p.y_val), 3)))
    assert spec.check(p, good, [1.0, float("nan"), 1.0])["verdict"] == "diverged at step 1"
    assert spec.check(p, good, [1.0])["verdict"].startswith("wrong: 1 losses")
    bad = spec.Result(params=p.params, val_logits=np.zeros((len(p.y_val), 2)))
    assert "validation logits" in spec.check(p, bad, [1.0] * 3)["verdict"]


def test_the_course_recipe_reaches_its_accuracy_in_numpy():
    # The course reports about 99.5 % for the hand-written loop; the full recipe takes a fraction of a second.
    p = spec.make_problem(seed=0, recipe="manual-sgd", precision="float32")
    losses, result = train(p)
    metrics = spec.check(p, result, losses)
    assert metrics["verdict"] == "ok"
    assert metrics["val_accuracy"] > 0.98
    assert min(metrics["auc"]) > 0.999
