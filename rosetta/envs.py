"""Environments: which interpreter runs each backend, whether its framework is installed, and setup.

Backends that agree on numpy share the project's environment (the interpreter running rosetta).
A backend that cannot (MXNet 1.9.1 needs numpy < 1.24) declares an environment of its own, a virtual
environment under .envs/<name> that `rosetta setup <name>` builds with venv + pip.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from rosetta.backend import Backend
from rosetta.errors import UsageError
from rosetta.registry import ROOT

FIND_SPEC = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"


def envs_dir() -> Path:
    return Path(os.environ.get("ROSETTA_ENVS", ROOT / ".envs"))


def interpreter(backend: Backend) -> Path:
    """ROSETTA_PYTHON_<NAME> overrides; otherwise this interpreter, or the backend's own venv."""
    override = os.environ.get(f"ROSETTA_PYTHON_{backend.name.upper().replace('-', '_')}")
    if override:
        return Path(override)
    if backend.environment == "shared":
        return Path(sys.executable)
    return envs_dir() / backend.environment / "bin" / "python"


def is_installed(backend: Backend) -> bool:
    python = interpreter(backend)
    if python == Path(sys.executable):
        import importlib.util
        return importlib.util.find_spec(backend.import_name) is not None
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", FIND_SPEC, backend.import_name],
                          capture_output=True, timeout=60).returncode == 0


def install_hint(backend: Backend) -> str:
    return f"rosetta setup {backend.name}"


# Read once at start-up by the runtimes every framework may load (OpenMP and the BLAS libraries); a
# framework's own variables are declared by its adapter (THREAD_ENVIRONMENT).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_environment(backend: Backend, variant: str, device: str, threads: int | None,
                       precision: str = "float32") -> dict:
    """The worker's environment: the project on the path, the variant's, device's and precision's settings,
    and thread limits for the runtimes that read them only at start-up."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(backend.environment_for(variant, device, precision))
    if threads:
        env.update({var: str(threads) for var in THREAD_VARIABLES + backend.thread_environment})
    return env


# ------------------------------------------------------------------------------------------- setup

def _stamp_path(backend: Backend, gpu: bool) -> Path:
    return envs_dir() / "stamps" / f"{backend.name}-{'gpu' if gpu else 'cpu'}.json"


def _requirement_text(path: Path) -> str:
    """The file's text with every `-r other.txt` it includes, so that a change there is seen too."""
    parts = [path.read_text()]
    for line in parts[0].splitlines():
        if line.strip().startswith("-r "):
            parts.append(_requirement_text(path.parent / line.strip()[3:].strip()))
    return "\n".join(parts)


def _fingerprint(backend: Backend, requirements: Path, python: Path) -> str:
    text = _requirement_text(requirements) if requirements else ""
    return hashlib.sha256(f"{text}\n{python}\n{sys.version}".encode()).hexdigest()


def requirement_name(requirement: dict) -> str:
    return requirement.get("executable") or requirement.get("library") or "?"


def _present(requirement: dict) -> bool:
    import ctypes.util
    import shutil
    if "executable" in requirement:
        return shutil.which(requirement["executable"]) is not None
    if "library" in requirement:
        name = requirement["library"]
        if ctypes.util.find_library(name.removeprefix("lib").split(".so")[0]):
            return True
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            return False
    return True


def _apt_command(requirement: dict) -> str | None:
    package = requirement.get("apt")
    return f"apt-get install -y {package}" if package else None


def missing_system_requirements(backend: Backend) -> list[tuple[dict, str]]:
    """(requirement, the command that installs it) for each of the backend's SYSTEM_REQUIREMENTS not found."""
    return [(r, _apt_command(r) or f"install {requirement_name(r)} (see backends/{backend.name}/__init__.py)")
            for r in backend.system_requirements if not _present(r)]


def install_system_requirements(backend: Backend, say=print) -> None:
    """apt-get install what is missing where apt and root are at hand; else a one-line error naming the command."""
    import shutil
    missing = missing_system_requirements(backend)
    if not missing:
        return
    packages = [r["apt"] for r, _ in missing if r.get("apt")]
    can_apt = shutil.which("apt-get") is not None and os.geteuid() == 0
    if packages and len(packages) == len(missing) and can_apt:
        say(f"installing {', '.join(packages)} (system packages {backend.name} needs) with apt-get")
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "install", "-y", "-qq", *packages])
        if not missing_system_requirements(backend):
            return
    names = "; ".join(f"{requirement_name(r)} ({r.get('why', 'needed')}): {fix}" for r, fix in missing)
    raise UsageError(f"{backend.name} needs what this machine lacks: {names}")


def setup(backend: Backend, gpu: bool = False, force: bool = False, say=print) -> str:
    """Install what a backend's requirements file names into its environment; skip when nothing changed."""
    if backend.problem:
        raise UsageError(f"backend {backend.name!r} cannot be set up: {backend.problem}")
    install_system_requirements(backend, say)
    requirements = backend.requirements(gpu)
    python = interpreter(backend)
    stamp = _stamp_path(backend, gpu)
    fingerprint = _fingerprint(backend, requirements, python)
    if not force and stamp.exists() and is_installed(backend):
        if json.loads(stamp.read_text()).get("fingerprint") == fingerprint:
            return "up to date"
    if backend.environment != "shared" and not python.exists():
        say(f"creating the virtual environment {python.parent.parent}")
        _run([sys.executable, "-m", "venv", str(python.parent.parent)])
    if requirements and _has_requirements(requirements):
        say(f"installing {requirements.relative_to(ROOT) if requirements.is_relative_to(ROOT) else requirements}"
            f" into {python}")
        _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)])
    if not is_installed(backend):
        raise UsageError(f"{backend.import_name} is still not importable by {python} after installing "
                         f"{requirements}; see pip's output above")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint, "python": str(python)}))
    return "installed"


def setup_order(backends: list[Backend]) -> list[Backend]:
    """Those that declare SETUP_FIRST before the others (a framework whose CPU build must be in place before
    another package can pull in its GPU build), then by name."""
    return sorted(backends, key=lambda b: (not b.setup_first, b.name))


def _has_requirements(path: Path) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in path.read_text().splitlines())


def _run(command: list[str]) -> None:
    result = subprocess.run(command)
    if result.returncode != 0:
        raise UsageError(f"command failed with exit code {result.returncode}: {' '.join(command)}")
