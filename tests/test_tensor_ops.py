"""tensor-ops: every backend's ops against numpy through the real worker, the measured numpy bridge and
in-place addition, the skipped GPU row, the benchmark figures, the report's tables; and the spec's own
machinery (expression extraction, failure reporting, the random checks) in-process."""

import math
import types

import numpy as np
import pytest

import backends.numpy as numpy_adapter
import backends.numpy.tensor_ops as numpy_ops
from conftest import BACKENDS, FAST_LANE, REGISTRY, RUNNABLE, backend_params, make_cell, ok
from rosetta import envs
from rosetta.report.model import build

TASK = REGISTRY.task("tensor-ops")
spec = TASK.module
section = TASK.report_module()  # tasks/tensor_ops_report.py
SIZE = 128

# Measured on this project's frameworks (see the final report of issue 4): which arrays change in place,
# and which conversions share memory with numpy. A framework release that changes one fails here.
IN_PLACE = {"numpy": True, "torch": True, "mxnet": True, "paddle": True,
            "tensorflow": False, "jax": False, "keras": False}
SHARES = {"numpy": (True, True), "torch": (True, True)}  # (numpy -> framework, framework -> numpy)


def record_of(backend):
    """The backend's run of the task (its default variant for it, float32, the CPU), once per session."""
    cell = make_cell("tensor-ops", backend, backend.variants_for(TASK.name)[0], "table", "float32", SIZE)
    return ok(cell)


TENSOR_OPS = backend_params(task="tensor-ops")


@pytest.mark.parametrize("backend", TENSOR_OPS)
def test_every_op_matches_numpy(backend):
    record = record_of(backend)
    ops = record["report_data"]["ops"]
    assert [row["op"] for row in ops] == list(spec.OP_NAMES)
    wrong = {row["op"]: row.get("detail") for row in ops if row["status"] != "ok"}
    assert not wrong, wrong
    assert all(row["expression"] for row in ops), "every op shows its code"
    assert record["verdict"] == "ok"
    assert record["metrics"]["ops_passed"] == len(spec.OPS) and record["metrics"]["ops_failed"] == 0


@pytest.mark.parametrize("backend", TENSOR_OPS)
def test_bridge_and_in_place_are_measured(backend):
    record = record_of(backend)
    bridge = {row["op"]: row for row in record["report_data"]["bridge"]}
    assert set(bridge) == {"from_numpy", "to_numpy"}
    for row in bridge.values():
        assert row["status"] == "ok", row
        assert row["shares"] in (True, False), row["finding"]
        assert row["finding"].startswith("shares memory" if row["shares"] else "copies")
    if backend.name in SHARES:
        assert (bridge["from_numpy"]["shares"], bridge["to_numpy"]["shares"]) == SHARES[backend.name]
    in_place = next(row for row in record["report_data"]["ops"] if row["op"] == "add_inplace")
    if backend.name in IN_PLACE:
        assert in_place["in_place"] is IN_PLACE[backend.name], in_place["finding"]


@pytest.mark.parametrize("backend", TENSOR_OPS)
def test_gpu_transfer_runs_only_where_a_gpu_is_visible(backend):
    transfer = record_of(backend)["report_data"]["transfer"]
    if backend.name in ("numpy", "keras"):  # numpy has no GPU arrays; keras.ops no transfer op
        assert transfer["status"] == "not available" and transfer["detail"]
    elif transfer["status"] == "ok":
        assert transfer["gpu"]
    else:
        assert transfer["status"] == "skipped"
        assert transfer["detail"] == f"skipped: no GPU visible to {backend.display_name}"
        assert "⇄" in transfer["expression"], "the skipped row still shows the code"


@pytest.mark.parametrize("backend", TENSOR_OPS)
def test_benchmarks_report_positive_finite_throughput(backend):
    rows = record_of(backend)["report_data"]["benchmarks"]
    assert {(row["benchmark"], row["n"]) for row in rows} >= {(b, SIZE) for b in ("matmul", "add", "max_axis", "copy_in")}
    for row in rows:
        assert math.isfinite(row["throughput"]) and row["throughput"] > 0, row
        assert row["repeats"] >= spec.MIN_REPEATS and row["iqr_s"] >= 0


@pytest.mark.parametrize("lane", [pytest.param(FAST_LANE, id="fast-lane"),
                                  pytest.param(None, id="every-backend", marks=pytest.mark.slow)])
