"""`rosetta doctor`: what this machine and each backend's environment hold, and how to fix what is missing.

For each backend, in its own interpreter (rosetta/worker/probe.py): the framework's version, the devices it
sees, what it was built with; its system requirements; and, on a machine whose NVIDIA driver is present, a
framework build that cannot use the GPU (a CPU-only wheel), with the command that installs the GPU build.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from rosetta import envs
from rosetta.registry import Registry
from rosetta.worker import machine, probe

PROBE_TIMEOUT_S = 300


def gpu_driver() -> str | None:
    """The NVIDIA driver's command-line tool, where one is installed: then GPU cells are expected to run."""
    return shutil.which("nvidia-smi")


def probe_backend(backend) -> dict:
    python = envs.interpreter(backend)
    try:
        done = subprocess.run([str(python), "-m", "rosetta.worker.probe", backend.module, str(backend.path)],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env=envs.worker_environment(backend, backend.default_variant, "gpu", None))
    except subprocess.TimeoutExpired:
        return {"error": f"the probe did not finish in {PROBE_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith(probe.MARK)]
    if not lines:
        return {"error": f"the probe ended with code {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(lines[-1][len(probe.MARK):])


def doctor(registry: Registry) -> list[str]:
    about = machine.describe()
    driver = gpu_driver()
    lines = [f"machine: {about['cpu']}, {about['cores']} cores, {about['os']}",
             f"NVIDIA driver: {'nvidia-smi at ' + driver if driver else 'none (nvidia-smi not found): GPU cells will be skipped'}",
             f"engine: Python {about['python']} at {sys.executable}"]
    for backend in registry.backends.values():
        lines.append(f"\n{backend.name} ({backend.display_name})")
        if backend.problem:
            lines.append(f"  {backend.problem}")
            continue
        python = envs.interpreter(backend)
        where = "shared environment" if backend.environment == "shared" else f"own environment {backend.environment}"
        lines.append(f"  interpreter: {python} ({where})")
        for requirement, fix in envs.missing_system_requirements(backend):
            lines.append(f"  missing {envs.requirement_name(requirement)} ({requirement.get('why', '')}); fix: {fix}")
        if not envs.is_installed(backend):
            lines.append(f"  not installed; fix: {envs.install_hint(backend)}")
            continue
        found = probe_backend(backend)
        if "error" in found:
            lines.append(f"  import fails: {found['error']}; fix: rosetta setup --force {backend.name}")
            continue
        lines.append(f"  {backend.display_name} {found['version']}, Python {found['python']}, numpy {found['numpy_version']}")
        gpu = (found["gpu"] or f"no GPU visible to {backend.display_name}") if backend.supports_gpu else "CPU only"
        lines.append(f"  devices: cpu; gpu: {gpu}")
        if found["build"]:
            lines.append("  built with: " + ", ".join(f"{k} {v}" for k, v in found["build"].items()))
        if driver and backend.supports_gpu and not found["gpu"]:
            cpu_only = found.get("gpu_build") is False
            lines.append(f"  the NVIDIA driver is present but {backend.display_name} sees no GPU"
                         + (" (this is a CPU-only build)" if cpu_only else "")
                         + f"; fix: rosetta setup --gpu --force {backend.name}")
    return lines
