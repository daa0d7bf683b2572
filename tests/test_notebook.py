"""examples/quickstart.ipynb: committed without outputs, and executed end to end by a real Jupyter kernel (the
project's interpreter, through a kernel spec registered in a temporary folder); any error fails the test."""

import json
import shutil
import sys

import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
KERNEL = "rosetta-test"


def test_the_notebook_is_committed_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "strip the outputs before committing"


def test_the_quickstart_notebook_runs_end_to_end(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]' installs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' installs nbclient")
    pytest.importorskip("ipykernel", reason="pip install -e '.[test]' installs ipykernel")
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({  # this interpreter, whatever other kernels are installed
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rosetta (tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # rosetta as this checkout has it, installed or not
    work = tmp_path / "examples"
    work.mkdir()
    shutil.copy(NOTEBOOK, work)
    notebook = nbformat.read(work / NOTEBOOK.name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(work)}}).execute()  # raises on any error

    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    run_shown = [o for o in outputs[1] if o.output_type == "execute_result"][0]
    assert "<table" in run_shown.data["text/html"] and "2 cells: 2 ok" in run_shown.data["text/html"]
    progress = [o for o in outputs[1] if o.output_type == "display_data"][0]
    assert '<progress value="2" max="2"' in progress.data["text/html"]  # updated in place to the end
    table = [o for o in outputs[2] if o.output_type == "execute_result"][0].data["text/html"]
    assert "agrees" in table and "reference" in table
    assert any("image/png" in o.get("data", {}) for o in outputs[3])  # the curves were drawn
    assert "2 cells in both" in "".join(o.get("text", "") for o in outputs[4])
    assert len(list((work / "runs").glob("*/results.jsonl"))) == 2
