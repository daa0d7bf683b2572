"""Third-party backend packages for the tests, written to a temporary folder and installed there with
`pip install --target` (never into the project's environment): real installed distributions whose
entry points in the group `rosetta.backends` the engine finds on sys.path.

- rosetta-tiny: a working backend (numpy by hand), shipped as a plugin with an environment of its own;
- rosetta-broken: deliberately wrong in every way `rosetta check` knows, one per variant;
- rosetta-incomplete: an adapter without SUPPORTS_FLOAT64 and to_numpy;
- rosetta-crashing: an adapter that raises ImportError when imported;
- rosetta-quadratic: a task of its own (entry-point group `rosetta.tasks`): a spec, its report section, and
  implementations for numpy and PyTorch shipped beside it (IMPLEMENTATIONS);
- rosetta-badtask: a task plugin whose spec lacks make_problem (a warning, never a crash).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ADAPTER_FUNCTIONS = '''
def version():
    import numpy
    return numpy.__version__


def gpu_name():
    return None


def synchronize(device):
    pass


def set_threads(n):
    pass


def peak_device_memory(device):
    return None


def from_numpy(array, device):
    import numpy
    return numpy.array(array, copy=True)
'''

TINY_TASK = '''
"""The classifier by hand in numpy, as a plugin would ship it."""
import numpy as np

from tasks.classifier import Result


def forward(p, x):
    hidden = np.maximum(x @ p["W1"] + p["b1"], 0)
    return hidden, hidden @ p["W2"] + p["b2"]


def train(problem, device, variant):
    p = {k: v.copy() for k, v in problem.params.items()}
    h, name = problem.recipe.hyper, problem.recipe.name
    state = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in p.items()}
    for i, batch in enumerate(problem.batches):
        x, y = problem.x_train[batch], problem.y_train[batch]
        hidden, z = forward(p, x)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -log_p[np.arange(len(y)), y].mean()
        dz = np.exp(log_p)
        dz[np.arange(len(y)), y] -= 1
        dz /= len(y)
        dh = (dz @ p["W2"].T) * (hidden > 0)
        grads = {"W1": x.T @ dh, "b1": dh.sum(0), "W2": hidden.T @ dz, "b2": dz.sum(0)}
        for k, g in grads.items():
            a, b = state[k]
            if name == "manual-sgd":
                p[k] -= problem.learning_rate(i) * g
            elif name == "sgd-momentum":
                a[...] = h["momentum"] * a + g
                p[k] -= h["lr"] * a
            elif name == "adam":
                t = i + 1
                a[...] = h["beta1"] * a + (1 - h["beta1"]) * g
                b[...] = h["beta2"] * b + (1 - h["beta2"]) * g * g
                p[k] -= h["lr"] * (a / (1 - h["beta1"] ** t)) / (np.sqrt(b / (1 - h["beta2"] ** t)) + h["eps"])
            else:  # adadelta
                a[...] = h["rho"] * a + (1 - h["rho"]) * g * g
                step = np.sqrt(b + h["eps"]) / np.sqrt(a + h["eps"]) * g
                b[...] = h["rho"] * b + (1 - h["rho"]) * step * step
                p[k] -= h["lr"] * step
        yield float(loss)
    return Result(params=p, val_logits=forward(p, problem.x_val)[1])
'''

# Deliberately wrong, one mistake per variant (and a few in the adapter), for `rosetta check` to diagnose.
BROKEN_ADAPTER = '''
"""A deliberately broken backend: every mistake here is one `rosetta check` must name."""
import torch  # MISTAKE: a framework imported at module level

NAME = "broken"
DISPLAY_NAME = "Broken"
IMPORT_NAME = "numpy"
ENVIRONMENT = "shared"
VARIANTS = {
    "broken": "train() raises",
    "broken-shapes": "returns W1 transposed",
    "broken-drift": "steps with twice the learning rate",
    "unprefixed": "a variant not named after the backend",  # MISTAKE
}
SUPPORTS_GPU = False
SUPPORTS_FLOAT64 = True
''' + ADAPTER_FUNCTIONS + '''

def to_numpy(x):
    return x.tolist()  # MISTAKE: not a numpy array
'''

BROKEN_TASK = '''
"""Wrong on purpose."""
import dataclasses

import rosetta  # MISTAKE: a task module imports the engine

from rosetta_tiny.classifier import train as train_right
from tasks.classifier import Result


def train(problem, device, variant):
    if variant == "broken":
        raise RuntimeError("deliberately broken")  # LINE-OF-THE-ERROR
    if variant == "broken-drift":
        doubled = {**problem.recipe.hyper, "lr": 2 * problem.recipe.hyper["lr"]}
        problem = dataclasses.replace(problem, recipe=dataclasses.replace(problem.recipe, hyper=doubled))
    result = yield from train_right(problem, device, variant)
    if variant == "broken-shapes":
        result.params["W1"] = result.params["W1"].T
    return result
'''

INCOMPLETE_ADAPTER = '''
"""An adapter that forgot SUPPORTS_FLOAT64 and to_numpy()."""
NAME = "incomplete"
DISPLAY_NAME = "Incomplete"
IMPORT_NAME = "numpy"
ENVIRONMENT = "shared"
VARIANTS = {"incomplete": "never runs"}
SUPPORTS_GPU = False
''' + ADAPTER_FUNCTIONS

CRASHING_ADAPTER = '''
"""An adapter whose import fails."""
raise ImportError("rosetta-crashing needs libfoo, which is not installed")
'''


def tiny_adapter(environment: str) -> str:
    return (f'"""A tiny numpy backend shipped as a plugin."""\n\nNAME = "tiny"\nDISPLAY_NAME = "Tiny"\n'
            f'IMPORT_NAME = "numpy"\nENVIRONMENT = {environment!r}\n'
            'VARIANTS = {"tiny": "numpy by hand, from a plugin"}\nSUPPORTS_GPU = False\nSUPPORTS_FLOAT64 = True\n'
            + ADAPTER_FUNCTIONS + "\n\ndef to_numpy(x):\n    import numpy\n    return numpy.asarray(x)\n")


def write_package(root: Path, dist: str, package: str, entry: str, files: dict[str, str],
                  group: str = "rosetta.backends", target: str | None = None) -> Path:
    project = root / dist
    (project / package).mkdir(parents=True)
    packages = sorted({package} | {f"{package}.{Path(name).parent.as_posix().replace('/', '.')}"
                                   for name in files if "/" in name})
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.1.0"

        [project.entry-points."{group}"]
        {entry} = "{target or package}"

        [tool.setuptools]
        packages = {json.dumps(packages)}

        [tool.setuptools.package-data]
        {package} = ["requirements*.txt"]
        """))
    for name, text in files.items():
        (project / package / name).parent.mkdir(parents=True, exist_ok=True)
        (project / package / name).write_text(text)
    return project


