"""No Docker engine runs on these machines, so the images are not built here. What can be checked is
that they install from the backends' own requirements files and that every backend has an image."""

import re

import pytest

from conftest import ROOT, RUNNABLE

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
SETUP = re.compile(r"rosetta setup((?: --gpu)?)((?: [a-z0-9_-]+)+)")


def setups(dockerfile):
    return [(bool(gpu), names.split()) for gpu, names in SETUP.findall(dockerfile.read_text())]


def test_there_are_cpu_and_cuda_images():
    names = {d.name for d in DOCKERFILES}
    assert {"cpu.Dockerfile", "cuda.Dockerfile", "mxnet-cpu.Dockerfile", "mxnet-cuda.Dockerfile"} <= names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_each_image_installs_through_rosetta_setup_from_files_that_exist(dockerfile):
    text = dockerfile.read_text()
    assert 'ENTRYPOINT ["rosetta"]' in text
    for source in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
    found = setups(dockerfile)
    assert found, f"{dockerfile.name} does not run `rosetta setup`"
    known = {b.name: b for b in RUNNABLE}
    for gpu, names in found:
        for name in names:
            assert name in known, f"{dockerfile.name} sets up unknown backend {name}"
            assert known[name].requirements(gpu) is not None, f"{name} has no requirements file"
        assert ("--gpu" in dockerfile.name or "cuda" in dockerfile.name) == gpu


def test_every_backend_has_a_cpu_image_and_every_gpu_backend_a_cuda_image():
    cpu, gpu = set(), set()
    for dockerfile in DOCKERFILES:
        for on_gpu, names in setups(dockerfile):
            (gpu if on_gpu else cpu).update(names)
    runnable = {b.name for b in RUNNABLE}
    assert runnable <= cpu, f"no CPU image for {runnable - cpu}"
    gpu_backends = {b.name for b in RUNNABLE if b.supports_gpu}
    assert gpu_backends <= gpu, f"no CUDA image for {gpu_backends - gpu}"
