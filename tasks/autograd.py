"""The seeds' automatic-differentiation examples, as a framework-free spec: each one checked in every framework.

Course 1 shows PyTorch's autograd on small examples and leaves an exercise: "compute the derivative with
Keras, Tensorflow, CNTK, MXNet". The lecture of seed 004 writes c = sum(x * y + z) with its backward by hand
in numpy, then lets PyTorch do it. Seed 002 found that a gradient check "checks rather well when using
double precision, but checks very poorly when using single precision". This task runs all of them:

- square: d(x^2)/dx at x = 2 is 4.
- accumulate: backward of y = sum(x) three times, x = ones(2). PyTorch adds each backward into x.grad
  (1, 2, 3, with retain_graph=True); a framework whose gradients are return values (TensorFlow's tape, JAX's
  grad) gives 1, 1, 1. Each backend module declares what its framework is documented to do
  (ACCUMULATION = (pattern, words)) and writes its idiom; the observed sequence is compared with that model.
- vector-backward: y = x^2 at x = ones(2) is a vector; its backward with the output gradient [-1, 1] gives
  [-2, 2] (the vector-Jacobian product).
- control-flow: y = x; while y < 10: y = y^2, from x = 2, is x^4 = 16, and dy/dx = 4 x^3 = 32: the gradient
  flows through the Python loop that ran. control-flow-compiled (optional, for frameworks that compile
  a function: TensorFlow's tf.function, JAX's jit) asks for the same loop inside the compiled function,
  where a data-dependent loop cannot be a Python loop any more.
- lecture: seed 004's c = sum(x * y + z), N, D = 3, 4 and np.random.seed(0): grad_x = y, grad_y = x.
- custom-relu: a ReLU with a user-written backward (torch.autograd.Function, tf.custom_gradient,
  jax.custom_vjp, mxnet autograd.Function, paddle PyLayer): the gradient is upstream * (x > 0), and the
  backend returns how many times its backward ran (1), so the check sees the custom backward was used.
- gradient-check: a 5 -> 7 tanh -> 3 softmax cross-entropy network on `size` samples. The backend gives
  `loss(params, x, y)` (a Python float) and `gradients(params, x, y)` (its autograd), in float64 AND
  float32 whatever the run's precision; the spec compares the gradients with central finite differences
  (L(p + eps) - L(p - eps)) / (2 eps) computed from the backend's own loss, for eps from 1e-1 to 1e-8.
  At eps 1e-6, in float64 they agree to ~1e-10 norm-wise (~1e-8 entry-wise); in float32 the difference of
  two rounded losses divided by 2 eps loses most of its digits (rounding ~6e-8 |L| / eps: ~0.2 norm-wise,
  some entries entirely wrong), so the check "fails" although the analytic
  float32 gradient agrees with the float64 one to ~1e-7: the finite differences are what is wrong, which
  is why a gradient check needs double precision.

Each backend module (backends/<name>/autograd.py) defines one function per check, written as that
framework's users write it:

    square(x) -> (y, grad)                     x = [2.]
    accumulate(x) -> [grad after backward 1, 2, 3], or {idiom: [...]} for several idioms (the first is checked)
    vector_backward(x, upstream) -> (y, grad)  x = [1., 1.], upstream = [-1., 1.]
    control_flow(x) -> (y, grad)               x = [2.]
    control_flow_compiled(x) -> (y, grad)      optional
    lecture(x, y, z) -> (c, grad_x, grad_y)
    custom_relu(x, upstream) -> (y, grad, backward_calls)
    loss(params, x, y) -> float;  gradients(params, x, y) -> {name: grad}

Inputs arrive as the framework's arrays on the cell's device (adapter.from_numpy), in the run's precision
(the gradient check: float64 and float32, labels int64); results may be the framework's arrays or numpy
and go back through adapter.to_numpy. A framework without automatic differentiation of its own (Keras 3,
whose gradients come from the framework it runs on) declares so in its adapter (DOES_NOT_IMPLEMENT), and the
report prints why.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from tasks.protocol import Checks

NAME = "autograd"
SUMMARY = ("the seeds' autograd examples checked in every framework (x^2, repeated backward, vector backward, "
           "control flow, the lecture's x*y+z, a custom ReLU) and a gradient check in float64 vs float32")
KIND = "checks"
RANK = 20
TIMEOUT_S = 300

# size: the samples in the gradient check's batch (the other checks have the seeds' fixed sizes).
DEFAULT_SIZE = 8
QUICK_SIZE = 8
CHECK_SIZE = 8
MAX_SIZE = 100_000
INPUTS, HIDDEN, CLASSES = 5, 7, 3
GRADCHECK_SHAPES = {"W1": (INPUTS, HIDDEN), "b1": (HIDDEN,), "W2": (HIDDEN, CLASSES), "b2": (CLASSES,)}
EPSILONS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
HEADLINE_EPS = 1e-6  # the step of the usual advice, and of the pass conditions below
# Pass conditions of the gradient check, on the norm-wise relative error at HEADLINE_EPS (the entry-wise
# maximum is reported, but an entry near zero makes it jump: measured with numpy on seeds 0-11 and sizes 1, 8,
# 64, float64's entry-wise maximum ranged 2.8e-9 to 1.6e-6, its norm-wise error 8.9e-11 to 1.6e-9; float32's
# entry-wise maximum was always 1.0 (some finite differences are 0 or of the wrong sign), its norm-wise error
# 0.047 to 0.55). The float32 condition flags a "float32" loss that is really computed in float64.
FLOAT64_MAX_ERROR = 1e-6
FLOAT32_WORSE_BY = 10.0
# The analytic float32 gradient against the analytic float64 one, norm-wise: float32 rounding (measured
# 2.7e-8 to 1.3e-7 with numpy; entry-wise up to ~1e-5, on the smallest entries).
ANALYTIC_FLOAT32_MAX_ERROR = 1e-4

# No training and no loss curve: the tolerance of the checks' values (relative, against numpy).
AGREEMENT_STEPS = 0
AGREEMENT_TOLERANCE = {"float32": 1e-6, "float64": 1e-12}

# What a framework is documented to do when backward runs again on the same graph is declared by its
# backend module: ACCUMULATION = ("accumulates" or "fresh", "the documentation's words"). A framework
# that deliberately does not implement this task says why in its adapter (DOES_NOT_IMPLEMENT).
PATTERNS = {"accumulates": "1, 2, 3 (accumulates)", "fresh": "1, 1, 1 (each backward's gradient alone)"}
SHORT_PATTERNS = {"accumulates": "1, 2, 3", "fresh": "1, 1, 1"}

# Seed 004 prints grad_x (which is y) for np.random.seed(0), N, D = 3, 4; its first row:
SEED_004_GRAD_X_ROW0 = (0.76103773, 0.12167502, 0.44386323, 0.33367433)


Recipe = Checks  # a task of checks has nothing to tune


RECIPES = {
    "seed-checks": Recipe("seed-checks", summary="the seeds' autograd examples as checks against numpy, and the "
                                                 "gradient check against finite differences in float64 and float32"),
}
DEFAULT_RECIPE = "seed-checks"


@dataclass
class Problem:
    precision: str
    seed: int
    size: int
    recipe: Recipe
    lecture: dict  # x, y, z: (3, 4) float64, from np.random.seed(0) as in seed 004
    relu_x: np.ndarray  # float64
    relu_upstream: np.ndarray
    gradcheck_params: dict  # name -> float64 array (GRADCHECK_SHAPES)
    gradcheck_x: np.ndarray  # (size, 5) float64
    gradcheck_y: np.ndarray  # (size,) int64 labels in 0..2

    def cast(self, array):
        return np.asarray(array, dtype=self.precision)


@dataclass(frozen=True)
class Check:
    name: str  # the backend function
    title: str  # the report's row
    seed: str  # what the seed states
    optional: bool = False


CHECKS = (
    Check("square", "d(x^2)/dx at x = 2", "y = 4, x.grad = 4 (Course 1)"),
    Check("accumulate", "backward of sum(x) three times, x = ones(2)",
          "x.grad = 1, 2, 3: backward accumulates (Course 1, PyTorch with retain_graph=True)"),
    Check("vector_backward", "backward of y = x^2 (a vector) with output gradient [-1, 1], x = ones(2)",
          "x.grad = [-2, 2] (Course 1)"),
    Check("control_flow", "y = x; while y < 10: y = y^2, from x = 2",
          "y = 16, x.grad = 4 x^3 = 32: gradients flow through Python control flow (Course 1)"),
    Check("control_flow_compiled", "the same loop inside a compiled function",
          "y = 16, x.grad = 32 (not in the seed: what a compiler needs for a data-dependent loop)", optional=True),
    Check("lecture", "c = sum(x * y + z), N, D = 3, 4, np.random.seed(0)",
          "grad_x = y, grad_y = x, as the hand-written numpy backward (lecture, seed 004)"),
    Check("custom_relu", "ReLU with a user-written backward",
          "x.grad = upstream * (x > 0), and the custom backward ran (the frameworks' custom-gradient APIs)"),
)
GRADCHECK = Check("gradient_check", "gradient check: autograd vs central differences, 5-7-3 tanh network",
                  f"float64 agrees (norm-wise < {FLOAT64_MAX_ERROR:g}), float32 does not (seed 002)")
BACKEND_FUNCTIONS = tuple(c.name for c in CHECKS if not c.optional) + ("loss", "gradients")


def validate(size: int, recipe: str, steps: int | None = None) -> None:
    """Raise ValueError for a size or recipe that cannot run (steps and lr do not apply: nothing trains)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size {size} is out of range; autograd's size is the gradient check's batch, "
                         f"1 to {MAX_SIZE} samples (default {DEFAULT_SIZE})")


