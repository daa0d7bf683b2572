"""`rosetta check`: its diagnosis of deliberately broken backends (tests/plugins.py, pip-installed into a
temporary folder), a conforming plugin and built-in backend, and bad input."""

import os
import re
import sys

import pytest

from conftest import REGISTRY, rosetta
from plugins import BROKEN_TASK
from rosetta import check


def plugin_env(site):
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            "ROSETTA_PYTHON_TINY": sys.executable}


@pytest.fixture(scope="module")
def broken(plugin_site):
    result = rosetta("check", "--backend", "broken", "--steps", "5", env=plugin_env(plugin_site))
    return result, result.stdout.splitlines()


def line_with(lines, *parts):
    found = [line for line in lines if all(part in line for part in parts)]
    assert found, f"no line with {parts} in:\n" + "\n".join(lines)
    return found[0]


def test_a_broken_backend_fails_the_check_with_exit_code_1(broken):
    result, lines = broken
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines[0].startswith("rosetta check: backend broken (Broken), plugin rosetta-broken")


def test_the_adapter_s_mistakes_are_each_named_with_their_fix(broken):
    _, lines = broken
    torch = line_with(lines, "FAIL", "adapter imports no framework", "importing rosetta_broken loaded torch")
    assert "move `import torch` from the top of" in lines[lines.index(torch) + 1]
    assert "unprefixed do not start with 'broken'" in line_with(lines, "FAIL", "variants named")
    line_with(lines, "FAIL", "requirements.txt", "rosetta_broken/requirements.txt does not exist")
    line_with(lines, "FAIL", "numpy round trip (float32, int64, float64)", "to_numpy returned a list")
    line_with(lines, "PASS", "constants")
    line_with(lines, "FAIL", "task module imports no rosetta", "line 5: imports rosetta")


def test_each_cell_says_whether_it_runs_returns_the_right_shapes_and_agrees(broken):
    _, lines = broken
    error_line = next(i for i, line in enumerate(BROKEN_TASK.splitlines(), 1) if "LINE-OF-THE-ERROR" in line)
    raises = line_with(lines, "FAIL", "runs: RuntimeError: deliberately broken",
                       f"rosetta_broken/classifier.py:{error_line} in train")
    assert "| RuntimeError: deliberately broken" in "\n".join(lines[lines.index(raises):])  # the traceback
    line_with(lines, "FAIL", "returns what the task asks", "parameter W1 of shape (12, 2), expected (2, 12)")
    drift = line_with(lines, "FAIL", "agrees with numpy", "from step 1")
    assert "the gradient or the update differs" in lines[lines.index(drift) + 1]
    # the variant that only has a bad name trains right: it runs and agrees with numpy to rounding
    section = lines[lines.index(next(l for l in lines if l.startswith("classifier/unprefixed/adam"))):][:4]
    assert any("PASS  agrees with numpy: max relative deviation" in line for line in section), section


def test_the_output_ends_with_what_to_fix_next_in_order(broken):
    _, lines = broken
    start = lines.index("fix next, in this order:")
    items = [line for line in lines[start + 1:] if line.startswith("  ")]
    assert items[0].startswith("  1. [adapter] variants named with the backend's prefix: rename them")
    assert any("move `import torch`" in item for item in items)
    # one item per distinct fix: the 4 recipes of a failing variant are one item naming the others
    raising = [item for item in items if "deliberately" in item or "raises" in item]
    assert len(raising) == 1 and "also classifier/broken/sgd-momentum" in raising[0]
    counts = lines[start - 1]
    failed = re.search(r"(\d+) failed", counts)  # then "N skipped": the tasks the plugin does not implement
    assert failed and int(failed.group(1)) > len(items) - 1


def test_an_adapter_without_a_constant_and_a_function_is_told_which(plugin_site):
    result = rosetta("check", "--backend", "incomplete", "--steps", "3", env=plugin_env(plugin_site))
    assert result.returncode == 1
    constants = line_with(result.stdout.splitlines(), "FAIL", "constants", "lacks SUPPORTS_FLOAT64")
    lines = result.stdout.splitlines()
    assert "SUPPORTS_FLOAT64 = True" in lines[lines.index(constants) + 1]
    line_with(lines, "FAIL", "functions", "missing to_numpy")
    line_with(lines, "SKIP", "runs", "the adapter must pass first")


def test_an_adapter_that_cannot_be_imported_is_told_where(plugin_site):
    result = rosetta("check", "--backend", "crashing", env=plugin_env(plugin_site))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line_with(result.stdout.splitlines(), "FAIL", "loads", "ImportError: rosetta-crashing needs libfoo",
              "rosetta_crashing/__init__.py:3")


def test_a_conforming_plugin_with_an_environment_of_its_own_passes(plugin_site):
    result = rosetta("check", "--backend", "tiny", "--steps", "5", env=plugin_env(plugin_site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert result.stdout.splitlines()[-1] == "tiny conforms: every check passed"


def test_the_check_is_a_plain_function_a_notebook_can_call():
    report = check.check_backend("numpy", ["classifier"], steps=3)
    assert report.exit_code == 0 and not report.failures()
    assert any(f.check == "numpy round trip" and f.status == "pass" for f in report.findings)
    assert report.lines()[-1] == "numpy conforms: every check passed"


@pytest.mark.parametrize("args, expected", [
    (["--backend", "theano"], "unknown backend 'theano'; known backends: numpy, "),
    (["--backend", "torch", "--task", "sudoku"], f"unknown task 'sudoku'; choose from {', '.join(REGISTRY.tasks)}"),
    ([], "the following arguments are required: --backend"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, expected):
    result = rosetta("check", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr
