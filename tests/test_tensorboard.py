"""`rosetta report RUN --tensorboard DIR`: one TensorBoard run per cell, read back with TensorBoard's own
reader and checked value by value against the records; written without TensorFlow."""

import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import REFERENCE, ROOT, rosetta

pytest.importorskip("tensorboard", reason="pip install -e '.[test]' installs tensorboard")
# TensorBoard's reader imports TensorFlow when it is installed (the shared environment has it, for its
# backend): its stub reads local files as well, in a fraction of the time. The writer never needs either.
if "tensorflow" not in sys.modules:
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

from rosetta import judge, tensorboard  # noqa: E402
from rosetta.api import load  # noqa: E402

KEEP_ALL = {"scalars": 0, "tensors": 0}  # no sampling: every event


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = rosetta("run", "--task", "classifier", "--backend", f"{REFERENCE.name},torch", "--size", "2000",
                     "--steps", "20", "--recipe", "manual-sgd", "--device", "cpu", "--out", str(out), "--name", "tb")
    assert result.returncode == 0, result.stderr
    logdir = out / "board"
    code = ("import sys\nfrom rosetta.cli import main\n"
            f"code = main(['report', {str(out / 'tb')!r}, '--tensorboard', {str(logdir)!r}])\n"
            "assert 'tensorflow' not in sys.modules, 'the writer imported TensorFlow'\nsys.exit(code)")
    written = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert written.returncode == 0, written.stderr
    assert "TensorBoard: 2 runs" in written.stdout
    return load(out / "tb"), logdir


def accumulator(folder):
    files = sorted(folder.glob(tensorboard.EVENTS_GLOB))
    assert len(files) == 1, files  # rewritten, not appended
    events = EventAccumulator(str(folder), size_guidance=KEEP_ALL)
    events.Reload()
    return events


def test_every_cell_is_a_run_with_every_value_of_its_record(board):
    run, logdir = board
    model = run.model
    view = model.tasks[0]
    rows = dict(zip(map(id, model.records), model.frame.to_dict("records")))
    for record in model.records:
        events = accumulator(logdir / tensorboard.run_name(record))
        tags = set(events.Tags()["scalars"])
        losses = record["losses"]
        assert len(losses) == 20
        read = events.Scalars(tensorboard.LOSS)
        assert [e.step for e in read] == list(range(20))
        np.testing.assert_array_equal([e.value for e in read], np.float32(losses))  # TensorBoard keeps float32
        if view.is_reference(record):
            assert tensorboard.DEVIATION not in tags
        else:
            ref = view.reference_for(record)
            read = events.Scalars(tensorboard.DEVIATION)
            expected = judge.relative_deviation(losses, ref["losses"])
            assert [e.step for e in read] == list(range(20))
            np.testing.assert_array_equal([e.value for e in read], np.float32(expected))
            assert max(e.value for e in read) == pytest.approx(view.judgement(record).whole, rel=1e-6)
        finals = {f"metrics/{k}": v for k, v in record["metrics"].items() if isinstance(v, float)}
        finals.update({tag: rows[id(record)][column] for column, tag in tensorboard.FIGURES.items()
                       if rows[id(record)][column] is not None and not np.isnan(rows[id(record)][column])})
        assert "metrics/val_accuracy" in finals and "timing/step_median_ms" in finals
        assert tags == {tensorboard.LOSS, *finals} | (set() if view.is_reference(record) else {tensorboard.DEVIATION})
        for tag, value in finals.items():
            (event,) = events.Scalars(tag)
            assert event.step == 19 and event.value == np.float32(value), tag


def test_the_hparams_plugin_holds_each_cell_s_settings_and_status(board):
    run, logdir = board
    tags = set()
    for record in run.records:
        events = accumulator(logdir / tensorboard.run_name(record))
        tags |= set(events.Tags()["scalars"])
        contents = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
        start = hparams_metadata.parse_session_start_info_plugin_data(contents[hparams_metadata.SESSION_START_INFO_TAG])
        values = {}
        for name, value in start.hparams.items():
            values[name] = value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        assert values == {"task": "classifier", "backend": record["backend"], "variant": record["variant"],
                          "recipe": "manual-sgd", "precision": "float32", "device": "cpu", "size": 2000, "seed": 0,
                          "steps": 20, "threads": 1, "framework_version": record["framework_version"]}
        assert start.group_name == tensorboard.run_name(record) and start.start_time_secs > 0  # the trial
        end = hparams_metadata.parse_session_end_info_plugin_data(contents[hparams_metadata.SESSION_END_INFO_TAG])
        assert end.status == 1  # STATUS_SUCCESS
    experiment = hparams_metadata.parse_experiment_plugin_data(
        accumulator(logdir).PluginTagToContent(hparams_metadata.PLUGIN_NAME)[hparams_metadata.EXPERIMENT_TAG])
    assert [h.name for h in experiment.hparam_infos][:4] == ["task", "backend", "variant", "recipe"]
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert sorted(metrics) == sorted(tags) and tensorboard.DEVIATION in tags  # every scalar, for the HParams tab


def test_writing_again_replaces_the_runs(board, tmp_path):
    run, logdir = board
    run.tensorboard(tmp_path / "again")
    run.tensorboard(tmp_path / "again")
    for record in run.records:
        events = accumulator(tmp_path / "again" / tensorboard.run_name(record))
        assert len(events.Scalars(tensorboard.LOSS)) == 20


def test_a_file_as_the_folder_is_one_line(board, tmp_path):
    run, _ = board
    (tmp_path / "file").write_text("")
    result = rosetta("report", str(run.run_dir), "--tensorboard", str(tmp_path / "file"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is a file" in result.stderr