def make_problem(size: int = DEFAULT_SIZE, seed: int = 0, recipe: str = DEFAULT_RECIPE,
                 precision: str = "float32", steps: int | None = None, lr: float | None = None) -> Problem:
    """steps and lr are accepted and ignored (`--task all --steps N` passes them to every task)."""
    validate(size, recipe, steps)
    if precision not in AGREEMENT_TOLERANCE:
        raise ValueError(f"unknown precision {precision!r}; choose float32 or float64")
    # The lecture's draws, exactly: np.random.seed(0), then randn for x, y and z.
    legacy = np.random.RandomState(0)
    lecture = {name: legacy.randn(3, 4) for name in ("x", "y", "z")}
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.standard_normal(GRADCHECK_SHAPES["W1"]) / math.sqrt(INPUTS),
        "b1": rng.standard_normal(HIDDEN) * 0.1,
        "W2": rng.standard_normal(GRADCHECK_SHAPES["W2"]) / math.sqrt(HIDDEN),
        "b2": rng.standard_normal(CLASSES) * 0.1,
    }
    x = rng.standard_normal((size, INPUTS))
    y = rng.integers(0, CLASSES, size).astype(np.int64)
    return Problem(precision=precision, seed=seed, size=size, recipe=RECIPES[recipe], lecture=lecture,
                   relu_x=np.array([-2.0, -0.5, 0.25, 1.0, 3.0]),
                   relu_upstream=np.array([0.5, -1.0, 2.0, -3.0, 4.0]),
                   gradcheck_params=params, gradcheck_x=x, gradcheck_y=y)


