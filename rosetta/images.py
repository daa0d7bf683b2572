"""The Docker images, derived from the registry: which backends each image sets up, on which base.

docker/cpu.Dockerfile and docker/cuda.Dockerfile name no backend: they take the backends (and, for CUDA,
the base image) as build arguments and install them with `rosetta setup`, which also installs each
backend's SYSTEM_REQUIREMENTS with apt-get. One CPU image holds every runnable backend (a backend with an
environment of its own gets it inside the image, as on a workstation); the GPU backends are grouped by the
CUDA base image their GPU build needs (an adapter's CUDA_IMAGE), one CUDA image per base. `rosetta images`
prints the `docker build` command of each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rosetta.registry import Registry

CPU_DOCKERFILE = "docker/cpu.Dockerfile"
CUDA_DOCKERFILE = "docker/cuda.Dockerfile"


@dataclass(frozen=True)
class Image:
    tag: str
    dockerfile: str
    backends: tuple[str, ...]
    base: str | None = None  # the CUDA base image; None for the CPU image (its Dockerfile names its own)

    def build_command(self) -> str:
        args = [f'--build-arg BACKENDS="{" ".join(self.backends)}"']
        if self.base:
            args.append(f"--build-arg BASE={self.base}")
        return f"docker build -f {self.dockerfile} {' '.join(args)} -t {self.tag} ."


def images(registry: Registry) -> list[Image]:
    runnable = registry.runnable()
    found = [Image("rosetta:cpu", CPU_DOCKERFILE, tuple(b.name for b in runnable))]
    bases: dict[str, list[str]] = {}
    for backend in runnable:
        if backend.supports_gpu:
            bases.setdefault(backend.cuda_image, []).append(backend.name)
    reference = registry.reference.name
    for base, names in bases.items():
        tag = "rosetta:cuda" + (_cuda_version(base) if len(bases) > 1 else "")
        found.append(Image(tag, CUDA_DOCKERFILE, tuple([reference] + names), base))
    return found


def _cuda_version(base: str) -> str:
    """"nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04" -> "11.2"."""
    match = re.search(r":(\d+\.\d+)", base)
    return match.group(1) if match else re.sub(r"[^a-z0-9.]+", "-", base.split(":")[-1])

