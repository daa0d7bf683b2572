"""Course 1's "numpy compatibility" table, as a framework-free spec: every row of the seed's numpy-vs-PyTorch
table (and the few rows its later code uses), written once per framework and checked against numpy.

The course shows a table of twin commands (np.ones((5,3)) / torch.ones(5,3), x += / x.add_(), ...), then
that torch.from_numpy and .numpy() share memory with the numpy array, then the transfer of a tensor to a
GPU and back; its exercise asks for "the equivalent operations under TensorFlow, Keras, CNTK, MXNet".
This task answers it by running them:

- Each backend's tensor_ops.py defines one small function per op (OPS below: its name, its arguments),
  written the framework's own way. The table the report prints is the source of those functions
  (`expression()`: the body of the function, its `return` dropped), so the text cannot drift from the code
  that ran. A function's docstring is the note printed under the table (what the framework does instead,
  when it lacks the op). A module declares an op it cannot do in NOT_AVAILABLE = {op: why}.
- Every result goes back to numpy (adapter.to_numpy) and is compared with numpy's answer: exactly, or to
  the precision's rounding for the products; by shape and dtype only for an uninitialized array; by range
  and moments over 100,000 draws for the random ones (bounds 6 standard errors or more away, so a false
  failure is practically impossible).
- The numpy bridge is measured both ways, never taken from documentation: convert, then write to one side
  and read the other back through the framework (`add(x, 0)`); where the numpy side is read-only and the
  framework's array immutable, the addresses are compared through DLPack. In-place addition likewise: did
  the input array change, or did the framework make a new one?
- Device transfer (`to_gpu`, `to_cpu`) runs where the framework sees a GPU, and is a skipped row otherwise.
- matmul (GFLOP/s), elementwise addition, max along an axis (GB/s) and the copy of a numpy array into the
  framework (GB/s; the GPU transfers too, where one is visible) are timed on n x n matrices, n in
  BENCHMARK_SIZES up to the run's size: one warm-up call, then single calls until a time budget is spent,
  each waited for (module.ready(x), else adapter.synchronize) before the clock is read; median and IQR.
- The recipe "ceiling" (CEILING: what `rosetta sweep` runs beside its grid, docs/sweeps.md) skips the table and
  measures only the machine's ceiling as this framework reaches it: matmul at n x n (n = the size) and the
  memory bandwidth of a copy of CEILING_COPY_BYTES, well past the last-level cache, counted as the bytes read
  plus the bytes written: on the CPU numpy.copyto into a buffer already touched (the memory is the same whatever
  the framework; a fresh destination would time the page faults of its allocation, about a third of the rate
  here), on a GPU an addition of two such arrays by the framework on the device (read two, write one).

Optional hooks in a backend module: framework_dtype(name) -> the dtype object its functions take (default:
the name, e.g. "float32"); device_scope(device) -> a context manager in which arrays are created on that
device; ready(x) -> blocks until x is computed; about() -> facts for the report (e.g. Keras' backend).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import statistics
import textwrap
import time
from dataclasses import dataclass, field

import numpy as np

from tasks.protocol import Checks

NAME = "tensor-ops"
SUMMARY = ("the seed's numpy-vs-PyTorch table in every framework, checked against numpy; the numpy bridge "
           "and device transfer measured; matmul, elementwise, reduction and copy throughput up to n x n")
KIND = "checks"
RANK = 10
TIMEOUT_S = 900

DEFAULT_SIZE = 4096  # the largest benchmark matrix is size x size
QUICK_SIZE = 1024
CHECK_SIZE = 256  # `rosetta check`: the checks are the point, not the timings
MIN_SIZE = 16
BENCHMARK_SIZES = (256, 1024, 4096)
# Benchmark outputs are also checked against numpy up to this size (numpy's own 4096 matmul costs seconds).
CHECKED_BENCHMARK_SIZE = 1024
# Timing: one warm-up call, then calls until this budget is spent, at least MIN_REPEATS, at most MAX_REPEATS.
BUDGET_S = 1.0
MIN_REPEATS, MAX_REPEATS = 3, 50
LONG_CALL_S = 10.0

# No training and no loss curve: the tolerance is that of the op checks (relative, against numpy).
AGREEMENT_STEPS = 0
AGREEMENT_TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


Recipe = Checks  # a task of checks has nothing to tune


RECIPES = {
    "table": Recipe("table", summary="every op of the seed's table checked against numpy, the numpy bridge and "
                                     "device transfer measured, then matmul, add, max and host copy timed "
                                     "at n x n up to the size"),
}
DEFAULT_RECIPE = "table"
CEILING = "ceiling"
RECIPES[CEILING] = Recipe(CEILING, summary="the machine's ceiling for a sweep: the matmul rate at n x n (n = the "
                                           "size) and the bandwidth of a 1 GiB copy; no table")
# Larger than any last-level cache we know of (this machine reports 480 MiB), so the copy streams from memory.
CEILING_COPY_BYTES = 1 << 30


class _Dtype:
    """Stands for the run's dtype among an op's arguments (each framework takes its own dtype object)."""

    def __repr__(self):
        return "dtype"


DTYPE = _Dtype()
SHAPE = (5, 3)  # the seed's 5x3 matrix
RANDOM_SHAPE = (500, 200)  # 100,000 draws for the moment checks
RANDOM_SEED = 7
ARANGE_N = 10


@dataclass(frozen=True)
class Op:
    """One row of the table: the backend function `name(*args)`, what its result must be, how to compare."""

    name: str
    label: str  # the seed's row label where it has the row
    args: object  # problem -> tuple of arguments: numpy arrays (converted to the framework's), DTYPE, plain values
    expected: object  # problem -> numpy's answer (a tuple for "shape")
    check: str = "exact"  # exact | close | empty | uniform | normal | shape | inplace
    seed_numpy: str = ""  # the seed's numpy and PyTorch 0.4 commands, as the course prints them
    seed_torch: str = ""


OPS = (
    Op("array", "Array conversion", lambda p: (p.data, DTYPE), lambda p: np.array(p.data, dtype=p.precision),
       seed_numpy="np.array([[1,2]])", seed_torch="torch.Tensor([[1,2]])"),
    Op("empty", "5x3 matrix, uninitialized", lambda p: (SHAPE, DTYPE), lambda p: np.empty(SHAPE, p.precision),
       check="empty", seed_numpy="x = np.empty((5,3))", seed_torch="x = torch.Tensor(5,3)"),
    Op("ones", "initialized with ones", lambda p: (SHAPE, DTYPE), lambda p: np.ones(SHAPE, p.precision),
       seed_numpy="x = np.ones((5,3))", seed_torch="x = torch.ones(5,3)"),
    Op("zeros", "initialized with zeros", lambda p: (SHAPE, DTYPE), lambda p: np.zeros(SHAPE, p.precision),
       seed_numpy="x = np.zeros((5,3))", seed_torch="x = torch.zeros(5,3)"),
    Op("uniform", "uniformly randomly initialized matrix", lambda p: (RANDOM_SHAPE, DTYPE, RANDOM_SEED),
       lambda p: np.empty(RANDOM_SHAPE, p.precision), check="uniform",
       seed_numpy="x = np.random.rand(5,3)", seed_torch="x = torch.rand(5, 3)"),
    Op("normal", "normal randomly initialized matrix", lambda p: (RANDOM_SHAPE, DTYPE, RANDOM_SEED),
       lambda p: np.empty(RANDOM_SHAPE, p.precision), check="normal",
       seed_numpy="x = np.random.randn(5,3)", seed_torch="x = torch.randn(5, 3)"),
    Op("shape", "Shape/size", lambda p: (p.inputs["x"],), lambda p: SHAPE, check="shape",
       seed_numpy="x.shape", seed_torch="x.size"),
    Op("add", "Addition", lambda p: (p.inputs["x"], p.inputs["y"]), lambda p: p.inputs["x"] + p.inputs["y"],
       seed_numpy="+/np.add", seed_torch="+/torch.add"),
    Op("add_inplace", "In-place addition", lambda p: (p.inputs["x"], p.inputs["y"]),
       lambda p: p.inputs["x"] + p.inputs["y"], check="inplace", seed_numpy="x+=", seed_torch="x.add_()"),
    Op("column", 'A column (the seed\'s "First column"; x[:, 1] is the second)', lambda p: (p.inputs["x"],),
       lambda p: p.inputs["x"][:, 1], seed_numpy="x[:, 1]", seed_torch="x[:, 1]"),
    Op("matmul", "Matrix multiplication", lambda p: (p.inputs["x"], p.inputs["b"]),
       lambda p: p.inputs["x"] @ p.inputs["b"], check="close", seed_numpy=".matmul()", seed_torch=".mm()"),
    Op("matvec", "Matrix-Vector multiplication", lambda p: (p.inputs["x"], p.inputs["v"]),
       lambda p: p.inputs["x"] @ p.inputs["v"], check="close", seed_numpy="-", seed_torch=".mv()"),
    Op("reshape", "Reshape", lambda p: (p.inputs["x"], (3, 5)), lambda p: p.inputs["x"].reshape(3, 5),
       seed_numpy=".reshape(shape)", seed_torch=".view(size)"),
    Op("transpose", "Transpose", lambda p: (p.inputs["x"],), lambda p: p.inputs["x"].T),
    Op("concatenate", "Concatenate", lambda p: (p.inputs["x"], p.inputs["y"]),
       lambda p: np.concatenate([p.inputs["x"], p.inputs["y"]]),
       seed_numpy="np.concatenate([])", seed_torch="torch.cat([])"),
    Op("stack", "Stack", lambda p: (p.inputs["x"], p.inputs["y"]), lambda p: np.stack([p.inputs["x"], p.inputs["y"]])),
    Op("expand_dims", "Add a dimension", lambda p: (p.inputs["x"], 1), lambda p: p.inputs["x"][:, None, :],
       seed_numpy="np.expand_dims(, axis)", seed_torch=".unsqueeze(axis)"),
    Op("squeeze", "Remove a dimension", lambda p: (p.inputs["x1"], 1), lambda p: p.inputs["x1"][:, 0, :]),
    Op("arange", "Range of values", lambda p: (ARANGE_N, DTYPE), lambda p: np.arange(ARANGE_N, dtype=p.precision),
       seed_numpy="np.arange()", seed_torch="torch.arange()"),
    Op("max_axis", "Max along an axis", lambda p: (p.inputs["x"], 1), lambda p: p.inputs["x"].max(axis=1)),
    Op("maximum", "Elementwise maximum", lambda p: (p.inputs["x"], p.inputs["z"]),
       lambda p: np.maximum(p.inputs["x"], p.inputs["z"])),
)
OP_NAMES = tuple(op.name for op in OPS)
# Rows that are pairs of functions: the numpy bridge (each direction measured) and device transfer.
BRIDGE = (("from_numpy", "numpy → framework"), ("to_numpy", "framework → numpy"))
TRANSFER = ("to_gpu", "to_cpu")
BACKEND_FUNCTIONS = OP_NAMES + ("from_numpy", "to_numpy")

# Benchmarks: op -> (backend function, unit, work per call as a function of n and the itemsize).
BENCHMARKS = {
    "matmul": ("matmul", "GFLOP/s", lambda n, item: 2.0 * n ** 3 / 1e9),
    "add": ("add", "GB/s", lambda n, item: 3.0 * n * n * item / 1e9),  # read x and y, write x + y
    "max_axis": ("max_axis", "GB/s", lambda n, item: 1.0 * n * n * item / 1e9),  # read x
    "copy_in": ("array", "GB/s", lambda n, item: 1.0 * n * n * item / 1e9),  # the array's bytes, once
    "to_gpu": ("to_gpu", "GB/s", lambda n, item: 1.0 * n * n * item / 1e9),
    "to_cpu": ("to_cpu", "GB/s", lambda n, item: 1.0 * n * n * item / 1e9),
}


@dataclass
class Problem:
    inputs: dict  # name -> small numpy array: x, y, z (5, 3), b (3, 4), v (3,), x1 (5, 1, 3)
    data: list  # nested Python list for the array conversion
    benchmark_sizes: list
    precision: str
    seed: int
    recipe: Recipe = field(default_factory=lambda: RECIPES[DEFAULT_RECIPE])

    @property
    def steps(self):
        return None

    @property
    def batch_size(self):
        return None


def validate(size: int, recipe: str, steps: int | None = None) -> None:
    """Raise ValueError, with a message that says what to do, for a size or recipe that cannot run.
    steps (a training option) means nothing here and is ignored, so that `--task all --steps N` runs."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
    if size < MIN_SIZE:
        raise ValueError(f"size {size} is too small; tensor-ops times n x n matrices up to n = size, "
                         f"at least {MIN_SIZE} (default {DEFAULT_SIZE})")


