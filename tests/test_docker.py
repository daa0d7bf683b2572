"""No Docker engine runs on these machines, so the images are not built here. What can be checked is that
the Dockerfiles name no backend (a new backend is its folder and nothing else), that every build argument
`rosetta images` passes is one the Dockerfile declares, and that every runnable backend lands in the CPU
image and every GPU backend in exactly one CUDA image, on the base its adapter declares."""

import re

import pytest

from conftest import BACKENDS, REGISTRY, ROOT, RUNNABLE, rosetta
from rosetta.images import images

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_a_dockerfile_names_no_backend_and_copies_files_that_exist(dockerfile):
    text = dockerfile.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name in BACKENDS:
        assert not re.search(rf"\b{re.escape(name)}\b", code), f"{dockerfile.name} names backend {name}"
    assert 'ENTRYPOINT ["rosetta"]' in text
    assert re.search(r"rosetta setup (--gpu )?\$BACKENDS", text), f"{dockerfile.name} does not run `rosetta setup`"
    for source in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"


def test_every_backend_has_a_cpu_image_and_every_gpu_backend_one_cuda_image_on_its_declared_base():
    built = images(REGISTRY)
    cpu = [i for i in built if i.base is None]
    cuda = [i for i in built if i.base is not None]
    assert len(cpu) == 1 and set(cpu[0].backends) == {b.name for b in RUNNABLE}
    for backend in RUNNABLE:
        holding = [i for i in cuda if backend.name in i.backends]
        if backend.reference:
            assert len(holding) == len(cuda), "every CUDA image carries the reference, to judge against"
        elif backend.supports_gpu:
            assert [i.base for i in holding] == [backend.cuda_image]
        else:
            assert not holding


def test_every_build_argument_is_declared_by_its_dockerfile():
    for image in images(REGISTRY):
        declared = set(re.findall(r"^ARG (\w+)", (ROOT / image.dockerfile).read_text(), flags=re.M))
        passed = set(re.findall(r"--build-arg (\w+)=", image.build_command()))
        assert passed and passed <= declared, f"{image.dockerfile} lacks ARG {passed - declared}"


def test_rosetta_images_prints_one_build_command_per_image():
    result = rosetta("images")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [i.build_command() for i in images(REGISTRY)]
    assert all(line.startswith("docker build -f docker/") for line in lines)


def test_the_system_packages_a_backend_needs_are_declared_in_its_adapter_not_in_a_dockerfile():
    for dockerfile in DOCKERFILES:
        assert "libgomp" not in dockerfile.read_text() and "libquadmath" not in dockerfile.read_text()
    declared = {r["apt"] for b in RUNNABLE for r in b.system_requirements}
    assert {"libgomp1", "libquadmath0"} <= declared