# ------------------------------------------------------------------------------------------ checks

def _fmt(array) -> str:
    a = np.asarray(array)
    if a.dtype.kind in "iub":
        return str(a.tolist())
    values = a.astype(np.float64).ravel() + 0.0  # + 0.0: shows -0.0 as 0
    text = ", ".join(f"{v:.6g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
    return text if a.ndim == 0 else f"[{text}]"


def _compare(problem, label, observed, expected) -> str | None:
    """None when observed matches expected (values to the precision's tolerance, same size, same dtype),
    else what differs."""
    observed, expected = np.asarray(observed), np.asarray(expected)
    if observed.size != expected.size:
        return f"{label} has shape {observed.shape}, expected {expected.shape}"
    if observed.dtype.kind == "f" and observed.dtype != np.dtype(problem.precision):
        return f"{label} is {observed.dtype}, expected {problem.precision}"
    tolerance = AGREEMENT_TOLERANCE[problem.precision]
    observed = observed.astype(np.float64).reshape(expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    if not np.allclose(observed, expected, rtol=tolerance, atol=tolerance * scale):
        return f"{label} = {_fmt(observed)}, expected {_fmt(expected)}"
    return None


def _judge_values(problem, labels, out, expected):
    if not isinstance(out, (tuple, list)) or len(out) != len(expected):
        return f"returned {type(out).__name__} of {len(out) if hasattr(out, '__len__') else 1}, " \
               f"expected {len(expected)} values ({', '.join(labels)})", ""
    observed = "; ".join(f"{k} = {_fmt(v)}" for k, v in zip(labels, out))
    for label, value, want in zip(labels, out, expected):
        problem_text = _compare(problem, label, value, want)
        if problem_text:
            return f"differs: {problem_text}", observed
    return "ok", observed


def _pattern(sequence) -> str | None:
    values = [np.asarray(g, dtype=np.float64) for g in sequence]
    if len(values) != 3 or any(v.size != 2 for v in values):
        return None
    if all(np.array_equal(v.ravel(), np.full(2, k + 1.0)) for k, v in enumerate(values)):
        return "accumulates"
    if all(np.array_equal(v.ravel(), np.ones(2)) for v in values):
        return "fresh"
    return None


def judge_accumulate(problem, out, documented):
    """The first sequence must follow the framework's documented model (its module's ACCUMULATION pattern,
    "accumulates" or "fresh"; None: undeclared); any others are recorded."""
    sequences = out if isinstance(out, dict) else {"": out}
    described = {label: (_pattern(seq), "; ".join(_fmt(g) for g in seq)) for label, seq in sequences.items()}
    parts = [f"{label + ': ' if label else ''}{PATTERNS.get(p, 'neither 1, 2, 3 nor 1, 1, 1')} [{text}]"
             for label, (p, text) in described.items()]
    observed = " | ".join(parts)
    short = "; ".join(f"{SHORT_PATTERNS.get(p, text)}{f' ({label})' if label else ''}"
                      for label, (p, text) in described.items())
    first, _ = next(iter(described.values()))
    if first is None:
        return f"differs: repeated backward gave {next(iter(described.values()))[1]}, neither 1, 2, 3 nor 1, 1, 1", \
               observed, short
    if documented is not None and first != documented:
        return f"differs: observed {PATTERNS[first]}, documented {PATTERNS[documented]}", observed, short
    return "ok", observed, short


def _raised(error: Exception) -> str:
    message = str(error).splitlines()[0] if str(error) else ""
    return f"raises {type(error).__name__}: {message}" if message else f"raises {type(error).__name__}"


def _short(out, index) -> str:
    try:
        return _fmt(out[index])
    except (IndexError, TypeError, KeyError):
        return "?"


def run_check(problem: Problem, check: Check, function, host, documented: str | None, device_array):
    """(status, observed, short, values) of one check: status "ok", "differs: ...", or "raises ..."; observed,
    the values returned, as text; short, the report's cell; values, the returned values (numpy)."""
    p, out = problem, None
    try:
        if check.name == "square":
            out = host(function(device_array(p.cast([2.0]))))
            return (*_judge_values(p, ("y", "x.grad"), out, ([4.0], [4.0])), f"x.grad = {_short(out, 1)}", out)
        if check.name == "accumulate":
            out = host(function(device_array(p.cast(np.ones(2)))))
            return (*judge_accumulate(p, out, documented), out)
        if check.name == "vector_backward":
            out = host(function(device_array(p.cast(np.ones(2))), device_array(p.cast([-1.0, 1.0]))))
            return (*_judge_values(p, ("y", "x.grad"), out, ([1.0, 1.0], [-2.0, 2.0])),
                    f"x.grad = {_short(out, 1)}", out)
        if check.name in ("control_flow", "control_flow_compiled"):
            out = host(function(device_array(p.cast([2.0]))))
            return (*_judge_values(p, ("y", "x.grad"), out, ([16.0], [32.0])),
                    f"y = {_short(out, 0)}, x.grad = {_short(out, 1)}", out)
        if check.name == "lecture":
            x, y, z = (p.cast(p.lecture[k]) for k in "xyz")
            out = host(function(device_array(x), device_array(y), device_array(z)))
            # the hand-written backward of the seed: grad_x = grad_a * y = y, grad_y = x
            c = np.sum(x.astype(np.float64) * y + z)
            status, observed = _judge_values(p, ("c", "grad_x", "grad_y"), out,
                                             (c, y.astype(np.float64), x.astype(np.float64)))
            return status, observed, f"c = {_short(out, 0)}, grad_x = y, grad_y = x" if status == "ok" else "", out
        if check.name == "custom_relu":
            x, upstream = p.cast(p.relu_x), p.cast(p.relu_upstream)
            out = host(function(device_array(x), device_array(upstream)))
            status, observed = _judge_values(p, ("y", "x.grad"), out[:2] if isinstance(out, (tuple, list)) else out,
                                             (np.maximum(x, 0), upstream * (x > 0)))
            if not isinstance(out, (tuple, list)) or len(out) != 3:
                return "differs: custom_relu must return (y, grad, backward_calls)", observed, "", out
            calls = int(np.asarray(out[2]))
            observed += f"; custom backward ran {calls} time{'s' if calls != 1 else ''}"
            if status == "ok" and calls != 1:
                status = f"differs: the custom backward ran {calls} times, expected once"
            return status, observed, f"x.grad = {_short(out, 1)}, custom backward ran {calls}x", out
    except Exception as error:  # one check's failure must not hide the others
        return _raised(error), "", "", out
    raise ValueError(f"unknown check {check.name}")


# ---------------------------------------------------------------------------------- gradient check

def relative_errors(analytic: np.ndarray, numeric: np.ndarray) -> tuple[float, float]:
    """(entry-wise maximum of |a - n| / (|a| + |n|), and the norm-wise ||a - n|| / (||a|| + ||n||))."""
    a, n = analytic.astype(np.float64), numeric.astype(np.float64)
    entry = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-300)
    norm = np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300)
    return float(entry.max()), float(norm)


