"""Shared fixtures: the registry, a way to run the real CLI in a subprocess, and backend parameters
that skip with a reason (not installed, and how to install it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rosetta import envs, registry

ROOT = Path(__file__).resolve().parent.parent
# The real CIFAR-10 (../shared/data/README.md): beside a checkout, or where ROSETTA_TEST_CIFAR10 points.
REAL_CIFAR10 = Path(os.environ.get("ROSETTA_TEST_CIFAR10") or ROOT.parent / "shared" / "data" / "cifar-10-batches-py")
BACKENDS = registry.discover()
RUNNABLE = registry.runnable(BACKENDS)


def variant_params(with_numpy: bool = True):
    """One pytest param per (backend, variant), skipped with the reason when the backend is not installed."""
    params = []
    for backend in RUNNABLE:
        if backend.name == "numpy" and not with_numpy:
            continue
        marks = []
        if not envs.is_installed(backend):
            marks.append(pytest.mark.skip(
                reason=f"{backend.display_name} is not installed: run `rosetta setup {backend.name}`"))
        for variant in backend.variants:
            params.append(pytest.param(backend, variant, id=variant, marks=marks))
    return params


def backend_params(with_numpy: bool = True):
    seen, params = set(), []
    for p in variant_params(with_numpy):
        backend = p.values[0]
        if backend.name not in seen:
            seen.add(backend.name)
            params.append(pytest.param(backend, id=backend.name, marks=p.marks))
    return params


def rosetta(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "rosetta", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """Third-party backend packages (tests/plugins.py) pip-installed into a temporary folder; put it on
    PYTHONPATH to make their entry points visible. The project's environment is left untouched."""
    from plugins import install_plugins
    return install_plugins(tmp_path_factory.mktemp("plugins"))
