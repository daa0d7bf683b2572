"""One run of every task through the real CLI (numpy and PyTorch, tiny sizes, a small CIFAR-format folder):
each task's own tables and plots reach report.md and report.html, and the page renders in a real browser."""

import json

import pytest

from browser import find_chromium, load
from cifar_fixture import build_folder
from conftest import REGISTRY, rosetta

TASKS = ("tensor-ops", "autograd", "perceptron", "cnn")
SECTIONS = {  # one title of each task's own sections (tasks/<task>_report.py)
    "tensor-ops": "The seed's table in every framework",
    "autograd": "Autograd: repeated backward, accumulate or not",
    "perceptron": "Does the parameter norm converge to zero?",
    "cnn": "CNN: accuracy per class",
}
PROBE = """({
  errorsShown: [...document.querySelectorAll('p.bad')].map(p => p.textContent),
  h3: [...document.querySelectorAll('h3')].map(h => h.textContent),
  images: [...document.images].map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 100})),
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
})"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    data = build_folder(root)
    result = rosetta("run", "--task", ",".join(TASKS), "--backend", "numpy,torch", "--device", "cpu",
                     "--recipe", "table,seed-checks,course,tutorial", "--size", "64", "--steps", "20",
                     "--threads", "1", "--data-dir", str(data), "--out", str(root), "--name", "every-task")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = root / "every-task"
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return run_dir, records


def test_every_task_has_its_own_report_module():
    for task in TASKS:
        module = REGISTRY.task(task).report_module()
        assert module is not None and module.__name__ == f"tasks.{REGISTRY.task(task).file_stem}_report", task


def test_every_task_ran_on_both_backends(run):
    _, records = run
    ran = {(r["task"], r["backend"]): r for r in records}
    assert len(ran) == len(records), "one record per task and backend: nothing else was asked for"
    assert set(ran) == {(t, b) for t in TASKS for b in ("numpy", "torch")}
    assert all(r["status"] == "ok" and r["verdict"] == "ok" for r in ran.values()), \
        [(k, r.get("verdict")) for k, r in ran.items() if r.get("verdict") != "ok"]
    assert ran[("cnn", "torch")]["metrics"]["layout"] == "NCHW"
    assert len(ran[("perceptron", "torch")]["losses"]) == 20


def test_each_task_has_its_own_sections_in_markdown(run):
    run_dir, _ = run
    text = (run_dir / "report.md").read_text()
    for task, title in SECTIONS.items():
        assert f"## {task}" in text and f"### {title}" in text, task
    assert "could not be drawn" not in text


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium: apt-get install chromium")
def test_every_task_renders_in_headless_chromium(run):
    run_dir, _ = run
    page = load(run_dir / "report.html", probe=PROBE)
    assert page.errors == []
    seen = page.probe
    assert seen["errorsShown"] == []
    assert all(title in seen["h3"] for title in SECTIONS.values()), seen["h3"]
    assert all(i["ok"] for i in seen["images"]), [i for i in seen["images"] if not i["ok"]]
    assert len(seen["images"]) >= 10
    assert seen["overflow"] <= 0, "wide plots and tables stay inside the page"