def install_plugins(root: Path) -> Path:
    """Write the four packages under root/src and pip-install them into root/site; returns root/site."""
    src, site = root / "src", root / "site"
    projects = [
        write_package(src, "rosetta-tiny", "rosetta_tiny", "tiny", {
            "__init__.py": tiny_adapter("tiny"), "classifier.py": TINY_TASK,
            "requirements.txt": "# numpy only, which every environment has\nnumpy\n"}),
        write_package(src, "rosetta-broken", "rosetta_broken", "broken", {
            "__init__.py": BROKEN_ADAPTER, "classifier.py": BROKEN_TASK}),  # MISTAKE: no requirements.txt
        write_package(src, "rosetta-incomplete", "rosetta_incomplete", "incomplete", {
            "__init__.py": INCOMPLETE_ADAPTER, "classifier.py": TINY_TASK, "requirements.txt": "numpy\n"}),
        write_package(src, "rosetta-crashing", "rosetta_crashing", "crashing", {
            "__init__.py": CRASHING_ADAPTER, "requirements.txt": "numpy\n"}),
        write_package(src, "rosetta-quadratic", "rosetta_quadratic", "quadratic", {
            "__init__.py": "", "quadratic.py": QUADRATIC_SPEC, "quadratic_report.py": QUADRATIC_REPORT,
            "implementations/__init__.py": "", "implementations/numpy.py": QUADRATIC_NUMPY,
            "implementations/torch.py": QUADRATIC_TORCH}, group="rosetta.tasks", target="rosetta_quadratic.quadratic"),
        write_package(src, "rosetta-badtask", "rosetta_badtask", "badtask", {
            "__init__.py": "", "spec.py": 'NAME = "badtask"\nSUMMARY = "no make_problem"\n'},
            group="rosetta.tasks", target="rosetta_badtask.spec"),
    ]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    *map(str, projects)], check=True, capture_output=True, text=True, timeout=600)
    return site