def finite_differences(loss, params: dict, eps: float) -> dict:
    """Central differences (L(p + eps) - L(p - eps)) / (2 eps), one parameter entry at a time, the
    perturbation applied in the parameters' own dtype (as a user's check does). loss(params, name): the loss
    at params, of which only params[name] changed."""
    numeric = {}
    for name, value in params.items():
        grad = np.zeros(value.shape, dtype=np.float64)
        for index in np.ndindex(value.shape):
            old = value[index]
            value[index] = old + value.dtype.type(eps)
            plus = loss(params, name)
            value[index] = old - value.dtype.type(eps)
            minus = loss(params, name)
            value[index] = old
            grad[index] = (plus - minus) / (2 * eps)
        numeric[name] = grad
    return numeric


def gradient_check(problem: Problem, module, host, device_array) -> dict:
    labels = device_array(problem.gradcheck_y)
    rows, analytic_by_precision = [], {}
    for precision in ("float64", "float32"):
        params = {k: v.astype(precision) for k, v in problem.gradcheck_params.items()}
        x = device_array(problem.gradcheck_x.astype(precision))
        unchanged = {k: device_array(v) for k, v in params.items()}  # only the perturbed one is sent again

        def loss(p, changed):
            return float(module.loss({**unchanged, changed: device_array(p[changed])}, x, labels))

        grads = host(module.gradients({k: device_array(v) for k, v in params.items()}, x, labels))
        for name, g in grads.items():
            if np.asarray(g).dtype != np.dtype(precision):
                raise ValueError(f"gradients() returned {name} as {np.asarray(g).dtype} for {precision} parameters")
        analytic = np.concatenate([np.asarray(grads[k], dtype=np.float64).ravel() for k in params])
        analytic_by_precision[precision] = analytic
        for eps in EPSILONS:
            numeric = finite_differences(loss, params, eps)
            flat = np.concatenate([numeric[k].ravel() for k in params])
            max_error, norm_error = relative_errors(analytic, flat)
            rows.append({"precision": precision, "eps": eps, "max_rel_error": max_error,
                         "norm_rel_error": norm_error})
    analytic32_vs_64 = relative_errors(analytic_by_precision["float32"], analytic_by_precision["float64"])
    return {"rows": rows, "analytic_float32_vs_float64": {"max_rel_error": analytic32_vs_64[0],
                                                         "norm_rel_error": analytic32_vs_64[1]},
            "parameters": int(sum(int(np.prod(s)) for s in GRADCHECK_SHAPES.values())), "samples": problem.size}


