"""The Python API (rosetta/api.py): docs/python-api.md's code, run block by block, and what it promises:
the CLI's options and messages, one row per cell, the curves, the notebook's progress bar."""

import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REGISTRY, ROOT, rosetta as rosetta_cli

import rosetta
from rosetta import judge
from rosetta.api import run_arguments
from rosetta.cli import build_parser, run_options
from rosetta.plan import RunOptions

DOC = ROOT / "docs" / "python-api.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    """docs/python-api.md's Python blocks, executed in order in one namespace, in a fresh folder."""
    folder = tmp_path_factory.mktemp("doc")
    namespace: dict = {}
    previous = os.getcwd()
    os.chdir(folder)
    try:
        import matplotlib
        matplotlib.use("Agg")
        for number, block in enumerate(BLOCK.findall(DOC.read_text()), 1):
            exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
    finally:
        os.chdir(previous)
    return SimpleNamespace(folder=folder, **{k: v for k, v in namespace.items() if not k.startswith("__")})


def test_the_documented_examples_run(doc):
    assert (doc.folder / "runs" / "first" / "results.jsonl").exists()
    assert (doc.folder / "runs" / "second" / "results.jsonl").exists()
    assert (doc.folder / "board" / "classifier").is_dir()


def test_a_run_is_the_command_s_run(doc):
    """The API's run folder is one the CLI made: its command line, reread by the CLI, gives the same options."""
    command = (doc.folder / "runs" / "first" / "command.txt").read_text().split()
    assert command[:2] == ["rosetta", "run"]
    args = build_parser(REGISTRY).parse_args(command[1:])
    assert run_options(args, REGISTRY) == doc.run.options
    assert doc.run.options == RunOptions(task="classifier", backend="numpy,torch", recipe="manual-sgd",
                                         device="cpu", size=2000, steps=20)
    result = rosetta_cli("compare", str(doc.folder / "runs" / "first"), str(doc.folder / "runs" / "second"))
    assert result.returncode == 0, result.stderr
    assert doc.changes.attrs["summary"][0] in result.stdout


def test_to_pandas_is_one_row_per_cell_in_the_report_s_order(doc):
    table = doc.run.to_pandas()
    assert list(table["cell"]) == [r["cell"] for r in doc.run.records]
    assert list(table["backend"]) == ["numpy", "torch"] and (table["status"] == "ok").all()
    assert table["val_accuracy"].between(0, 1).all() and table["step_median_ms"].gt(0).all()


def test_curves_hold_every_loss_and_its_deviation_from_the_reference(doc):
    curves = doc.curves
    reference, torch_record = doc.run.records
    for record in (reference, torch_record):
        mine = curves[curves["cell"] == record["cell"]]
        assert list(mine["step"]) == list(range(20))
        np.testing.assert_array_equal(mine["loss"], record["losses"])
    torch_curve = curves[curves["cell"] == torch_record["cell"]]
    np.testing.assert_array_equal(torch_curve["deviation"],
                                  judge.relative_deviation(torch_record["losses"], reference["losses"]))


def test_a_run_shows_itself_as_html(doc):
    page = doc.run._repr_html_()
    assert "<table" in page and "2 cells: 2 ok" in page and "agrees" in page and "vs numpy" in page
    assert "runs/first" in repr(doc.run)


@pytest.mark.parametrize("options, cli", [
    ({"size": 0}, ["--size", "0"]),
    ({"task": "nope"}, ["--task", "nope"]),
    ({"device": "tpu"}, ["--device", "tpu"]),
    ({"quick": "yes"}, None),
    ({"sizes": 10}, None),
])
def test_bad_input_is_the_command_s_one_line_error(options, cli, tmp_path):
    with pytest.raises(rosetta.UsageError) as raised:
        rosetta.run(**{"backend": "numpy", "out": tmp_path, **options})
    message = str(raised.value)
    assert "\n" not in message and not any(tmp_path.iterdir())  # nothing was made
    if cli is not None:
        result = rosetta_cli("run", "--backend", "numpy", "--out", str(tmp_path), *cli)
        assert result.returncode == 2 and result.stderr == f"rosetta: error: {message}\n"


def test_load_says_what_a_run_folder_is(tmp_path):
    with pytest.raises(rosetta.UsageError, match="is not a directory"):
        rosetta.load(tmp_path / "missing")
    with pytest.raises(rosetta.UsageError, match="does not exist"):
        rosetta.load(tmp_path)


def test_keywords_become_the_command_s_arguments():
    assert run_arguments({"backend": ["numpy", "torch"], "quick": True, "all_variants": False, "lr": None,
                          "epochs": 2}, REGISTRY) == ["--backend=numpy,torch", "--quick", "--epochs=2"]


def test_importing_rosetta_stays_light():
    code = "import sys, rosetta; assert 'pandas' not in sys.modules; rosetta.run; assert 'pandas' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_the_notebook_progress_bar_updates_one_display(monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display
    from rosetta.progress import NotebookProgress

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id: shown.append(obj.data) or Handle())
    job = SimpleNamespace(cell=SimpleNamespace(id="classifier/torch/adam/float32/cpu"))
    bar = NotebookProgress()
    bar.begin(2)
    bar.started(job)
    bar.finished({"verdict": "ok", "status": "ok", "load": {"busy": True}}, job)
    bar.end()
    assert 'value="0" max="2"' in shown[0] and "running classifier/torch/adam/float32/cpu" in shown[1]
    assert 'value="1" max="2"' in shown[2] and "classifier/torch/adam/float32/cpu: ok [busy machine]" in shown[2]
    assert "stopped" in shown[-1]  # one of two cells: not "done"
