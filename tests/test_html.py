"""report.html: written by every run, self-contained, rebuilt from results.jsonl alone, and rendered in a real
browser (headless Chromium) without a console error."""

import base64
import html
import json
import re
import struct
from html.parser import HTMLParser

import numpy as np
import pytest

from browser import GEOMETRY, find_chromium, load
from conftest import ROOT, rosetta
from tasks import classifier

SMALL = ["--backend", "numpy,torch", "--device", "cpu", "--recipe", "manual-sgd,adam", "--size", "3000",
         "--steps", "40"]
PLOTS = ["Loss curves", "Deviation from numpy", "Time, throughput and memory", "Validation accuracy",
         "Data and decision regions"]
TABLE_HEADERS = ["backend", "variant", "device", "recipe", "precision", "verdict", "val acc", "val loss",
                 "vs numpy", "rel dev", "1st call s", "step ms", "IQR ms", "samples/s", "peak RSS MB"]
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no Chromium: apt-get install chromium")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    result = rosetta("run", *SMALL, "--out", str(out), "--name", "html-test")
    assert result.returncode == 0, result.stderr
    run_dir = out / "html-test"
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return result, run_dir, records, Page((run_dir / "report.html").read_text())


class Page(HTMLParser):
    """The parts of report.html the tests look at, from the standard library's parser."""

    def __init__(self, text):
        super().__init__()
        self.text, self.tags, self.images, self.tables, self.panels = text, [], [], [], []
        self._stack, self._cell, self._skip = [], None, 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        classes = (attrs.get("class") or "").split()
        if tag == "img":
            self.images.append(attrs)
            return
        if tag == "table":
            self.tables.append({"class": attrs.get("class"), "head": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = [tag, ""]
        elif tag == "div" and "panel" in classes:
            self.panels.append({"classes": classes, "header": "", "code": ""})
        if tag == "span" and "linenos" in classes:
            self._skip += 1
        if tag not in ("meta", "input", "br", "img"):
            self._stack.append((tag, classes))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell and self.tables:
            kind, text = self._cell
            table = self.tables[-1]
            (table["head"] if kind == "th" else table["rows"][-1]).append(text.strip())
            self._cell = None
        while self._stack:
            open_tag, classes = self._stack.pop()
            if open_tag == "span" and "linenos" in classes:
                self._skip -= 1
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        inside = [c for t, cs in self._stack for c in cs]
        if self.panels and "panel" in inside:
            if "code" in inside and not self._skip:
                self.panels[-1]["code"] += data
            elif "code" not in inside:
                self.panels[-1]["header"] += data


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_every_run_writes_report_html_beside_the_other_reports(run):
    result, run_dir, _, _ = run
    for name in ("results.jsonl", "results.csv", "report.md", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    assert "report.html" in result.stdout


def test_report_html_is_one_self_contained_file(run):
    _, _, _, page = run
    assert page.text.startswith("<!DOCTYPE html>")
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object", "embed")]
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:image/png;base64,", "#")), (tag, name, value)
    assert "@import" not in page.text and "url(" not in page.text
    assert [img["alt"] for img in page.images] == PLOTS
    for img in page.images:
        width, height = png_size(base64.b64decode(img["src"].split(",", 1)[1], validate=True))
        assert width >= 600 and height >= 250, (img["alt"], width, height)


def test_results_table_has_a_row_per_cell_that_ran_and_the_promised_columns(run):
    _, _, records, page = run
    (results,) = [t for t in page.tables if t["class"] == "results"]
    assert results["head"][:6] == TABLE_HEADERS[:6]
    assert set(TABLE_HEADERS) <= set(results["head"])
    rows = [r for r in results["rows"] if r]
    ran = [r for r in records if r["status"] not in ("skipped", "unavailable", "not-installed")]
    assert len(rows) == len(ran) >= 2
    column = {h: i for i, h in enumerate(results["head"])}
    numpy_row = next(r for r in rows if r[column["variant"]] == "numpy" and r[column["recipe"]] == "adam")
    numpy_record = next(r for r in records if r["variant"] == "numpy" and r["recipe"] == "adam")
    assert numpy_row[column["vs numpy"]] == "reference" and numpy_row[column["verdict"]] == "ok"
    assert numpy_row[column["val acc"]] == f"{numpy_record['metrics']['val_accuracy']:.2%}"
    assert numpy_row[column["step ms"]] == f"{numpy_record['step_median_s'] * 1e3:.3f}"
    per_class = [t for t in page.tables if "AUC 0" in t["head"]]
    assert per_class and len([r for r in per_class[0]["rows"] if r]) == len(ran)


def test_header_gives_machine_cpu_gpu_threads_and_every_framework_version(run):
    _, _, records, page = run
    machine = records[0]["machine"]
    threads = {r["threads"] for r in records if r["status"] == "ok"}
    assert threads == {1}, threads  # the run's default: one thread per framework
    for text in (machine["cpu"], machine["os"], f"{machine['cores']} cores", "GPU", "threads", "threads in effect", "torch intra-op 1"):
        assert text in page.text, text
    for r in records:
        if r.get("framework_version"):
            assert f"<td>{r['framework']}</td><td>{r['framework_version']}</td>" in page.text


def test_code_panels_show_each_backend_file_as_it_ran(run):
    _, _, records, page = run
    ran = sorted({r["backend"] for r in records if r["status"] == "ok"}, key=lambda b: b != "numpy")
    assert [p["classes"][1] for p in page.panels] == [f"panel-classifier-{b}" for b in ran]
    for backend, panel in zip(ran, page.panels):
        source = (ROOT / "backends" / backend / "classifier.py").read_text()
        assert panel["code"].rstrip("\n") == source.rstrip("\n"), backend  # verbatim, line numbers aside
        assert "the code that ran" in panel["header"] and f"backends/{backend}/classifier.py" in panel["header"]
    assert page.text.count('<span class="kn">import</span>') >= len(ran)  # highlighted


def test_decision_regions_are_drawn_from_final_parameters_that_reproduce_the_accuracy(run):
    _, _, records, _ = run
    problem = classifier.make_problem(size=3000, seed=0, steps=1)
    for r in (r for r in records if r["status"] == "ok"):
        params = r["report_data"]["params"]
        assert {k: np.shape(v) for k, v in params.items()} == {"W1": (2, 12), "b1": (12,), "W2": (12, 3), "b2": (3,)}
        accuracy = (classifier.predict(params, problem.x_val).argmax(axis=1) == problem.y_val).mean()
        # the record's accuracy came from the framework's own float32 forward pass: ties may flip one point
        assert abs(accuracy - r["metrics"]["val_accuracy"]) <= 1 / len(problem.y_val), r["cell"]
    assert len(json.dumps(records[0]["report_data"])) < 4000, "records stay small"


def test_report_html_rebuilds_identically_from_results_jsonl_alone(run, tmp_path):
    _, run_dir, _, page = run
    (tmp_path / "results.jsonl").write_text((run_dir / "results.jsonl").read_text())
    result = rosetta("report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report.html").read_text() == page.text


def test_code_that_changed_since_the_run_is_flagged_and_old_records_still_render(run, tmp_path):
    _, run_dir, records, _ = run
    changed, old = tmp_path / "changed", tmp_path / "old"
    for folder in (changed, old):
        folder.mkdir()
    (changed / "results.jsonl").write_text("".join(json.dumps({**r, "source_sha256": "0" * 64}) + "\n"
                                                   for r in records))
    # records written before report_data and source digests existed
    (old / "results.jsonl").write_text("".join(
        json.dumps({k: v for k, v in r.items() if k not in ("report_data", "source_sha256")}) + "\n" for r in records))
    for folder in (changed, old):
        assert rosetta("report", str(folder)).returncode == 0
    assert "changed since this run" in (changed / "report.html").read_text()
    page = Page((old / "report.html").read_text())
    assert "no digest in the records" in page.text
    assert [img["alt"] for img in page.images] == PLOTS[:-1]


def test_a_failed_cell_shows_its_error(run, tmp_path):
    _, _, records, _ = run
    broken = [dict(r) for r in records]
    victim = next(r for r in broken if r["backend"] == "numpy")
    victim.update(status="failed", verdict="failed: RuntimeError: out of luck",
                  stderr_tail="Traceback (most recent call last):\nRuntimeError: out of luck <&>")
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in broken))
    assert rosetta("report", str(tmp_path)).returncode == 0
    text = (tmp_path / "report.html").read_text()
    assert "failed: RuntimeError: out of luck" in text and "out of luck &lt;&amp;&gt;" in text


PROBE = """(() => {
  const images = [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0,
                                                  width: i.getBoundingClientRect().width}));
  const tables = [...document.querySelectorAll('table')].map(t => ({cls: t.className,
      rows: t.tBodies[0] ? t.tBodies[0].rows.length : 0}));
  const panels = [...document.querySelectorAll('.panel')].map(p => ({title: p.querySelector('header b').textContent,
      lines: p.querySelector('pre').textContent.trim().split('\\n').length,
      shown: getComputedStyle(p).display !== 'none' && p.getBoundingClientRect().height > 100}));
  const box = document.querySelector('.toggles input');
  box.click();
  const hidden = getComputedStyle(document.querySelector('.panel')).display;
  box.click();
  const external = [...document.querySelectorAll('[src],[href]')]
      .map(e => e.getAttribute('src') || e.getAttribute('href'))
      .filter(u => !u.startsWith('data:') && !u.startsWith('#'));
  return {images, tables, panels, hidden, external, title: document.title,
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          height: document.documentElement.scrollHeight};
})()"""


@needs_chromium
def test_report_renders_in_headless_chromium_without_console_errors(run, tmp_path):
    _, run_dir, records, _ = run
    page = load(run_dir / "report.html", probe=PROBE, screenshot=True)
    assert page.errors == []
    seen = page.probe
    assert seen["title"] == "Rosetta run html-test"
    assert [i["alt"] for i in seen["images"]] == PLOTS
    assert all(i["loaded"] and i["width"] > 300 for i in seen["images"]), seen["images"]
    assert any(t["cls"] == "results" and t["rows"] == sum(r["status"] == "ok" for r in records) for t in seen["tables"])
    assert len(seen["tables"]) >= 3
    ran = {r["framework"] for r in records if r["status"] == "ok"}
    assert {p["title"] for p in seen["panels"]} == ran and all(p["shown"] and p["lines"] > 50 for p in seen["panels"])
    assert seen["hidden"] == "none", "unticking a backend hides its code panel"
    assert seen["external"] == []
    assert seen["overflow"] <= 0, "the page itself never scrolls sideways (wide content scrolls in its box)"
    width, height = png_size(page.screenshot)
    assert width == 1400 and height == seen["height"] > 3000
    (tmp_path / "report.png").write_bytes(page.screenshot)


WIDTHS = (390, 1366, 1920, 2560)  # a phone, and the common laptop, desktop and large screens
SCREEN = 900  # the viewport's height: no blank band may be taller than a screen
LAYOUT = f"""(() => {{
  const geometry = {GEOMETRY};
  const panels = [...document.querySelectorAll('.panel')].map(p => {{ const r = p.getBoundingClientRect();
      return {{left: r.left, right: r.right, top: r.top + window.scrollY}}; }});
  const results = document.querySelector('table.results').getBoundingClientRect();
  const box = document.querySelector('table.results').closest('.scroll').getBoundingClientRect();
  const one = document.querySelector('.one-per-row');
  one.click();
  const tops = [...document.querySelectorAll('.panel')].map(p => p.getBoundingClientRect().top);
  one.click();
  const wrap = document.querySelector('.wrap-lines');
  wrap.click();
  const wrapped = [...document.querySelectorAll('.panel .code')].every(c => c.scrollWidth <= c.clientWidth + 1);
  wrap.click();
  return {{geometry, panels, table: results.width, box: box.width, wrapped,
          onePerRow: tops.every((t, i) => i === 0 || t > tops[i - 1])}};
}})()"""


@needs_chromium
def test_report_fits_a_phone_a_laptop_and_large_screens(run, tmp_path):
    """At each width nothing reaches past the viewport except inside a box that scrolls (the results table),
    no blank band is taller than a screen, and the code panels wrap: side by side on a wide screen, one per row
    on a phone, one per row when asked. Screenshots are left in tmp_path for a person to look at."""
    _, run_dir, _, _ = run
    page = load(run_dir / "report.html", probe=LAYOUT, widths=WIDTHS, height=SCREEN, screenshot=True)
    assert page.errors == []
    for width in WIDTHS:
        seen, shot = page.probe[width], page.screenshot[width]
        (tmp_path / f"report-{width}.png").write_bytes(shot)
        geometry = seen["geometry"]
        assert geometry["width"] == width and png_size(shot)[0] == width
        assert geometry["overflow"] <= 0 and geometry["wide"] == [], (width, geometry["wide"])
        assert geometry["gaps"][0][1] < SCREEN, (width, "a blank band", geometry["gaps"])
        assert seen["box"] <= width, "the results table's box fits the page; the table scrolls inside it"
        assert seen["onePerRow"] and seen["wrapped"], width  # the two layout boxes under the code's heading
        panels = seen["panels"]
        assert all(p["right"] <= width + 1 and p["left"] >= -1 for p in panels), (width, panels)
        side_by_side = len({round(p["top"]) for p in panels}) < len(panels)
        assert side_by_side == (width >= 1366), (width, panels)
    assert "div.scroll" in page.probe[390]["geometry"]["scrolling"], "on a phone the results table scrolls"


def test_words_say_how_each_variant_runs_what_the_timings_measure_and_mention_only_tasks_that_ran(run):
    _, _, records, page = run
    from conftest import REGISTRY

    text = re.sub(r"\s+", " ", page.text)
    for variant in {r["variant"] for r in records if r["status"] == "ok"}:
        backend = REGISTRY.backends[next(r["backend"] for r in records if r["variant"] == variant)]
        assert f"<dt>{variant}</dt><dd>{html.escape(backend.variants[variant], quote=True)}</dd>" in text
    for recipe in ("manual-sgd", "adam"):
        assert html.escape(classifier.RECIPES[recipe].summary, quote=True) in text
    assert "What the timings measure at this size" in text
    batch = next(r["batch_size"] for r in records if r["recipe"] == "adam")
    assert f"75 parameters x batch {batch} x 6" in text, "computed from the records' parameters and batch"
    assert "A blank cell: the figure does not apply" in text
    assert re.search(r"cells ran, \d+ ok", text)
    assert "Median step, across the" in text or "left out of the ranking" in text  # a busy machine ranks nothing
    words = re.sub(r"data:image/png;base64,[^'\"]+", "", text).lower()
    for other in ("cnn", "cifar", "test images", "tensor-ops", "perceptron"):  # a classifier-only report
        assert other not in words, other


def test_zero_threads_is_explained_and_an_undertrained_recipe_is_called_so(run, tmp_path):
    _, _, records, _ = run
    changed = []
    for r in records:
        r = json.loads(json.dumps(r))
        if r["backend"] == "torch" and r.get("threads_in_effect"):
            r["threads_in_effect"]["torch intra-op"] = 0
        if r["recipe"] == "adam" and r["status"] == "ok":  # as if adam had stopped far from the others
            r["metrics"]["val_accuracy"] = 0.5
            r["losses"] = [1.0 - 0.01 * i for i in range(len(r["losses"]))]
        if r["recipe"] == "manual-sgd" and r["status"] == "ok":
            r["metrics"]["val_accuracy"] = 0.99
        changed.append(r)
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in changed))
    assert rosetta("report", str(tmp_path)).returncode == 0
    text = re.sub(r"\s+", " ", (tmp_path / "report.html").read_text())
    assert "torch intra-op 0 (its default)" in text and "0 is the framework&#x27;s own default" in text
    assert "under-trained at this length, not broken" in text
    assert "under-trained" in (tmp_path / "report.md").read_text()


