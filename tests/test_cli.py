"""The command line as a user meets it: a real run in a subprocess, its files, and bad input."""

import json
import subprocess
import sys

import pytest

from conftest import REGISTRY, rosetta

SMALL = ["--size", "3000", "--steps", "30"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    result = rosetta("run", "--task", "classifier", "--backend", "numpy,torch", *SMALL, "--out", str(out))
    assert result.returncode == 0, result.stderr
    (run_dir,) = out.iterdir()
    return result, run_dir


def test_run_writes_every_report_file(small_run):
    _, run_dir = small_run
    for name in ("results.jsonl", "results.csv", "report.md", "loss_curves.png", "command.txt"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_has_one_record_per_cell_with_the_promised_fields(small_run):
    _, run_dir = small_run
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    # 2 backends x 4 recipes x 2 devices
    assert len(records) == 16
    assert {(r["backend"], r["recipe"], r["device"]) for r in records} == {
        (b, r, d) for b in ("numpy", "torch") for r in ("manual-sgd", "sgd-momentum", "adam", "adadelta")
        for d in ("cpu", "gpu")}
    ran = [r for r in records if r["device"] == "cpu" and r["status"] != "not-installed"]
    assert ran, "numpy at least must have run"
    for r in ran:
        assert r["schema"] == 1 and r["status"] == "ok" and r["verdict"] == "ok"
        assert len(r["losses"]) == 30 and r["precision"] == "float32"
        for key in ("framework_version", "import_s", "first_call_s", "first_step_s", "step_median_s", "step_iqr_s",
                    "train_s", "samples_per_s", "peak_rss_bytes", "metrics", "machine"):
            assert key in r, key
        assert {"val_accuracy", "precision", "recall", "auc", "final_loss"} <= set(r["metrics"])


def test_gpu_cells_are_rows_that_say_why(small_run):
    _, run_dir = small_run
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    numpy_gpu = [r for r in records if r["backend"] == "numpy" and r["device"] == "gpu"]
    assert all(r["verdict"] == "skipped: numpy runs on the CPU only" for r in numpy_gpu)
    for r in records:
        if r["backend"] == "torch" and r["device"] == "gpu" and r["status"] == "skipped":
            assert r["verdict"] == "skipped: no GPU visible to PyTorch"


def test_terminal_table_and_markdown_compare_the_backends(small_run):
    result, run_dir = small_run
    assert "reference" in result.stdout and "manual-sgd" in result.stdout
    markdown = (run_dir / "report.md").read_text()
    assert "| backend" in markdown and "Per-class metrics" in markdown and "loss_curves.png" in markdown
    csv = (run_dir / "results.csv").read_text().splitlines()
    assert len(csv) == 17 and csv[0].startswith("task,backend,variant,device")


def test_report_rebuilds_from_results_jsonl_alone(small_run, tmp_path):
    _, run_dir = small_run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.jsonl").write_text((run_dir / "results.jsonl").read_text())
    result = rosetta("report", str(copy))
    assert result.returncode == 0, result.stderr
    assert (copy / "report.md").read_text().split("\n", 1)[1] == (run_dir / "report.md").read_text().split("\n", 1)[1]


def test_a_torn_last_record_is_skipped_and_the_rest_is_kept(small_run, tmp_path):
    _, run_dir = small_run
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n" + lines[0][: len(lines[0]) // 2])
    result = rosetta("report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "results.csv").read_text().splitlines()) == len(lines) + 1


@pytest.mark.parametrize("args, expected", [
    (["run", "--task", "sudoku"], f"unknown task 'sudoku'; choose from {', '.join(REGISTRY.tasks)}"),
    (["run", "--backend", "theano"], "unknown backend 'theano'; known backends and variants:"),
    (["run", "--backend", "cntk"], "backend 'cntk' cannot run: not runnable"),
    (["run", "--device", "tpu"], "unknown device 'tpu'; choose from cpu, gpu, all"),
    (["run", "--recipe", "rmsprop"], "unknown recipe 'rmsprop'; choose from"),
    (["run", "--precision", "float16"], "unknown precision 'float16'; choose from float32, float64"),
    (["run", "--size", "0"], "argument --size: 0 must be at least 1"),
    (["run", "--size", "big"], "argument --size: 'big' is not a whole number"),
    (["run", "--size", "50"], "size 50 is too small; the classifier needs at least 100 points"),
    (["run", "--size", "400", "--recipe", "adam"], "fewer than one batch of 500"),
    (["run", "--seed", "-3"], "argument --seed: -3 is outside"),
    (["run", "--steps", "1.5"], "argument --steps: '1.5' is not a whole number"),
    (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["report", "/nonexistent/run"], "is not a directory"),
    (["setup", "theano"], "unknown backend 'theano'"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, expected, tmp_path):
    result = rosetta(*args, "--out", str(tmp_path)) if args[0] == "run" else rosetta(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr
    assert not any(tmp_path.iterdir()), "a rejected run must not create a run folder"


def test_a_corrupt_results_file_is_a_clear_error(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"task": "classifier"\nnot json at all\n{}\n')
    result = rosetta("report", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "results.jsonl:1 is not a JSON record" in result.stderr


def test_a_backend_without_its_framework_is_a_row_with_the_install_command(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = rosetta("run", "--backend", "numpy,torch", "--recipe", "adam", "--device", "cpu", *SMALL,
                     "--out", str(tmp_path / "out"), env={"ROSETTA_PYTHON_TORCH": str(bare / "bin" / "python")})
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "out").iterdir()
    records = {r["backend"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}
    assert records["torch"]["status"] == "not-installed"
    assert records["torch"]["verdict"] == "not installed: run `rosetta setup torch`"
    assert records["numpy"]["verdict"] == "ok"


def test_backend_all_gives_every_registered_backend_a_row_and_cntk_says_why(tmp_path):
    from conftest import BACKENDS

    result = rosetta("run", "--backend", "all", "--recipe", "adam", "--device", "cpu", "--size", "1000",
                     "--steps", "5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    records = {r["backend"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}
    assert set(records) == set(BACKENDS)
    assert records["cntk"]["status"] == "unavailable"
    assert "not runnable" in records["cntk"]["verdict"] and "2.7" in records["cntk"]["verdict"]
    assert "cntk" in (run_dir / "report.md").read_text()
    for name, record in records.items():
        if name != "cntk":
            assert record["status"] in ("ok", "not-installed"), (name, record["verdict"])
