"""The ladder task (Lecture 4's two-layer network at every level of each framework): the spec, every level of
every framework through the real worker at a small size against numpy's by-hand curve in float64 (to 1e-12
over the whole run), each framework's missing levels as skipped rows that say what comes closest, and the
grid of the report.

Cells run at N = 8 for 20 steps (an import, mostly), every variant a backend declares for the task (Keras:
on TensorFlow and on JAX). numpy's and PyTorch's cells are the fast lane; the other
frameworks' are marked slow, as tests/conftest.py's variant_params does. A level a framework does not have
costs a worker (and its framework's import) only for numpy and PyTorch; for the others the module is read
(its CLOSEST entry, without importing the framework).
"""

import ast

import numpy as np
import pytest

from conftest import FAST_LANE, REFERENCE, REGISTRY, RUNNABLE, make_cell, ok, record
from rosetta import envs, judge
from rosetta.report.model import build

TASK = REGISTRY.task("ladder")
spec = TASK.module
report = TASK.report_module()  # tasks/ladder_report.py
SIZE, STEPS = 8, 20
LEVELS = list(spec.RECIPES)


def module_path(backend):
    return backend.module_for(TASK)[1]


def closest(backend) -> dict:
    """The module's CLOSEST dict (level -> what comes closest), read without importing the framework."""
    tree = ast.parse(module_path(backend).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CLOSEST" for t in node.targets):
            return {k.value: True for k in node.value.keys}
    return {}


def cell_of(backend, level, precision="float64", variant=None):
    return make_cell("ladder", backend, variant or backend.variants_for("ladder")[0], level, precision, SIZE, STEPS)


def reference_cell(precision="float64"):
    return cell_of(REFERENCE, "by-hand", precision)


def params(implemented: bool):
    """One param per (backend, variant, level) that the backend's module implements (or, implemented=False,
    lacks): every variant the backend declares for the task (Keras: on TensorFlow and on JAX)."""
    out = []
    for backend in RUNNABLE:
        if not backend.has_module(TASK):
            continue
        marks = [] if backend.name in FAST_LANE else [pytest.mark.slow]
        if not envs.is_installed(backend):
            marks.append(pytest.mark.skip(reason=f"{backend.display_name} is not installed: "
                                                 f"run `rosetta setup {backend.name}`"))
        levels = report.level_sources(module_path(backend))
        for variant in backend.variants_for(TASK.name) if implemented else backend.variants_for(TASK.name)[:1]:
            for level in LEVELS:
                if (level in levels) == implemented:
                    out.append(pytest.param(backend, variant, level, id=f"{variant}-{level}", marks=marks))
    return out


# ------------------------------------------------------------------------------------------- spec

def test_problem_is_the_lecture_network_from_the_seed():
    problem = spec.make_problem(seed=3, precision="float64")
    assert problem.sizes == (64, 1000, 100, 10) and problem.steps == 500
    assert problem.x.shape == (64, 1000) and problem.y.shape == (64, 10)
    assert problem.w1.shape == (1000, 100) and problem.w2.shape == (100, 10)
    assert 0.9 < problem.w1.std() < 1.1  # randn, unscaled, as in the lecture
    again = spec.make_problem(seed=3, recipe="fit", precision="float64")
    for name in ("x", "y", "w1", "w2"):  # every level starts from the same data and weights
        np.testing.assert_array_equal(getattr(problem, name), getattr(again, name))
    smaller = spec.make_problem(size=8, seed=3, precision="float64")
    np.testing.assert_array_equal(smaller.w1, problem.w1)  # N changes the data, never the weights
    assert spec.make_problem(precision="float32").x.dtype == np.float32


def test_learning_rate_is_exact_in_float32_and_a_step_is_26_mflop():
    assert float(np.float32(spec.LEARNING_RATE)) == spec.LEARNING_RATE
    assert float(np.float32(spec.LEARNING_RATE * 64)) == spec.LEARNING_RATE * 64
    assert spec.flops_per_step(64) == pytest.approx(26e6, rel=0.01)


def test_recipes_are_the_levels_and_each_compares_with_one_below():
    assert LEVELS == ["by-hand", "autograd", "custom-function", "layers", "optimizer", "model-class", "fit",
                      "graph"]
    for recipe in spec.RECIPES.values():
        assert recipe.below is None or recipe.below in spec.RECIPES
    assert "recipe" not in TASK.same_problem  # numpy's by-hand run is every level's reference


def test_validate_says_what_to_do():
    with pytest.raises(ValueError, match="levels"):
        spec.validate(8, "keras-magic")
    with pytest.raises(ValueError, match="--size"):
        spec.validate(0, "by-hand")


# ----------------------------------------------------------------------------------- every level

@pytest.mark.parametrize("backend,variant,level", params(implemented=True))
def test_level_matches_numpy_to_1e_12_in_float64(backend, variant, level):
    got = ok(cell_of(backend, level, variant=variant))
    reference = ok(reference_cell())
    assert got["verdict"] == "ok" and len(got["losses"]) == STEPS
    a, b = np.asarray(reference["losses"]), np.asarray(got["losses"])
    deviation = float(np.max(np.abs(a - b) / np.abs(a)))
    assert deviation <= 1e-12, f"{backend.name} {level}: max relative deviation {deviation:.2e} over {STEPS} steps"
    verdict = judge.judge(got, reference, TASK, REFERENCE.name).verdict
    assert verdict in (judge.AGREES, judge.REFERENCE), verdict
    assert got["losses"][-1] < got["losses"][0]


@pytest.mark.parametrize("backend,variant,level", params(implemented=False))
def test_missing_level_says_what_comes_closest(backend, variant, level):
    assert level in closest(backend), f"{module_path(backend)}: no CLOSEST entry for {level}"
    if backend.name in FAST_LANE:  # through the worker: a skipped row whose verdict is the reason
        got = record(cell_of(backend, level, variant=variant))
        assert got["status"] == "skipped", got.get("verdict") or got.get("error")
        assert "closest" in got["verdict"] or "no " in got["verdict"], got["verdict"]


def test_float32_deviation_is_reported():
    torch = REGISTRY.backends["torch"]
    if not envs.is_installed(torch):
        pytest.skip("PyTorch is not installed")
    got, reference = ok(cell_of(torch, "by-hand", "float32")), ok(reference_cell("float32"))
    j = judge.judge(got, reference, TASK, REFERENCE.name)
    assert j.head is not None and 0 <= j.head < 1e-3, j


# ------------------------------------------------------------------------------------------ report

def test_changed_lines_and_lines_of_code():
    below = "def a(p):\n    x = 1\n    # note\n\n    return x\n"
    mine = "def b(p):\n    x = 1\n    y = x + 1\n    return x\n"
    assert report.changed_lines(mine, below) == [3]
    assert report.changed_lines(mine, None) == []
    assert report.lines_of_code(below) == 3
    assert report.below_of("fit", {"by-hand", "model-class", "fit"}) == "by-hand"
    assert report.below_of("graph", {"by-hand", "autograd", "graph"}) == "autograd"


def test_the_report_is_the_grid():
    torch = REGISTRY.backends["torch"]
    if not envs.is_installed(torch):
        pytest.skip("PyTorch is not installed")
    records = [record(cell_of(b, level)) for b in (REFERENCE, torch) for level in LEVELS]
    view = build(records, REGISTRY).task("ladder")
    data = report.grid(view, records)
    assert [name for name, _ in data["columns"]] == [REFERENCE.name, "torch"]
    numpy_by_hand, torch_autograd = data["cells"][("by-hand", REFERENCE.name)], data["cells"][("autograd", "torch")]
    assert numpy_by_hand["verdict"] == judge.REFERENCE and numpy_by_hand["changed"] == []
    assert torch_autograd["below"] == "by-hand" and torch_autograd["changed"]
    assert "loss.backward()" in torch_autograd["source"]
    changed = [torch_autograd["source"].splitlines()[i - 1].strip() for i in torch_autograd["changed"]]
    assert "loss.backward()" in changed and "h = x.mm(w1)" not in changed
    assert torch_autograd["loc"] > 5 and torch_autograd["gflops"] > 0 and torch_autograd["vs_below"] > 0
    assert torch_autograd["verdict"] == judge.AGREES and torch_autograd["deviation"] <= 1e-12
    assert data["cells"][("graph", "torch")]["status"] == "skipped"
    assert "closest" in data["cells"][("graph", "torch")]["why"]
    assert data["cells"][("autograd", REFERENCE.name)]["status"] == "skipped"

    sections = report.sections(view)
    assert len(sections) == 1 and "float64" in sections[0].title
    markdown, page = sections[0].markdown, sections[0].html
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(LEVELS)  # the header and one row per level
    assert "GFLOP/s" in markdown and "MFLOP" in markdown and "skipped: " in markdown
    assert page.count("<tr>") == 1 + len(LEVELS) and "class=\"hll\"" in page