def judge_gradient_check(result: dict) -> tuple[str, str, str]:
    at = {r["precision"]: r for r in result["rows"] if r["eps"] == HEADLINE_EPS}
    n64, n32 = at["float64"]["norm_rel_error"], at["float32"]["norm_rel_error"]
    a32 = result["analytic_float32_vs_float64"]["norm_rel_error"]
    observed = (f"at eps {HEADLINE_EPS:g}, relative error norm-wise (entry-wise max): float64 {n64:.2g} "
                f"({at['float64']['max_rel_error']:.2g}), float32 {n32:.2g} ({at['float32']['max_rel_error']:.2g}); "
                f"float32 autograd vs float64 autograd {a32:.2g}")
    short = f"float64 {n64:.1g}, float32 {n32:.1g}"
    if not n64 < FLOAT64_MAX_ERROR:
        return f"differs: float64 gradients disagree with finite differences ({n64:.2g} >= {FLOAT64_MAX_ERROR:g})", \
               observed, short
    if not n32 > FLOAT32_WORSE_BY * n64:
        return f"differs: the float32 check is as good as float64's ({n32:.2g} vs {n64:.2g}): is the float32 " \
               f"loss computed in float32?", observed, short
    if not a32 < ANALYTIC_FLOAT32_MAX_ERROR:
        return f"differs: float32 gradients differ from float64 ones by {a32:.2g}", observed, short
    return "ok", observed, short


