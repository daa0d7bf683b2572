"""`rosetta compare`: two real runs, cell by cell; regressions flagged only beyond the noise they measured."""

import json

import pytest

from conftest import REGISTRY, rosetta
from rosetta import compare
from rosetta.report.model import timing_flag

SMALL = ["--backend", "numpy,torch", "--device", "cpu", "--recipe", "manual-sgd,adam", "--size", "3000",
         "--steps", "60"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    for name in ("a", "b"):
        result = rosetta("run", *SMALL, "--out", str(out), "--name", name)
        assert result.returncode == 0, result.stderr
    return out / "a", out / "b"


def records_of(run_dir, quiet: bool = False):
    """A run's records; quiet=True marks each as measured on a quiet machine, for tests of the arithmetic
    (the real runs may have been made beside other jobs, which compare rightly refuses to judge)."""
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    if quiet:
        for r in records:
            r["load"] = {**r.get("load", {}), "busy": False}
    return records


def write_run(folder, records):
    folder.mkdir()
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_two_real_runs_of_the_same_cells_compare_cell_by_cell(runs):
    a, b = runs
    result = rosetta("compare", str(a), str(b))
    assert result.returncode == 0, result.stderr
    assert "4 cells in both" in result.stdout and "0 verdict changes, 0 accuracy changes" in result.stdout
    rows, only_a, only_b = compare.compare(records_of(a), records_of(b), REGISTRY)
    assert len(rows) == 4 and not only_a and not only_b
    by_cell = {r["cell"]: r for r in records_of(b)}
    for row in rows.to_dict("records"):
        assert row["cell"] in result.stdout
        before = next(r for r in records_of(a) if r["cell"] == row["cell"])
        after = by_cell[row["cell"]]
        if after["status"] != "ok":  # e.g. torch not installed: matched, but not timed
            assert row["time"] == "not timed in both"
            continue
        assert row["ratio"] == pytest.approx(after["step_median_s"] / before["step_median_s"])
        noise = max(before["step_iqr_s"] / before["step_median_s"], after["step_iqr_s"] / after["step_median_s"], 0.05)
        assert row["noise"] == pytest.approx(noise)
        if timing_flag(before) or timing_flag(after):  # measured beside another job: no judgement
            assert row["time"].startswith("not judged (")
        else:
            assert row["time"] == ("SLOWER" if row["ratio"] > 1 + noise else "faster" if row["ratio"] < 1 / (1 + noise)
                                   else "not significant")
        assert row["acc_delta_pp"] == 0  # same seed: bit-for-bit the same training
        assert not row["verdict_changed"] and row["verdict_a"].startswith("ok")


def test_only_a_change_beyond_the_measured_noise_is_flagged(runs, tmp_path):
    a, _ = runs
    before = records_of(a, quiet=True)

    def changed(recipe, factor_of_noise):
        """Run A's records with numpy's step time on `recipe` scaled by a factor set from its own noise."""
        after = [dict(r) for r in before]
        cell = next(r for r in after if r["variant"] == "numpy" and r["recipe"] == recipe)
        cell["step_median_s"] *= factor_of_noise(max(cell["step_iqr_s"] / cell["step_median_s"], 0.05))
        return after

    slower = changed("manual-sgd", lambda noise: 2 * (1 + noise))
    result = rosetta("compare", str(write_run(tmp_path / "before", before)), str(write_run(tmp_path / "slower", slower)))
    assert result.returncode == 0, result.stderr
    assert "1 slower beyond noise (regressions), 0 faster beyond noise" in result.stdout
    assert "REGRESSION: classifier/numpy/manual-sgd/float32/cpu" in result.stdout

    for factor, expected in ((lambda noise: 1 + 0.5 * noise, "not significant"),
                             (lambda noise: 1 / (2 * (1 + noise)), "faster"),
                             (lambda noise: 1 + 2 * noise, "SLOWER")):
        rows, _, _ = compare.compare(before, changed("adam", factor), REGISTRY)
        times = dict(zip(rows["cell"], rows["time"]))
        assert times.pop("classifier/numpy/adam/float32/cpu") == expected
        # the rest is unchanged (or, where its steps spread wider than their median, not judged at all)
        assert all(t in ("not significant", "not timed in both") or t.startswith("not judged") for t in times.values())
    rows, _, _ = compare.compare(before, changed("adam", lambda noise: 1 + 2 * noise), REGISTRY, noise_factor=3)
    assert dict(zip(rows["cell"], rows["time"]))["classifier/numpy/adam/float32/cpu"] == "not significant"


def test_verdict_and_accuracy_changes_are_named(runs, tmp_path):
    a, b = runs
    after = records_of(b)
    victim = next(r for r in after if r["variant"] == "numpy" and r["recipe"] == "adam")
    victim["verdict"] = "wrong: 39 losses for 40 steps"
    victim["metrics"] = {**victim["metrics"], "val_accuracy": victim["metrics"]["val_accuracy"] - 0.125}
    result = rosetta("compare", str(a), str(write_run(tmp_path / "worse", after)))
    assert result.returncode == 0, result.stderr
    assert "VERDICT CHANGED: classifier/numpy/adam/float32/cpu: ok -> wrong: 39 losses for 40 steps" in result.stdout
    assert "-12.50" in result.stdout and "1 verdict changes, 1 accuracy changes" in result.stdout


def test_cells_only_in_one_run_are_listed(runs, tmp_path):
    a, b = runs
    fewer = [r for r in records_of(b) if r["recipe"] != "adam"]
    result = rosetta("compare", str(a), str(write_run(tmp_path / "fewer", fewer)))
    assert result.returncode == 0, result.stderr
    assert "2 cells in both" in result.stdout and "only in A: 2 cells: numpy/cpu, torch/cpu" in result.stdout


def test_bad_run_folders_are_one_line_errors_with_exit_code_2(runs, tmp_path):
    a, _ = runs
    other = tmp_path / "reports"
    done = rosetta("run", "--backend", "numpy", "--device", "cpu", "--recipe", "adam", "--size", "2000",
                   "--steps", "5", "--out", str(other), "--name", "other-size")
    assert done.returncode == 0, done.stderr
    (tmp_path / "empty").mkdir()
    for args, expected in (
        (["/nonexistent/run", str(a)], "/nonexistent/run is not a directory"),
        ([str(a), str(tmp_path / "empty")], "results.jsonl does not exist"),
        ([str(a), str(other / "other-size")], "have no cell in common"),
        ([str(a), str(a), "--noise-factor", "-1"], "argument --noise-factor: -1.0 must be a positive"),
    ):
        result = rosetta("compare", *args)
        assert result.returncode == 2, (args, result.stdout)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr


def test_run_name_names_the_folder_and_is_never_reused(runs, tmp_path):
    a, _ = runs
    assert records_of(a)[0]["run_id"] == "a"
    for name, expected in (("a", "already exists; choose another --name"), ("x/y", "is not a folder name")):
        result = rosetta("run", *SMALL, "--out", str(a.parent), "--name", name)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr
    assert sorted(p.name for p in a.parent.iterdir()) == ["a", "b"]


def test_the_spread_across_repeats_counts_as_noise_where_larger(runs):
    a, _ = runs
    before = records_of(a, quiet=True)
    cell = next(r for r in before if r["variant"] == "numpy" and r["recipe"] == "adam")
    noise = max(cell["step_iqr_s"] / cell["step_median_s"], 0.05)
    after = [dict(r, step_median_s=r["step_median_s"] * (1 + 3 * noise)) if r is cell else r for r in before]
    rows, _, _ = compare.compare(before, after, REGISTRY)
    assert dict(zip(rows["cell"], rows["time"]))[cell["cell"]] == "SLOWER"
    # the same change between runs whose repeats (rosetta run --repeats) spread by 5 x noise is not significant
    repeated = [dict(r, step_cv=5 * noise) if r["cell"] == cell["cell"] else r for r in after]
    rows, _, _ = compare.compare(before, repeated, REGISTRY)
    assert dict(zip(rows["cell"], rows["time"]))[cell["cell"]] == "not significant"
    assert rows.set_index("cell").loc[cell["cell"], "noise"] == pytest.approx(5 * noise)


def test_a_busy_machine_on_either_side_is_not_judged(runs, tmp_path):
    a, _ = runs
    before = records_of(a, quiet=True)
    after = [dict(r) for r in before]
    cell = next(r for r in after if r["variant"] == "numpy" and r["recipe"] == "adam")
    cell["step_median_s"] *= 10
    cell["load"] = {"busy": True, "others_share": 0.97, "measured": True}
    rows, _, _ = compare.compare(before, after, REGISTRY)
    assert dict(zip(rows["cell"], rows["time"]))[cell["cell"]].startswith("not judged (B: busy machine (others took 97%")


def test_runs_at_other_thread_counts_are_other_cells(runs, tmp_path):
    """A thread count changes a timing: cells run with --threads 2 are not the cells run with 1."""
    a, _ = runs
    other = [dict(r, threads=2) for r in records_of(a)]
    rows, only_a, only_b = compare.compare(records_of(a), other, REGISTRY)
    assert rows.empty and len(only_a) == len(only_b) == 4
    result = rosetta("compare", str(a), str(write_run(tmp_path / "threads", other)))
    assert result.returncode == 2 and "no cell in common" in result.stderr and "threads" in result.stderr


def test_other_machines_and_framework_versions_are_named(runs, tmp_path):
    a, _ = runs
    moved = [dict(r, machine={**r["machine"], "hostname": "elsewhere", "cpu": "Another CPU"}) for r in records_of(a)]
    for r in moved:
        if r["backend"] == "torch" and r.get("framework_version"):
            r["framework_version"] = "9.9.9"
    result = rosetta("compare", str(a), str(write_run(tmp_path / "moved", moved)))
    assert result.returncode == 0, result.stderr
    assert "note: the runs come from different machines" in result.stdout and "Another CPU" in result.stdout
    if any(r["backend"] == "torch" and r.get("framework_version") for r in moved):
        assert "note: PyTorch changed version:" in result.stdout and "-> 9.9.9 (B)" in result.stdout