@needs_chromium
def test_the_browser_check_sees_what_goes_wrong_in_a_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><title>bad</title></head><body>"
                   "<img alt='gone' src='missing.png'><script>console.error('boom'); notAFunction();</script>"
                   "</body></html>")
    page = load(bad, probe="[...document.images].map(i => i.naturalWidth)")
    assert page.probe == [0]
    assert any("console.error: boom" in e for e in page.errors)
    assert any("notAFunction is not defined" in e for e in page.errors)
    assert any("missing.png" in e for e in page.errors)


def test_the_committed_example_run_shows_every_backend():
    from conftest import RUNNABLE

    example = ROOT / "reports" / "example-classifier"
    remake = "re-make it: rosetta run --task classifier --backend all --device cpu --name example-classifier"
    assert (example / "report.html").exists(), remake
    assert sum(p.stat().st_size for p in example.rglob("*") if p.is_file()) < 5 * 2**20, "keep it small"
    records = [json.loads(line) for line in (example / "results.jsonl").read_text().splitlines()]
    ran = {r["backend"] for r in records if r["status"] == "ok"}
    missing = {b.name for b in RUNNABLE if b.origin == "built-in"} - ran
    assert not missing, f"the example lacks {', '.join(sorted(missing))}; {remake}"
    page = Page((example / "report.html").read_text())
    assert [img["alt"] for img in page.images] == PLOTS
    assert len(page.panels) == len(ran)
