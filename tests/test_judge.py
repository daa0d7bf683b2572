"""The one judge (rosetta/judge.py), rule by rule, on records built here: what each verdict needs, and that a
declaration excuses only the deviation it was measured to produce."""

import pytest

from conftest import REGISTRY
from rosetta import judge

TASK = REGISTRY.task("classifier")  # float64 tolerance 1e-12 over the first 200 steps
TOLERANCE = TASK.agreement_tolerance["float64"]
STEPS = 300
REFERENCE_LOSSES = [1.0 + 1.0 / (i + 1) for i in range(STEPS)]


def record(losses=None, backend="fw", variant="fw", declared=(), status="ok", recipe="adam", steps=STEPS):
    return {"task": "classifier", "backend": backend, "variant": variant, "recipe": recipe,
            "precision": "float64", "device": "cpu", "size": 1000, "seed": 0, "steps": steps, "lr": None,
            "status": status, "losses": list(REFERENCE_LOSSES if losses is None else losses),
            "declared_differences": list(declared), "reference": backend == "numpy"}


def off_by(relative, from_step=1):
    """The reference's curve, off by `relative` from `from_step` on."""
    return [v * (1 + relative) if i >= from_step else v for i, v in enumerate(REFERENCE_LOSSES)]


def declaration(low, high, **extra):
    return {"task": "classifier", "recipes": ("adam",), "precisions": ("float64",), "variants": "*",
            "why": "a measured difference of the framework's own rule", "band": (low, high), **extra}


def verdict_of(r):
    return judge.judge(r, record(backend="numpy", variant="numpy"), TASK, "numpy")


def test_the_reference_is_the_reference_and_an_unfinished_cell_has_no_verdict():
    assert verdict_of(record(backend="numpy", variant="numpy")).verdict == judge.REFERENCE
    assert verdict_of(record(status="failed")) is None
    assert verdict_of(record(losses=REFERENCE_LOSSES[:150])).verdict == judge.NO_VERDICT  # short of 200 steps


def test_within_the_tolerance_agrees_and_beyond_it_differs_with_the_first_step_named():
    assert verdict_of(record(losses=off_by(TOLERANCE / 10))).verdict == judge.AGREES
    j = verdict_of(record(losses=off_by(1e-9, from_step=7)))
    assert j.verdict == judge.DIFFERS and j.first_step == 7 and j.head == pytest.approx(1e-9)


def test_only_the_judged_steps_decide_but_the_whole_run_is_reported():
    late = [v * (1 + 1e-3) if i >= 250 else v for i, v in enumerate(REFERENCE_LOSSES)]
    j = verdict_of(record(losses=late))
    assert j.verdict == judge.AGREES and j.steps == 200 and j.whole == pytest.approx(1e-3)


def test_a_declared_band_decides_inside_below_and_above():
    declared = [declaration(1e-8, 1e-6)]
    assert verdict_of(record(off_by(1e-7), declared=declared)).verdict == judge.DECLARED
    above = verdict_of(record(off_by(1e-5), declared=declared))
    assert above.verdict == judge.DIFFERS and "above the declared band" in above.why
    assert verdict_of(record(off_by(1e-10), declared=declared)).verdict == judge.CLOSER
    assert verdict_of(record(declared=declared)).verdict == judge.CLOSER  # the framework fixed it: say so


def test_a_band_below_the_tolerance_holds_where_the_difference_depends_on_the_data():
    declared = [declaration(1e-14, 1e-9)]
    assert verdict_of(record(off_by(1e-13), declared=declared)).verdict == judge.DECLARED


def test_a_declaration_covers_only_its_recipe_precision_and_variants():
    declared = [declaration(1e-8, 1e-6, variants=("fw-other",))]
    assert verdict_of(record(off_by(1e-7), declared=declared)).verdict == judge.DIFFERS
    declared = [declaration(1e-8, 1e-6)]
    assert verdict_of(record(off_by(1e-7), declared=declared, recipe="adadelta")).verdict == judge.DIFFERS


def test_a_deviation_at_the_first_step_is_never_excused_by_an_update_rule():
    declared = [declaration(1e-8, 1e-3)]
    j = verdict_of(record(off_by(1e-4, from_step=0), declared=declared))
    assert j.verdict == judge.DIFFERS_AT_START and "before any update" in j.why
    forward = [declaration(1e-8, 1e-3, from_first_step=True)]
    assert verdict_of(record(off_by(1e-4, from_step=0), declared=forward)).verdict == judge.DECLARED


def test_the_identity_of_a_timing_includes_the_threads_and_the_seed():
    a = record()
    assert judge.cell_key(a) == judge.cell_key(dict(a))
    assert judge.cell_key(a) != judge.cell_key({**a, "seed": 1})
    assert judge.timing_key({**a, "threads": 1}) != judge.timing_key({**a, "threads": 2})
