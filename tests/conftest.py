"""Shared fixtures: the registry (discovered once), cells run through the real worker and cached for the whole
session (so the numpy reference of a problem runs once, whichever test file asks for it), backend and variant
parameters that skip with the reason (not installed, and how to install it), and the real CLI in a subprocess.

The fast lane, `pytest -m "not slow"`, runs every test on the reference and one framework (PyTorch) and
leaves the other frameworks' parameters, and the long runs, to the full suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rosetta import envs
from rosetta.plan import Cell
from rosetta.registry import discover
from rosetta.runner import run_cell

ROOT = Path(__file__).resolve().parent.parent
# The real CIFAR-10 (../shared/data/README.md): beside a checkout, or where ROSETTA_TEST_CIFAR10 points.
REAL_CIFAR10 = Path(os.environ.get("ROSETTA_TEST_CIFAR10") or ROOT.parent / "shared" / "data" / "cifar-10-batches-py")
REGISTRY = discover()
BACKENDS = REGISTRY.backends
RUNNABLE = REGISTRY.runnable()
REFERENCE = REGISTRY.reference
FAST_LANE = {REFERENCE.name, "torch"}  # the frameworks `pytest -m "not slow"` runs

_cells: dict = {}


def variant_params(with_reference: bool = True, task: str | None = None):
    """One pytest param per (backend, variant) (those that implement `task`, if given), skipped with the reason
    when the backend is not installed; outside the fast lane, marked slow."""
    params = []
    for backend in RUNNABLE:
        if backend.reference and not with_reference:
            continue
        if task is not None and (not backend.has_module(REGISTRY.task(task)) or task in backend.does_not_implement):
            continue
        marks = [] if backend.name in FAST_LANE else [pytest.mark.slow]
        if not envs.is_installed(backend):
            marks.append(pytest.mark.skip(
                reason=f"{backend.display_name} is not installed: run `rosetta setup {backend.name}`"))
        for variant in (backend.variants_for(task) if task else backend.variants):
            params.append(pytest.param(backend, variant, id=variant, marks=marks))
    return params


def backend_params(with_reference: bool = True, task: str | None = None):
    seen, params = set(), []
    for p in variant_params(with_reference, task):
        backend = p.values[0]
        if backend.name not in seen:
            seen.add(backend.name)
            params.append(pytest.param(backend, id=backend.name, marks=p.marks))
    return params


def make_cell(task: str, backend, variant: str | None = None, recipe: str | None = None, precision: str = "float64",
              size: int | None = None, steps: int | None = None, device: str = "cpu", seed: int = 0,
              lr: float | None = None, options: dict | None = None, axes: dict | None = None) -> Cell:
    spec = REGISTRY.task(task)
    return Cell(task, backend.name, variant or backend.default_variant, device, recipe or spec.default_recipe,
                precision, size or spec.check_size or spec.default_size, seed, steps, lr,
                tuple(sorted((options or {}).items())), tuple((axes or {}).items()))


def record(cell: Cell, threads: int | None = 1, timeout: float | None = None, fresh: bool = False) -> dict:
    """The cell's record, run once per session through the real worker (fresh=True: run it again)."""
    key = (cell, threads)
    if fresh or key not in _cells:
        _cells[key] = run_cell(cell, BACKENDS[cell.backend], REGISTRY.task(cell.task), timeout=timeout,
                               threads=threads)
    return _cells[key]


def ok(cell: Cell, **kwargs) -> dict:
    """The cell's record, which must have run to the end ("ok")."""
    found = record(cell, **kwargs)
    assert found["status"] == "ok", f"{cell.id}: {found.get('verdict')}\n{found.get('error') or found.get('stderr_tail')}"
    return found


def reference_of(cell: Cell, **kwargs) -> dict:
    """The reference backend's record of the same problem."""
    return ok(Cell(**{**cell.__dict__, "backend": REFERENCE.name, "variant": REFERENCE.default_variant,
                      "device": "cpu"}), **kwargs)


def rosetta(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "rosetta", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """Third-party packages (tests/plugins.py) pip-installed into a temporary folder; put it on PYTHONPATH to
    make their entry points visible. The project's environment is left untouched."""
    from plugins import install_plugins
    return install_plugins(tmp_path_factory.mktemp("plugins"))


def train_in_process(task_name: str, problem) -> tuple[list, object]:
    """Drive the reference backend's train() for a task in this process, as the worker drives it
    (tasks/protocol.py: a float per step, Chunk(losses) for several, Compiled() before training); returns the
    losses and the Result it returned."""
    import importlib

    from tasks.protocol import Chunk, Compiled

    module = importlib.import_module(REFERENCE.module_for(REGISTRY.task(task_name))[0])
    losses, training = [], module.train(problem, "cpu", REFERENCE.default_variant)
    try:
        while True:
            out = next(training)
            if isinstance(out, Compiled):
                continue
            if isinstance(out, Chunk):
                losses += list(out)
                continue
            assert isinstance(out, float), f"train() yielded a {type(out).__name__} (tasks/protocol.py)"
            losses.append(out)
    except StopIteration as finished:
        return losses, finished.value