# A task of its own, shipped as a plugin: least squares by gradient descent, y = X w, a loss per step.
QUADRATIC_SPEC = '''
"""Least squares by plain gradient descent: a task shipped in a package of its own."""
from dataclasses import dataclass

import numpy as np

NAME = "quadratic"
SUMMARY = "least squares by gradient descent, a task from a plugin"
KIND = "training"
IMPLEMENTATIONS = "rosetta_quadratic.implementations"
DEFAULT_SIZE = 64
CHECK_SIZE = 64
AGREEMENT_TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str = ""


RECIPES = {"descent": Recipe("descent", "plain gradient descent, lr 0.1")}


@dataclass
class Problem:
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    lr: float
    steps: int
    batch_size: int
    recipe: Recipe


@dataclass
class Result:
    w: np.ndarray
    notes: list


def validate(size, recipe, steps=None):
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}")
    if size < 2:
        raise ValueError(f"size {size} is too small; give --size 2 or more")


def make_problem(size=DEFAULT_SIZE, seed=0, recipe="descent", precision="float64", steps=None, lr=None):
    validate(size, recipe, steps)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, 3)).astype(precision)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(size)).astype(precision)
    return Problem(x, y, np.zeros(3, precision), lr or 0.1, steps or 30, size, RECIPES[recipe])


def check(problem, result, losses):
    if len(losses) != problem.steps:
        return {"verdict": f"wrong: {len(losses)} losses for {problem.steps} steps"}
    return {"verdict": "ok", "final_loss": float(losses[-1]), "w": [float(v) for v in result.w]}
'''

QUADRATIC_REPORT = '''
from rosetta.report.sections import Section


def sections(view):
    rows = [f"{r['variant']}: w = {r['metrics']['w']}" for r in view.finished]
    text = "The fitted weights, each framework: " + "; ".join(rows)
    return [Section("Quadratic: the fitted weights", f"<p>{text}</p>", text)]
'''

QUADRATIC_NUMPY = '''
import numpy as np

from rosetta_quadratic.quadratic import Result


def train(problem, device, variant):
    w = problem.w.copy()
    for _ in range(problem.steps):
        error = problem.x @ w - problem.y
        loss = (error ** 2).mean()
        w -= problem.lr * 2 * problem.x.T @ error / len(error)
        yield float(loss)
    return Result(w, [])
'''

QUADRATIC_TORCH = '''
import torch

from rosetta_quadratic.quadratic import Result


def train(problem, device, variant):
    x, y = torch.from_numpy(problem.x), torch.from_numpy(problem.y)
    w = torch.from_numpy(problem.w.copy()).requires_grad_()
    for _ in range(problem.steps):
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= problem.lr * w.grad
            w.grad.zero_()
        yield loss.item()
    return Result(w.detach().numpy(), [])
'''
