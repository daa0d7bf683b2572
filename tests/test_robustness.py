"""rosetta doctor, and the CLI under random argument lists: always a clean exit, never a traceback."""

import os
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RUNNABLE, rosetta
from rosetta import cli, envs


def test_doctor_reports_every_backend_its_version_devices_and_environment():
    result = rosetta("doctor")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "NVIDIA driver:" in out and "cntk (CNTK)" in out
    for backend in RUNNABLE:
        section = out.split(f"\n{backend.name} ({backend.display_name})\n", 1)[1].split("\n\n", 1)[0]
        assert f"interpreter: {envs.interpreter(backend)}" in section
        if not envs.is_installed(backend):
            assert f"fix: rosetta setup {backend.name}" in section
            continue
        assert "Python 3." in section and "numpy " in section
        if backend.supports_gpu:
            assert "gpu:" in section


def test_doctor_says_how_to_fix_a_missing_framework(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = rosetta("doctor", env={"ROSETTA_PYTHON_TORCH": str(bare / "bin" / "python")})
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("\ntorch (PyTorch)\n", 1)[1].split("\n\n", 1)[0]
    assert "not installed; fix: rosetta setup torch" in section


# Words a user might type, right or wrong; only numpy may actually run, on tiny sizes, so that the
# examples that happen to be valid stay quick.
WORDS = st.sampled_from([
    "run", "list", "report", "setup", "--task", "classifier", "all", "sudoku", "--backend", "numpy", "theano",
    "numpy,cntk", ",", "cntk", "--device", "cpu", "gpu", "tpu", "--recipe", "adam", "manual-sgd", "rmsprop",
    "--precision", "float64", "float16", "--size", "--steps", "--seed", "--lr", "--threads", "--timeout",
    "100", "2000", "0", "-1", "1e3", "nan", "inf", "3", "--all-variants", "--resume", "--gpu", "--force",
    "--help", "-h", "--", "/nonexistent", "é", "",
])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=8))
def test_random_argument_lists_never_end_in_a_traceback(words, tmp_path, capsys):
    argv = list(words)
    if argv[:1] == ["run"]:
        argv += ["--backend", "numpy", "--steps", "3", "--size", "2000", "--out", str(tmp_path)]
    if argv[:1] == ["setup"]:  # never install for real: only numpy (nothing to install), stamped in tmp
        names = {b.name for b in RUNNABLE} | {"all"}
        argv = ["setup"] + [w for w in argv[1:] if w not in names] + ["numpy"]
    environment = dict(os.environ)
    os.environ["ROSETTA_ENVS"] = str(tmp_path / "envs")
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # --help prints and exits 0
        code = exit_.code
    finally:
        os.environ.clear()
        os.environ.update(environment)
    captured = capsys.readouterr()
    assert code in (0, 2), (argv, code, captured.err)
    assert "Traceback" not in captured.err
    if code == 2:
        assert captured.err.startswith("rosetta: error: ") and captured.err.count("\n") == 1, captured.err