# -------------------------------------------------------------------------------------------- run

def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def run_backend(problem: Problem, module, adapter, device: str, variant: str) -> dict:
    """Every check in the backend's module: the record's verdict, metrics, report_data and notes."""
    def device_array(array):
        return adapter.from_numpy(np.ascontiguousarray(array), device)

    def host(value):
        if isinstance(value, dict):
            return {k: host(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [host(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, np.ndarray, np.generic)):
            return np.asarray(value)
        return np.asarray(adapter.to_numpy(value))

    model = getattr(module, "ACCUMULATION", None)  # (pattern, words): what the framework documents
    rows, sources = [], {}
    for check in CHECKS:
        function = getattr(module, check.name, None)
        if function is None:
            status, observed, short, values = ("n/a" if check.optional else "missing", "", "", None)
        else:
            status, observed, short, values = run_check(problem, check, function, host, model[0] if model else None,
                                                        device_array)
            sources[check.name] = _source(function)
        rows.append({"check": check.name, "title": check.title, "seed": check.seed, "status": status,
                     "observed": observed, "short": short, "values": _jsonable(values)})

    try:
        gradcheck = gradient_check(problem, module, host, device_array)
        status, observed, short = judge_gradient_check(gradcheck)
    except Exception as error:
        gradcheck, status, observed, short = None, _raised(error), "", ""
    for name in ("loss", "gradients"):
        if hasattr(module, name):
            sources[name] = _source(getattr(module, name))
    rows.append({"check": GRADCHECK.name, "title": GRADCHECK.title, "seed": GRADCHECK.seed, "status": status,
                 "observed": observed, "short": short, "values": None})

    failed = [r for r in rows if r["status"] not in ("ok", "n/a")]
    verdict = "ok" if not failed else "; ".join(f"{r['check']}: {r['status']}" for r in failed)
    if len(verdict) > 300:
        verdict = verdict[:297] + "..."
    metrics = {"checks_passed": sum(r["status"] == "ok" for r in rows), "checks_failed": len(failed),
               "checks_not_applicable": sum(r["status"] == "n/a" for r in rows)}
    if gradcheck is not None:
        for r in gradcheck["rows"]:
            if r["eps"] == HEADLINE_EPS:
                metrics[f"gradcheck_{r['precision']}_max_rel_error"] = r["max_rel_error"]
                metrics[f"gradcheck_{r['precision']}_norm_rel_error"] = r["norm_rel_error"]
        for precision in ("float64", "float32"):
            best = min((r for r in gradcheck["rows"] if r["precision"] == precision), key=lambda r: r["norm_rel_error"])
            metrics[f"gradcheck_{precision}_best_eps"] = best["eps"]
            metrics[f"gradcheck_{precision}_best_norm_rel_error"] = best["norm_rel_error"]
        for key, value in gradcheck["analytic_float32_vs_float64"].items():
            metrics[f"analytic_float32_vs_float64_{key}"] = value
    # A note where the framework's behaviour is not the seed's (PyTorch's 1, 2, 3): the report lists them.
    notes = []
    if model and model[0] != "accumulates":
        notes.append(f"repeated backward gives {PATTERNS[model[0]]}, not the seed's 1, 2, 3: {model[1]}")
    return {
        "verdict": verdict,
        "metrics": metrics,
        "report_data": {"checks": rows, "gradient_check": gradcheck, "headline_eps": HEADLINE_EPS,
                        "accumulation_model": {"pattern": model[0], "words": model[1]} if model else None,
                        "sources": sources},
        "notes": notes,
    }
