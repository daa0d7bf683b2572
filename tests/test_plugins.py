"""Third-party backends: packages installed (into a temporary folder, tests/plugins.py) that register
under the entry-point group `rosetta.backends` appear in `rosetta list`, `run`, `check` and the reports
like built-in ones; one that fails to import is a warning and an "unavailable" row, never a crash."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BACKENDS, ROOT, rosetta

SMALL = ["--recipe", "adam", "--device", "cpu", "--size", "1000", "--steps", "5"]


def plugin_env(site, **more):
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            "ROSETTA_PYTHON_TINY": sys.executable, **more}


def records_of(out: Path) -> dict:
    (run_dir,) = out.iterdir()
    return run_dir, {r["backend"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}


def test_list_shows_plugins_beside_built_in_backends_and_broken_ones_as_rows(plugin_site):
    result = rosetta("list", env=plugin_env(plugin_site))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    out = result.stdout
    assert "tiny         Tiny: installed; own environment tiny; tasks: classifier; plugin rosetta-tiny" in out
    assert "variant tiny (default): numpy by hand, from a plugin" in out
    assert ("crashing     crashing: plugin failed to load: ImportError: rosetta-crashing needs libfoo, "
            "which is not installed") in out
    assert "incomplete   incomplete: plugin failed to load: AttributeError: adapter rosetta_incomplete lacks " \
           "SUPPORTS_FLOAT64" in out
    assert "variant torch (default)" in out  # the built-in ones are all still there
    assert ("rosetta: warning: backend plugin 'crashing' (rosetta_crashing) failed to load: rosetta-crashing "
            "needs libfoo, which is not installed; it is an unavailable row") in result.stderr


def test_run_all_gives_plugins_rows_in_the_results_and_reports(plugin_site, tmp_path):
    # The heavy frameworks are made "not installed" (a bare interpreter) to keep this test fast.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    heavy = {f"ROSETTA_PYTHON_{b.name.upper()}": str(bare / "bin" / "python")
             for b in BACKENDS.values() if b.problem is None and b.name != "numpy"}
    result = rosetta("run", "--backend", "all", *SMALL, "--out", str(tmp_path / "out"),
                     env=plugin_env(plugin_site, **heavy))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    run_dir, records = records_of(tmp_path / "out")
    assert records["tiny"]["status"] == "ok" and records["tiny"]["verdict"] == "ok"
    assert records["tiny"]["framework"] == "Tiny" and records["tiny"]["environment"] == "tiny"
    assert records["crashing"]["status"] == "unavailable"
    assert "ImportError: rosetta-crashing needs libfoo" in records["crashing"]["verdict"]
    assert records["incomplete"]["status"] == "unavailable"
    assert records["broken"]["status"] == "failed"  # a plugin's failing cell is a row like any other
    assert records["numpy"]["verdict"] == "ok"
    report = (run_dir / "report.md").read_text()
    assert "tiny" in report and "crashing" in report and "libfoo" in report
    tiny_rows = [line for line in report.splitlines() if line.startswith("| tiny")]
    assert any("| agrees " in line for line in tiny_rows), tiny_rows  # the comparison table's row
    assert "tiny" in (run_dir / "results.csv").read_text()


def test_a_plugin_that_cannot_load_named_explicitly_is_a_clear_error(plugin_site, tmp_path):
    result = rosetta("run", "--backend", "crashing", *SMALL, "--out", str(tmp_path), env=plugin_env(plugin_site))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    # the broken plugins' one-line warnings (two backends, one task), then the one-line error
    assert [line.split(":")[1].strip() for line in lines] == ["warning", "warning", "warning", "error"], lines
    assert "backend 'crashing' cannot run: plugin failed to load: ImportError" in lines[-1]


def test_a_plugin_in_an_environment_of_its_own_runs_where_only_the_engine_sees_it(plugin_site, tmp_path):
    # The engine finds the plugin on its own sys.path; the worker's interpreter (its "own environment")
    # does not have it installed, so the worker must load the adapter package from its folder.
    code = (f"import sys; sys.path.insert(0, {str(plugin_site)!r}); from rosetta.cli import main; "
            f"sys.exit(main(['run', '--backend', 'numpy,tiny', '--recipe', 'manual-sgd', '--device', 'cpu', "
            f"'--size', '1000', '--steps', '5', '--precision', 'float64', '--out', {str(tmp_path / 'out')!r}]))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ROSETTA_PYTHON_TINY"] = sys.executable
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    _, records = records_of(tmp_path / "out")
    assert records["tiny"]["status"] == "ok", records["tiny"].get("error") or records["tiny"].get("verdict")
    assert records["tiny"]["losses"] == pytest.approx(records["numpy"]["losses"], rel=1e-12)


def test_a_task_shipped_as_a_plugin_runs_reports_and_checks_like_a_built_in_one(plugin_site, tmp_path):
    """A new task is a package of its own: a spec, its report section, and backend modules beside it; the
    entry point `rosetta.tasks` makes it a task of `list`, `run`, `report` and `check`, with no edit to rosetta/.
    A task plugin that breaks the contract is one warning, and the rest works."""
    env = plugin_env(plugin_site)
    listed = rosetta("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "quadratic    least squares by gradient descent, a task from a plugin (plugin rosetta-quadratic)" \
        in listed.stdout
    assert "task plugin 'badtask' (rosetta_badtask.spec) failed to load" in listed.stderr
    assert "lacks RECIPES, DEFAULT_SIZE, make_problem, validate, check (see rosetta/task.py)" in listed.stderr

    out = tmp_path / "out"
    ran = rosetta("run", "--task", "quadratic", "--backend", "numpy,torch", "--device", "cpu", "--precision",
                  "float64", "--out", str(out), "--name", "q", env=env)
    assert ran.returncode == 0, ran.stderr
    records = [json.loads(line) for line in (out / "q" / "results.jsonl").read_text().splitlines()]
    assert [(r["backend"], r["status"]) for r in records] == [("numpy", "ok"), ("torch", "ok")]
    assert len(records[1]["losses"]) == 30 and records[1]["losses"][0] > records[1]["losses"][-1]
    assert "agrees" in ran.stdout

    (out / "q" / "report.md").unlink()
    rebuilt = rosetta("report", str(out / "q"), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    markdown = (out / "q" / "report.md").read_text()
    assert "### Quadratic: the fitted weights" in markdown and "torch: w = [" in markdown
    assert "implementations/torch.py" in (out / "q" / "report.html").read_text()  # its code, side by side

    checked = rosetta("check", "--backend", "torch", "--task", "quadratic", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "PASS  agrees with numpy: max relative deviation" in checked.stdout