def benchmark_sizes(size: int) -> list:
    return sorted({n for n in BENCHMARK_SIZES if n < size} | {size})


def make_problem(size: int = DEFAULT_SIZE, seed: int = 0, recipe: str = DEFAULT_RECIPE,
                 precision: str = "float32", steps: int | None = None, lr: float | None = None) -> Problem:
    """steps and lr (training options) are ignored."""
    validate(size, recipe, steps)
    if precision not in AGREEMENT_TOLERANCE:
        raise ValueError(f"unknown precision {precision!r}; choose float32 or float64")
    rng = np.random.default_rng(seed)
    x, y, z = (rng.standard_normal(SHAPE).astype(precision) for _ in range(3))
    inputs = {"x": x, "y": y, "z": z, "b": rng.standard_normal((3, 4)).astype(precision),
              "v": rng.standard_normal(3).astype(precision), "x1": x[:, None, :].copy()}
    return Problem(inputs=inputs, data=[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                   benchmark_sizes=[size] if recipe == CEILING else benchmark_sizes(size), precision=precision, seed=seed, recipe=RECIPES[recipe])


# ------------------------------------------------------------------------------- the code as text

def expression(function) -> str:
    """The body of a backend function as the table prints it: a lone `return EXPR` is EXPR; several
    statements are joined with "; ", a final `return NAME` dropped (the statements say what it holds).
    The docstring is left out (it is the row's note)."""
    source = textwrap.dedent(inspect.getsource(function))
    tree = ast.parse(source)
    definition = next(node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
    body = list(definition.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) > 1 and isinstance(body[-1], ast.Return) and isinstance(body[-1].value, ast.Name):
        body = body[:-1]
    parts = []
    for statement in body:
        node = statement.value if isinstance(statement, ast.Return) and statement.value is not None else statement
        text = ast.get_source_segment(source, node) or ast.unparse(node)
        parts.append(" ".join(line.strip() for line in text.splitlines()))
    return "; ".join(parts)


def note(function) -> str:
    doc = inspect.getdoc(function)
    return " ".join(doc.split()) if doc else ""


# ----------------------------------------------------------------------------------------- checks

def compare(check: str, got, expected, precision: str) -> str:
    """'' when `got` (numpy, or a shape tuple) is what the check wants, else what is wrong."""
    if check == "shape":
        try:
            got = tuple(int(d) for d in got)
        except TypeError:
            return f"shape {got!r} is not a sequence of ints"
        return "" if got == tuple(expected) else f"shape {got}, numpy {tuple(expected)}"
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"shape {got.shape}, numpy {expected.shape}"
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, numpy {expected.dtype}"
    if check == "empty":
        return ""
    if check in ("uniform", "normal"):
        return random_problem(check, got)
    if check == "close":
        tolerance = AGREEMENT_TOLERANCE[precision]
        scale = float(np.max(np.abs(expected))) or 1.0
        worst = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) / scale
        return "" if worst <= tolerance else f"max deviation {worst:.2e} of the largest |value|, above {tolerance:g}"
    if not np.array_equal(got, expected):
        worst = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
        return f"differs from numpy by up to {worst:.3g}"
    return ""


def random_problem(kind: str, values: np.ndarray) -> str:
    """Range and moments of 100,000 draws. Standard errors: uniform mean 0.0009, variance 0.00024;
    normal mean 0.0032, variance 0.0045. The bounds below are 6 or more of them."""
    v = values.astype(np.float64).ravel()
    if not np.isfinite(v).all():
        return "non-finite values"
    mean, var = float(v.mean()), float(v.var())
    if kind == "uniform":
        if v.min() < 0 or v.max() >= 1:
            return f"values outside [0, 1): min {v.min():.4g}, max {v.max():.4g}"
        if abs(mean - 0.5) > 0.01 or abs(var - 1 / 12) > 0.005:
            return f"mean {mean:.4f} (expected 0.5), variance {var:.4f} (expected 0.0833)"
    else:
        if abs(mean) > 0.02 or abs(var - 1) > 0.03:
            return f"mean {mean:.4f} (expected 0), variance {var:.4f} (expected 1)"
    return ""


# ---------------------------------------------------------------------------------------- running

class _Runner:
    """One backend module under test: converts arguments, calls, waits, reads back."""

    def __init__(self, problem, module, adapter, device):
        self.problem, self.module, self.adapter, self.device = problem, module, adapter, device
        hook = getattr(module, "framework_dtype", None)
        self.dtype = hook(problem.precision) if hook else problem.precision
        self.ready_hook = getattr(module, "ready", None)
        scope = getattr(module, "device_scope", None)
        self.scope = (lambda: scope(device)) if scope else contextlib.nullcontext

    def ready(self, x, device=None):
        """Wait until x is computed: the module's ready(x), and on a GPU the adapter's device barrier too
        (CUDA kernels run after the call returns, whatever the framework)."""
        device = device or self.device
        if self.ready_hook is not None:
            self.ready_hook(x)
        if self.ready_hook is None or device == "gpu":
            self.adapter.synchronize(device)

    def to_framework(self, array, device=None):
        # a copy: torch.from_numpy (the adapter's) shares memory, and some ops write to their input
        return self.adapter.from_numpy(np.array(array, copy=True), device or self.device)

    def arguments(self, args):
        return [self.dtype if a is DTYPE else self.to_framework(a) if isinstance(a, np.ndarray) else a
                for a in args]

    def call(self, name, *args, device=None):
        with self.scope():
            out = getattr(self.module, name)(*args)
        if not isinstance(out, (tuple, list, np.ndarray)) and type(out).__name__ != "TensorShape":
            self.ready(out, device)
        return out

    def read(self, x, shape):
        """x's values as the framework computes with them (x + 0, read back), never a numpy copy of x
        cached by an earlier conversion (JAX keeps one)."""
        zero = self.to_framework(np.zeros(shape, self.problem.precision))
        return np.array(self.adapter.to_numpy(self.call("add", x, zero)), copy=True)


def _unavailable(module, name):
    """Why the module does not do `name` (its NOT_AVAILABLE entry), '' if it should."""
    return getattr(module, "NOT_AVAILABLE", {}).get(name, "")


def _row(module, op_name, label, names):
    functions = [getattr(module, n, None) for n in names]
    return {"op": op_name, "label": label,
            "expression": " ⇄ ".join(expression(f) for f in functions if f is not None) if all(functions) else "",
            "note": " ".join(note(f) for f in functions if f is not None and note(f))}


def check_op(runner: _Runner, op: Op) -> dict:
    module, problem = runner.module, runner.problem
    row = {**_row(module, op.name, op.label, [op.name]), "seed_numpy": op.seed_numpy, "seed_torch": op.seed_torch}
    why = _unavailable(module, op.name)
    if why or not hasattr(module, op.name):
        return {**row, "status": "not available" if why else "missing",
                "detail": why or f"{op.name}() is not defined in the backend's tensor_ops.py"}
    expected = op.expected(problem)
    try:
        args = runner.arguments(op.args(problem))
        out = runner.call(op.name, *args)
        if op.check == "inplace":
            return {**row, **in_place(runner, args, out, expected)}
        got = out if op.check == "shape" else runner.adapter.to_numpy(out)
        problem_text = compare(op.check, got, expected, problem.precision)
    except Exception as error:  # a framework that rejects the call is a failed row, not a failed run
        return {**row, "status": "error", "detail": f"{type(error).__name__}: {error}".splitlines()[0]}
    return {**row, "status": "mismatch" if problem_text else "ok", "detail": problem_text}


def in_place(runner: _Runner, args, out, expected) -> dict:
    """In-place addition: the sum must be right; then, measured: did the input array itself change?"""
    x, original = args[0], runner.problem.inputs["x"]
    problem_text = compare("close", runner.adapter.to_numpy(out), expected, runner.problem.precision)
    if problem_text:
        return {"status": "mismatch", "detail": problem_text}
    changed = not np.array_equal(runner.read(x, original.shape), original)
    if changed:
        finding = "in place: the input array now holds the sum"
    else:
        finding = f"not in place: the input is unchanged, the sum is a new {type(out).__name__}"
    return {"status": "ok", "detail": "", "in_place": changed, "same_object": out is x, "finding": finding}


def measure_bridge(runner: _Runner) -> list:
    """Each direction of the numpy bridge: the idiomatic conversion, then a write to one side and a read of
    the other. Values first: the conversion must give the same numbers."""
    module, precision = runner.module, runner.problem.precision
    rows = []
    for name, label in BRIDGE:
        row = {**_row(module, name, label, [name]), "direction": label}
        if not hasattr(module, name):
            rows.append({**row, "status": "missing", "finding": f"{name}() is not defined"})
            continue
        try:
            rows.append({**row, **(_numpy_to_framework if name == "from_numpy" else _framework_to_numpy)(
                runner, np.arange(1, 9, dtype=precision))})
        except Exception as error:
            rows.append({**row, "status": "error", "finding": f"{type(error).__name__}: {error}".splitlines()[0]})
    return rows


def _numpy_to_framework(runner: _Runner, a: np.ndarray) -> dict:
    original = a.copy()
    x = runner.call("from_numpy", a)
    if not np.array_equal(runner.read(x, a.shape), original):
        return {"status": "mismatch", "finding": "the framework array does not hold the numpy array's values"}
    a += 100  # write to the numpy side
    seen = runner.read(x, a.shape)
    if np.array_equal(seen, a):
        return {"status": "ok", "shares": True,
                "finding": "shares memory: a write to the numpy array shows in the tensor"}
    if np.array_equal(seen, original):
        return {"status": "ok", "shares": False, "finding": "copies: the tensor keeps the values it was made from"}
    return {"status": "mismatch", "shares": None,
            "finding": "after a write to the numpy array the tensor holds neither value"}


def _framework_to_numpy(runner: _Runner, a: np.ndarray) -> dict:
    # x made by the framework (a sum), so that it owns its memory
    x = runner.call("add", runner.to_framework(a), runner.to_framework(np.zeros_like(a)))
    b = runner.call("to_numpy", x)
    if not isinstance(b, np.ndarray):
        return {"status": "mismatch", "finding": f"to_numpy returned a {type(b).__name__}, not a numpy array"}
    if not np.array_equal(b, a):
        return {"status": "mismatch", "finding": "the numpy array does not hold the tensor's values"}
    if b.flags.writeable:
        b += 100  # write to the numpy side, read the tensor through the framework
        if np.array_equal(runner.read(x, a.shape), b):
            return {"status": "ok", "shares": True, "writeable": True,
                    "finding": "shares memory: a write to the numpy array shows in the tensor"}
        return {"status": "ok", "shares": False, "writeable": True,
                "finding": "copies: a write to the numpy array leaves the tensor unchanged"}
    # a read-only numpy array: write to the tensor instead, where the framework can
    if hasattr(runner.module, "add_inplace"):
        hundred = runner.to_framework(np.full_like(a, 100))
        runner.call("add_inplace", x, hundred)
        if not np.array_equal(runner.read(x, a.shape), a):  # the tensor did change in place
            shares = bool(np.array_equal(b, a + 100))
            return {"status": "ok", "shares": shares, "writeable": False,
                    "finding": ("shares memory (read-only view): a write to the tensor shows in the numpy array"
                                if shares else "copies (read-only): a write to the tensor leaves it unchanged")}
    # immutable on both sides: compare addresses, through a DLPack view of the tensor's own buffer
    try:
        shares = bool(np.shares_memory(b, np.from_dlpack(x)))
    except Exception as error:
        return {"status": "ok", "shares": None, "writeable": False,
                "finding": f"read-only, and the tensor is immutable: no write can tell ({type(error).__name__} "
                           f"from np.from_dlpack)"}
    return {"status": "ok", "shares": shares, "writeable": False,
            "finding": "shares memory (read-only view): the numpy array's data is the tensor's buffer (DLPack)"
            if shares else "copies (read-only): the numpy array's data is not the tensor's buffer (DLPack)"}


def measure_transfer(runner: _Runner) -> dict:
    module, adapter = runner.module, runner.adapter
    row = {**_row(module, "transfer", "To a GPU and back", list(TRANSFER))}
    why = _unavailable(module, "to_gpu") or _unavailable(module, "to_cpu")
    if why:
        return {**row, "status": "not available", "detail": why}
    missing = [n for n in TRANSFER if not hasattr(module, n)]
    if missing:
        return {**row, "status": "missing", "detail": f"{', '.join(missing)} not defined"}
    gpu = adapter.gpu_name()
    if not gpu:
        return {**row, "status": "skipped", "detail": f"skipped: no GPU visible to {adapter.DISPLAY_NAME}"}
    try:
        a = runner.problem.inputs["x"]
        host = runner.to_framework(a, "cpu")
        on_gpu = runner.call("to_gpu", host, device="gpu")
        back = runner.call("to_cpu", on_gpu, device="gpu")
        problem_text = compare("exact", adapter.to_numpy(back), a, runner.problem.precision)
    except Exception as error:
        return {**row, "status": "error", "detail": f"{type(error).__name__}: {error}".splitlines()[0]}
    return {**row, "status": "mismatch" if problem_text else "ok", "detail": problem_text, "gpu": gpu}


# ------------------------------------------------------------------------------------- benchmarks

def quartiles(values):
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def time_calls(call, ready) -> tuple[list, object]:
    """One warm-up call (allocation, kernel selection, compilation), then single calls, each waited for
    (ready) before the clock is read, until BUDGET_S is spent: at least MIN_REPEATS, at most MAX_REPEATS;
    a single one when the warm-up took over LONG_CALL_S (a 4096 matmul on a slow or crowded machine)."""
    lap = time.perf_counter()
    out = call()
    ready(out)
    least = 1 if time.perf_counter() - lap > LONG_CALL_S else MIN_REPEATS
    seconds = []
    started = time.perf_counter()
    while len(seconds) < MAX_REPEATS and (len(seconds) < least or time.perf_counter() - started < BUDGET_S):
        lap = time.perf_counter()
        out = call()
        ready(out)
        seconds.append(time.perf_counter() - lap)
    return seconds, out


def benchmark(runner: _Runner, transfer_ok: bool) -> tuple[list, list]:
    """(rows, problems): each benchmark at each size; outputs up to CHECKED_BENCHMARK_SIZE compared with numpy.
    The clock sees the backend function and the wait for its result, nothing of this module's bookkeeping."""
    module, precision = runner.module, runner.problem.precision
    itemsize = np.dtype(precision).itemsize
    rng = np.random.default_rng(runner.problem.seed + 1)
    f = {name: getattr(module, name) for name in ("matmul", "add", "max_axis", "array", *TRANSFER)
         if hasattr(module, name) and not _unavailable(module, name)}
    rows, problems = [], []
    for n in runner.problem.benchmark_sizes:
        a = rng.standard_normal((n, n)).astype(precision)
        b = rng.standard_normal((n, n)).astype(precision)
        x, y = runner.to_framework(a), runner.to_framework(b)
        here = runner.ready
        on_gpu = lambda out: runner.ready(out, "gpu")  # noqa: E731
        dtype = runner.dtype
        cases = {  # name: (call, wait, numpy's answer, check)
            "matmul": (lambda: f["matmul"](x, y), here, lambda: a @ b, "close"),
            "add": (lambda: f["add"](x, y), here, lambda: a + b, "exact"),
            "max_axis": (lambda: f["max_axis"](x, 1), here, lambda: a.max(axis=1), "exact"),
            "copy_in": (lambda: f["array"](a, dtype), here, lambda: a, "exact"),
        }
        if transfer_ok:
            host = runner.to_framework(a, "cpu")
            device_copy = runner.call("to_gpu", host, device="gpu")
            cases["to_gpu"] = (lambda: f["to_gpu"](host), on_gpu, lambda: a, "exact")
            cases["to_cpu"] = (lambda: f["to_cpu"](device_copy), on_gpu, lambda: a, "exact")
        for name, (call, wait, reference, check) in cases.items():
            function, unit, work = BENCHMARKS[name]
            if function not in f:
                continue
            try:
                with runner.scope():
                    seconds, out = time_calls(call, wait)
            except Exception as error:  # already a failed row of the table; the other benchmarks go on
                problems.append(f"benchmark {name} at n={n}: {type(error).__name__}: {error}".splitlines()[0])
                continue
            q1, median, q3 = quartiles(seconds)
            rows.append({"benchmark": name, "n": n, "unit": unit, "median_s": median, "iqr_s": q3 - q1,
                         "repeats": len(seconds), "throughput": work(n, itemsize) / median if median > 0 else None})
            if n <= CHECKED_BENCHMARK_SIZE:
                wrong = compare(check, runner.adapter.to_numpy(out), reference(), precision)
                if wrong:
                    problems.append(f"benchmark {name} at n={n}: {wrong}")
            del out
    return rows, problems


# ------------------------------------------------------------------------------------ the worker's call

def ceiling(problem: Problem, module, adapter, device: str) -> dict:
    """The ceiling recipe: matmul at the size, checked against numpy, and a large copy (an addition on a GPU)."""
    runner = _Runner(problem, module, adapter, device)
    precision, (n,) = problem.precision, problem.benchmark_sizes
    itemsize = np.dtype(precision).itemsize
    rng = np.random.default_rng(problem.seed + 1)
    a, b = (rng.standard_normal((n, n)).astype(precision) for _ in range(2))
    x, y = runner.to_framework(a), runner.to_framework(b)
    with runner.scope():
        seconds, out = time_calls(lambda: module.matmul(x, y), runner.ready)
    wrong = compare("close", runner.adapter.to_numpy(out), a @ b, precision)
    del out, x, y
    rows = [_rate("matmul", n, seconds, 2.0 * n ** 3 / 1e9, "GFLOP/s")]
    side = int((CEILING_COPY_BYTES / itemsize) ** 0.5)
    big = np.ones((side, side), precision)
    moved = 2.0 * big.nbytes / 1e9  # read once, written once
    if device == "gpu":
        x, y = runner.to_framework(big), runner.to_framework(big)
        with runner.scope():
            seconds, out = time_calls(lambda: module.add(x, y), runner.ready)
        rows.append(_rate("add", side, seconds, 1.5 * moved, "GB/s"))
    else:  # the memory's rate, not the allocator's: a fresh 1 GiB destination would time its page faults
        destination = np.zeros_like(big)
        seconds, out = time_calls(lambda: np.copyto(destination, big), lambda out: None)
        rows.append(_rate("copy", side, seconds, moved, "GB/s"))
    del out
    return {"verdict": "ok" if not wrong else f"matmul at n={n}: {wrong}",
            "metrics": {"peak_matmul_gflops": rows[0]["throughput"], "bandwidth_gbs": rows[1]["throughput"],
                        "bandwidth_from": rows[1]["benchmark"], "largest_n": n},
            "report_data": {"benchmarks": rows, "benchmark_sizes": [n], "itemsize": itemsize}, "notes": []}


def _rate(name: str, n: int, seconds: list, work: float, unit: str) -> dict:
    q1, median, q3 = quartiles(seconds)
    return {"benchmark": name, "n": n, "unit": unit, "median_s": median, "iqr_s": q3 - q1, "repeats": len(seconds),
            "throughput": work / median if median > 0 else None}


def run_backend(problem: Problem, module, adapter, device: str, variant: str) -> dict:
    """Every op checked, the bridge and device transfer measured, the benchmarks timed: the record's
    verdict, metrics, report_data and notes."""
    if problem.recipe.name == CEILING:
        return ceiling(problem, module, adapter, device)
    runner = _Runner(problem, module, adapter, device)
    ops = [check_op(runner, op) for op in OPS]
    bridge = measure_bridge(_Runner(problem, module, adapter, "cpu"))  # the bridge is between host arrays
    transfer = measure_transfer(runner)
    benchmarks, benchmark_problems = benchmark(runner, transfer["status"] == "ok")

    failed = [r for r in ops if r["status"] in ("mismatch", "error", "missing")]
    failed += [r for r in bridge if r["status"] != "ok"]
    failed += [transfer] if transfer["status"] in ("mismatch", "error", "missing") else []
    problems = [f"{r['op']}: {r['status']}: {r.get('detail') or r.get('finding')}" for r in failed]
    problems += benchmark_problems
    verdict = "ok" if not problems else "; ".join(problems)
    if len(verdict) > 300:
        verdict = verdict[:297] + "..."

    by_op = {r["op"]: r for r in ops}
    peak = {}
    for row in benchmarks:
        if row["throughput"] is not None:
            key = f"peak_{row['benchmark']}_" + ("gflops" if row["unit"] == "GFLOP/s" else "gbs")
            peak[key] = max(peak.get(key, 0.0), row["throughput"])
    metrics = {
        "ops_checked": len(ops), "ops_passed": sum(r["status"] == "ok" for r in ops),
        "ops_failed": len([r for r in ops if r["status"] in ("mismatch", "error", "missing")]),
        "ops_not_available": sum(r["status"] == "not available" for r in ops),
        "numpy_to_framework": bridge[0].get("finding"), "framework_to_numpy": bridge[1].get("finding"),
        "numpy_to_framework_shares": bridge[0].get("shares"), "framework_to_numpy_shares": bridge[1].get("shares"),
        "in_place_add": by_op["add_inplace"].get("finding", by_op["add_inplace"]["status"]),
        "device_transfer": transfer["status"],
        "largest_n": max(problem.benchmark_sizes),
        **peak,
    }
    about = getattr(module, "about", None)
    return {
        "verdict": verdict,
        "metrics": metrics,
        "report_data": {"ops": ops, "bridge": bridge, "transfer": transfer, "benchmarks": benchmarks,
                        "benchmark_sizes": list(problem.benchmark_sizes), "about": about() if about else {},
                        "itemsize": np.dtype(problem.precision).itemsize},
        "notes": [],  # the functions' docstrings are footnotes of the report's table (report_data)
    }
