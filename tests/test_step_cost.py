"""Each task's step_cost() (tasks/protocol.py StepCost), the arithmetic `rosetta sweep` divides by, against counts
made another way: the matrix products PyTorch's FlopCounterMode sees in the same model, every operation the numpy
reference actually performs in one training step, and the bytes of the arrays a step reads and writes. Counted from
shapes, never timed: these tests are exact or within a stated tolerance on any machine.

Each task's part is in functions named after it (test_classifier_...)."""

import importlib

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from conftest import REFERENCE, REGISTRY

# ------------------------------------------------------------------------------------------------ classifier

CLASSIFIER = REGISTRY.task("classifier")
classifier = CLASSIFIER.module
classifier_reference = importlib.import_module(REFERENCE.module_for(CLASSIFIER)[0])  # backends/<ref>/classifier.py
# (hidden, batch): the course's, two odd sizes (no factor of the other shapes), and a larger one.
CLASSIFIER_POINTS = [(12, 20), (37, 50), (5, 3), (256, 500)]
# step_cost's flops against the reference's counted operations: the formula leaves out the few operations on
# single numbers (the loss's mean and sign), nothing that grows with the shapes.
CLASSIFIER_FLOPS_TOLERANCE = 1e-3


@pytest.mark.parametrize("hidden, batch", CLASSIFIER_POINTS + [(1024, 2000)])
def test_classifier_dense_flops_are_the_matrix_products_torch_counts(hidden, batch):
    """FlopCounterMode counts 2*M*N*K for every matmul PyTorch runs (addmm's bias add not included) in the forward
    and backward of the same 2-hidden-3 model, with inputs that need no gradient: the five products of
    dense_flops, counted by someone else."""
    net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 3)).double()
    x = torch.rand(batch, 2, dtype=torch.float64)
    y = torch.randint(0, 3, (batch,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    for recipe in classifier.RECIPES:  # the update adds no matrix product
        assert classifier.step_cost(20_000, recipe, hidden=hidden, batch_size=batch).dense_flops \
            == counter.get_total_flops(), recipe


class Counted(np.ndarray):
    """An array that counts the arithmetic done on it, as numpy performs it: every ufunc call counts one operation
    per element it produces (add, multiply, maximum, exp, sqrt, less_equal, ...), a reduction (sum, max) one per
    element it reads, and matmul 2*M*N*K. Every result is Counted again, so the count follows the values through
    the reference's whole step. Array functions that are not ufuncs are recorded by name: an arithmetic one
    (np.dot, np.einsum) would escape the count, so the test checks that none is called."""

    flops = 0
    dense = 0
    functions: set = set()

    @classmethod
    def reset(cls):
        cls.flops, cls.dense, cls.functions = 0, 0, set()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [np.asarray(a) if isinstance(a, Counted) else a for a in inputs]
        if out is not None:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, Counted) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if ufunc is np.matmul:
            a, b = np.shape(plain[0]), np.shape(plain[1])
            assert len(a) == len(b) == 2, "a 2-d matmul is all the classifier does"
            work = 2 * a[0] * a[1] * b[1]
            Counted.dense += work
        elif method == "__call__":
            work = np.size(result[0] if isinstance(result, tuple) else result)
        elif method == "reduce":
            work = np.size(plain[0])
        else:
            raise AssertionError(f"{ufunc.__name__}.{method}: not counted")
        Counted.flops += work
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(Counted) if isinstance(result, np.ndarray) else result

    def __array_function__(self, func, types, args, kwargs):
        Counted.functions.add(func.__name__)
        return super().__array_function__(func, types, args, kwargs)


# Array functions the reference may call that do no arithmetic (allocation, copies).
NO_ARITHMETIC = {"zeros_like", "copyto", "empty_like", "ones_like"}


def counted_step(problem) -> tuple:
    """The flops and the matmul flops of the reference's first training step on `problem`, every array Counted."""
    for name in ("x_train", "y_train", "x_val", "y_val"):
        setattr(problem, name, getattr(problem, name).view(Counted))
    problem.params = {k: v.view(Counted) for k, v in problem.params.items()}
    steps = classifier_reference.train(problem, "cpu", REFERENCE.default_variant)
    Counted.reset()
    loss = next(steps)  # the generator runs up to the first step's yield: setup, forward, backward, update
    steps.close()
    assert np.isfinite(loss)
    return Counted.flops, Counted.dense, Counted.functions


@pytest.mark.parametrize("recipe", list(classifier.RECIPES))
@pytest.mark.parametrize("hidden, batch", CLASSIFIER_POINTS)
def test_classifier_flops_are_what_the_reference_computes(recipe, hidden, batch):
    """step_cost's flops against the operations the numpy reference actually performs in one step (Counted).
    The formula leaves out the few operations on single numbers (the loss's mean and sign; numpy does them on
    scalars, which the counter does not see, so today the two agree exactly), and the two may differ by those
    alone: CLASSIFIER_FLOPS_TOLERANCE, relative, which a forgotten term of B elements at the course's point
    (20 / 7,950 = 2.5e-3) or of one operation per parameter (75 / 7,950) would exceed."""
    problem = classifier.make_problem(size=2000, seed=0, recipe=recipe, precision="float64", steps=1,
                                      hidden=hidden, batch_size=batch)
    flops, dense, functions = counted_step(problem)
    cost = classifier.step_cost(2000, recipe, hidden=hidden, batch_size=batch)
    assert functions <= NO_ARITHMETIC, f"the reference calls {functions - NO_ARITHMETIC}: count them"
    assert dense == cost.dense_flops
    assert flops == pytest.approx(cost.flops, rel=CLASSIFIER_FLOPS_TOLERANCE, abs=0), (flops, cost.flops)
    assert flops >= cost.flops  # the scalar operations are the only thing the formula leaves out


def test_classifier_flops_tolerance_would_see_a_forgotten_term():
    """The tolerance is tight enough to matter: at the course's point, a formula that forgot one operation per
    point of the batch, or one per parameter, would fall outside it."""
    problem = classifier.make_problem(size=2000, seed=0, precision="float64", steps=1)
    flops, _, _ = counted_step(problem)
    cost = classifier.step_cost(2000, "manual-sgd")
    batch, parameters = problem.batch_size, sum(v.size for v in problem.params.values())
    for forgotten in (batch, parameters):
        assert flops != pytest.approx(cost.flops - forgotten, rel=CLASSIFIER_FLOPS_TOLERANCE, abs=0), forgotten


def optimizer_state_bytes(recipe, params) -> int:
    """The bytes of the reference optimizer's state arrays for these parameters (manual-sgd has none)."""
    if recipe == "manual-sgd":
        return 0
    optimizer = classifier_reference.OPTIMIZERS[recipe](params, **classifier.RECIPES[recipe].hyper)
    state = [a for value in vars(optimizer).values() if isinstance(value, dict)
             for a in value.values() if isinstance(a, np.ndarray)]
    assert state, f"{recipe}: no state found"
    return sum(a.nbytes for a in state)


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("recipe", list(classifier.RECIPES))
@pytest.mark.parametrize("hidden, batch", CLASSIFIER_POINTS)
def test_classifier_bytes_are_the_batch_the_parameters_and_the_state(hidden, batch, recipe, precision):
    """The least a step moves: its batch (inputs and labels) read, the parameters and the optimizer's state (the
    reference optimizer's own arrays) each read and written once."""
    problem = classifier.make_problem(size=2000, seed=0, recipe=recipe, precision=precision, steps=1,
                                      hidden=hidden, batch_size=batch)
    rows = problem.batches[0]
    params = {k: v.copy() for k, v in problem.params.items()}
    expected = (problem.x_train[rows].nbytes + problem.y_train[rows].nbytes
                + 2 * sum(v.nbytes for v in params.values()) + 2 * optimizer_state_bytes(recipe, params))
    cost = classifier.step_cost(2000, recipe, hidden=hidden, batch_size=batch, precision=precision)
    assert cost.bytes == expected


@pytest.mark.parametrize("hidden, batch", CLASSIFIER_POINTS)
def test_classifier_activation_bytes_are_every_layer_output_written_and_read_once_forward_and_back(hidden, batch):
    """The unfused traffic from the sizes of the arrays the torch backend's Net really produces (forward hooks):
    each Linear's output, the hidden one's ReLU and the logits' log-softmax (the same sizes); the backward pass
    has one gradient of each; every parameter's gradient too; each written once and read once."""
    net = importlib.import_module("backends.torch.classifier").Net(hidden)
    produced = {}
    for name in ("lin1", "lin2"):
        getattr(net, name).register_forward_hook(
            lambda module, inputs, output, name=name: produced.__setitem__(name, output.numel()))
    net(torch.zeros(batch, 2))
    forward = 2 * produced["lin1"] + 2 * produced["lin2"]  # + the ReLU's output, + the log-softmax's
    parameters = sum(p.numel() for p in net.parameters())
    for recipe in classifier.RECIPES:  # the optimizer's state is in bytes, not here
        for precision, itemsize in (("float32", 4), ("float64", 8)):
            cost = classifier.step_cost(2000, recipe, precision, hidden=hidden, batch_size=batch)
            assert cost.activation_bytes == 2 * (2 * forward + parameters) * itemsize, (recipe, precision)


def test_classifier_step_cost_defaults_are_the_course_s_and_other_options_are_ignored():
    for recipe, chosen in classifier.RECIPES.items():
        assert classifier.step_cost(200_000, recipe) == classifier.step_cost(
            200_000, recipe, hidden=12, batch_size=chosen.batch_size, hyper='{"lr": 0.1}')
    small, large = (classifier.step_cost(20_000, "manual-sgd", **point) for point in
                    (classifier.SWEEP.grid[0], classifier.SWEEP.grid[-1]))
    assert small.dense_flops < small.flops and large.dense_flops < large.flops
    assert large.intensity > small.intensity
