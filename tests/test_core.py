import subprocess
import sys

from conftest import ROOT, rosetta

FRAMEWORKS = ("torch", "tensorflow", "jax", "mxnet", "keras", "paddle", "optax")


def test_importing_the_engine_imports_no_framework():
    code = (
        "import sys, rosetta, rosetta.cli, rosetta.registry, rosetta.runner, rosetta.report, rosetta.envs, "
        "rosetta.worker, rosetta.results, rosetta.timing, rosetta.report_html, rosetta.compare, tasks.classifier\n"
        "rosetta.registry.discover()\n"
        f"loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\n"
        "print(','.join(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_list_names_tasks_backends_variants_and_install_state():
    result = rosetta("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "classifier" in out and "manual-sgd" in out and "adadelta" in out
    assert "numpy: installed" in out
    assert "variant torch (default)" in out
    assert "cntk" in out and "not runnable" in out
    for line in out.splitlines():
        if "not installed" in line:
            assert "rosetta setup" in line