def test_report_sections_show_every_backend(lane):
    installed = [b for b in RUNNABLE if envs.is_installed(b) and b.implements(TASK)
                 and TASK.name not in b.does_not_implement and (lane is None or b.name in lane)]
    records = [record_of(b) for b in reversed(installed)]  # in any order: the view orders them
    view = build(records, REGISTRY).task(TASK.name)
    assert [r["backend"] for r in view.records] == [b.name for b in installed]
    records = view.records
    sections = section.sections(view)
    titles = [s.title for s in sections]
    assert titles[:3] == ["The seed's table in every framework", "The numpy bridge and in-place addition",
                          "Device transfer"]
    assert "Throughput, float32 on the CPU" in titles
    table = sections[0].markdown
    header = next(line for line in table.splitlines() if line.startswith("| command"))
    for record in records:
        assert section._column(record) in header
    for op in spec.OPS:
        assert f"| {op.label} |" in table
    if BACKENDS["torch"] in installed:
        assert "`torch.from_numpy(a)`" in table and "`x.add_(y)`" in table
    throughput = sections[titles.index("Throughput, float32 on the CPU")]
    assert "<img" in throughput.html and "matmul" in throughput.markdown
    failed = dict(records[0], report_data=dict(records[0]["report_data"], ops=[
        dict(row, status="mismatch", detail="differs from numpy by up to 1") if row["op"] == "add" else row
        for row in records[0]["report_data"]["ops"]]))
    # ✗ marks the op that differed, and only it (the table's intro explains the mark, so look at the rows)
    assert not [line for line in table_rows(table) if "✗" in line]
    marked = section.sections(build([failed], REGISTRY).task(TASK.name))[0].markdown
    add_label = next(op.label for op in spec.OPS if op.name == "add")
    marked_rows = [line for line in table_rows(marked) if "✗" in line]
    assert len(marked_rows) == 1 and marked_rows[0].startswith(f"| {add_label} |"), marked_rows
    assert "✗" in marked_rows[0].split(" | ")[-1]  # in the failed framework's column, not the seed's
    assert "differs from numpy by up to 1" in marked


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


# ----------------------------------------------------------------------------------- the spec alone

def single(x, y):
    return x + y


def several(x, y):
    """A note for the table."""
    v = make(x)
    v.assign_add(
        y)
    return v


def scoped(x):
    with place("/GPU:0"):
        return copy(x)


def test_expression_is_the_function_body():
    assert spec.expression(single) == "x + y"
    assert spec.expression(several) == "v = make(x); v.assign_add( y)"
    assert spec.note(several) == "A note for the table."
    assert spec.note(single) == ""
    assert spec.expression(scoped) == 'with place("/GPU:0"): return copy(x)'
    assert spec.expression(numpy_ops.add_inplace) == "x += y"


def run_numpy_module(module, size=spec.MIN_SIZE):
    problem = spec.make_problem(size=size)
    return spec.run_backend(problem, module, numpy_adapter, "cpu", "numpy")


def altered(**replacements):
    module = types.ModuleType("altered_tensor_ops")
    module.__dict__.update({k: v for k, v in vars(numpy_ops).items() if not k.startswith("__")})
    for name, function in replacements.items():
        if function is None:
            delattr(module, name)
        else:
            setattr(module, name, function)
    return module


def subtracts(x, y):
    return x - y


def raises(a, b):
    raise ValueError("no such kernel")


def test_the_numpy_module_passes_in_process():
    result = run_numpy_module(numpy_ops)
    assert result["verdict"] == "ok"
    assert result["metrics"]["numpy_to_framework_shares"] is True


@pytest.mark.parametrize("replacement, status, words", [
    ({"add": subtracts}, "mismatch", "differs from numpy"),
    ({"matmul": raises}, "error", "ValueError: no such kernel"),
    ({"maximum": None}, "missing", "not defined"),
], ids=["wrong value", "raises", "missing"])
def test_a_wrong_op_fails_the_verdict(replacement, status, words):
    name = next(iter(replacement))
    result = run_numpy_module(altered(**replacement))
    row = next(r for r in result["report_data"]["ops"] if r["op"] == name)
    assert row["status"] == status and words in row["detail"]
    assert result["verdict"] != "ok" and result["verdict"].startswith(f"{name}: {status}")
    assert result["metrics"]["ops_failed"] == 1


def test_random_checks_tell_the_distributions_apart():
    rng = np.random.default_rng(1)
    uniform = rng.random(spec.RANDOM_SHAPE).astype("float32")
    normal = rng.standard_normal(spec.RANDOM_SHAPE).astype("float32")
    assert spec.random_problem("uniform", uniform) == "" and spec.random_problem("normal", normal) == ""
    assert spec.random_problem("uniform", normal) and spec.random_problem("normal", uniform)
    assert spec.random_problem("normal", normal * 1.1)  # variance 1.21
    assert spec.random_problem("uniform", uniform * 0.98)  # mean 0.49


def test_sizes_and_errors():
    assert spec.benchmark_sizes(4096) == [256, 1024, 4096]
    assert spec.benchmark_sizes(300) == [256, 300]
    assert spec.benchmark_sizes(spec.MIN_SIZE) == [spec.MIN_SIZE]
    with pytest.raises(ValueError, match="too small"):
        spec.validate(spec.MIN_SIZE - 1, "table")
    with pytest.raises(ValueError, match="unknown recipe"):
        spec.validate(256, "nope")
    with pytest.raises(ValueError, match="unknown precision"):
        spec.make_problem(size=256, precision="float16")
