"""`rosetta site`: one self-contained index over run folders, with each cell's step time over the runs judged
as `rosetta compare` judges it. Built from the committed example run's records (no framework runs here):
three dated copies, the third with PyTorch upgraded and its steps 1.6x slower, the second with a 2 % wobble
and a busy machine under JAX; PyTorch's Adadelta steps spread wide in every copy."""

import json
import re
import shutil
from html.parser import HTMLParser

import pytest

from browser import GEOMETRY, find_chromium, load
from conftest import REGISTRY, ROOT, rosetta
from rosetta import site
from rosetta.report import load as load_report

EXAMPLE = ROOT / "reports" / "example-classifier"
WIDTHS = (390, 1366, 1920, 2560)
SCREEN = 900
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no Chromium: apt-get install chromium")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    records = [json.loads(line) for line in (EXAMPLE / "results.jsonl").read_text().splitlines()]
    for stamp, torch_factor, busy_jax in (("20250101-100000", 1.0, False), ("20250201-100000", 1.02, True),
                                         ("20250301-100000", 1.6, False)):
        folder = root / f"{stamp}-classifier"
        folder.mkdir()
        changed = []
        for r in records:
            r = json.loads(json.dumps(r))
            if r["backend"] == "torch" and r.get("step_median_s"):
                r["step_median_s"] *= torch_factor
                if r["recipe"] == "adadelta":  # a cell whose steps spread 72 % of their median: noise, not a step
                    r["step_iqr_s"] = 0.72 * r["step_median_s"]
                if torch_factor > 1.5:
                    r["framework_version"] = "9.9.9+cpu"
            if busy_jax and r["backend"] == "jax" and r["status"] == "ok":
                r["load"] = {"busy": True, "others_share": 0.8}
            changed.append(r)
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in changed))
    shutil.copy(EXAMPLE / "report.html", root / "20250101-100000-classifier" / "report.html")
    (root / "not-a-run").mkdir()
    out = root / "site"
    result = rosetta("site", str(root), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return root, out / "index.html", result


class Tags(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.tags = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_site_lists_every_run_oldest_first_with_its_machine_versions_and_verdicts(runs):
    root, index, result = runs
    assert str(index) in result.stdout
    text = index.read_text()
    names = re.findall(r"<td class='cell'>(?:<a [^>]*>)?(\d{8}-\d{6}-classifier)", text)
    assert names == ["20250101-100000-classifier", "20250201-100000-classifier", "20250301-100000-classifier"]
    assert "2025-03-01 10:00" in text and "Dated by folder name" in text
    assert "vm: Intel(R) Xeon(R) Processor, 2 cores" in text
    assert "<span class='warn' title='was 2.13.0+cpu'>PyTorch 9.9.9+cpu</span>" in text  # the upgrade
    # the verdict counts, judged here through the report model: the same in each copy
    frame = load_report(EXAMPLE, REGISTRY).frame
    counts = frame["agreement"][frame["agreement"].notna() & (frame["agreement"] != "reference")]
    expected = ", ".join(f"{n} {v}" for v, n in counts.value_counts(sort=False).items())
    assert counts.size >= 20 and text.count(expected) == 3, expected


def test_a_step_beyond_the_noise_is_flagged_and_a_wobble_or_a_busy_machine_is_not(runs):
    root, index, _ = runs
    loaded = site.load_runs([root], REGISTRY)
    series = {s["cell"]: s for s in site.cell_series(loaded)}
    assert len(series) == 28  # every cell that finished, in all three runs
    torch = series["classifier/torch/adam/float32/cpu"]
    assert [p["time"] for p in torch["points"]] == ["", "not significant", "SLOWER"]
    assert torch["points"][2]["ratio"] == pytest.approx(1.6 / 1.02)
    assert "PyTorch 2.13.0+cpu -> 9.9.9+cpu" in torch["points"][2]["what_changed"]
    assert series["classifier/jax/adam/float32/cpu"]["points"][1]["time"].startswith("not judged")
    flagged = [s["cell"] for s in series.values() if s["flagged"]]
    expected = [c for c, s in series.items() if "/torch/" in c and s["points"][2]["ratio"] > 1 + s["points"][2]["noise"]]
    assert sorted(flagged) == sorted(expected) and len(expected) >= 3
    noisy = series["classifier/torch/adadelta/float32/cpu"]["points"][2]  # its steps spread 72 % of their median (above)
    assert noisy["time"] == "not significant" and noisy["noise"] > 0.6
    text = index.read_text()
    assert text.count("<span class='bad'>slower 1.57x</span>") == len(expected) and "not judged" in text
    assert "what changed: PyTorch 2.13.0+cpu -&gt; 9.9.9+cpu" in text


def test_site_is_one_self_contained_file_linking_only_to_the_runs_reports(runs):
    root, index, _ = runs
    tags = Tags(index.read_text()).tags
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed", "img")]
    links = [a["href"] for t, a in tags if "href" in a]
    assert links == ["../20250101-100000-classifier/report.html"]  # the one run that has a report.html
    assert (index.parent / links[0]).resolve().is_file()
    assert not [a for t, a in tags if "src" in a]
    assert "url(" not in index.read_text() and "@import" not in index.read_text()


def test_site_says_what_to_give_when_it_finds_no_run(tmp_path):
    result = rosetta("site", str(tmp_path), "--out", str(tmp_path / "site"))
    assert result.returncode == 2 and "no results.jsonl in" in result.stderr
    result = rosetta("site", str(tmp_path / "nowhere"), "--out", str(tmp_path / "site"))
    assert result.returncode == 2 and "is not a directory" in result.stderr


@needs_chromium
def test_site_fits_a_phone_a_laptop_and_large_screens(runs, tmp_path):
    _, index, _ = runs
    probe = f"({{geometry: {GEOMETRY}, lines: document.querySelectorAll('svg.line').length}})"
    page = load(index, probe=probe, widths=WIDTHS, height=SCREEN, screenshot=True)
    assert page.errors == []
    for width in WIDTHS:
        seen = page.probe[width]
        (tmp_path / f"site-{width}.png").write_bytes(page.screenshot[width])
        geometry = seen["geometry"]
        assert geometry["width"] == width and geometry["overflow"] <= 0 and geometry["wide"] == [], geometry
        assert geometry["gaps"][0][1] < SCREEN, geometry["gaps"]
        assert seen["lines"] == 28
    assert "div.scroll" in page.probe[390]["geometry"]["scrolling"], "on a phone the tables scroll in their box"
