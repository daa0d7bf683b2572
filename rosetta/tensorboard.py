"""TensorBoard event files from a run's records (`rosetta report RUN --tensorboard DIR`, Run.tensorboard()).

One TensorBoard run per cell, in DIR/<task>/<variant>/<recipe>/<precision>/<device>[/<option>=<value>]:

    loss                      the training loss at each step (step 0: before any update)
    deviation_from_reference  its relative deviation from the reference backend's loss at the same step
                              (cells that have a reference run of the same problem; not the reference itself)
    metrics/<name>            the cell's final metrics (val_accuracy, val_loss, ...), at the last step
    judge/<figure>, timing/<figure>, memory/<figure>   the report's figures for the cell, at the last step
    hparams                   the cell's settings (task, backend, variant, recipe, precision, device, size,
                              seed, steps, lr, threads, the task's options, the framework's version) through
                              the hyper-parameters plugin, with the session's status (ok or not)

and DIR itself holds the experiment (the hparams and metrics the HParams tab lists). Every cell writes the
same tags, so `tensorboard --logdir DIR` draws every framework's loss on one chart.

Only TensorBoard's protocol buffers and its record framing are used: no TensorFlow is imported, even where it
is installed (TensorBoard's own writer would import it to reach the file system). Writing again replaces the
event files of the cells written, so rebuilding is idempotent; give each run its own DIR.
"""

from __future__ import annotations

import math
import re
import socket
import time
from pathlib import Path

from rosetta import judge
from rosetta.errors import UsageError

SETTINGS = ("task", "backend", "variant", "recipe", "precision", "device", "size", "seed", "steps", "lr",
            "threads", "framework_version")
# The report model's figures written at the last step: frame column -> tag.
FIGURES = {"max_rel_dev_head": "judge/max_rel_dev", "max_rel_dev_all": "judge/max_rel_dev_whole_run",
           "step_median_ms": "timing/step_median_ms", "step_iqr_ms": "timing/step_iqr_ms",
           "first_call_s": "timing/first_call_s", "import_s": "timing/import_s", "train_s": "timing/train_s",
           "samples_per_s": "timing/samples_per_s", "peak_rss_mb": "memory/peak_rss_mb",
           "peak_device_mb": "memory/peak_device_mb"}
LOSS, DEVIATION = "loss", "deviation_from_reference"
EVENTS_GLOB = "events.out.tfevents.*"


def _protos():
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise UsageError("--tensorboard needs the tensorboard package (TensorFlow is not needed): "
                         "pip install 'rosetta-dl[tensorboard]'") from None
    return event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, summary_v2, RecordWriter


def run_name(record: dict) -> str:
    """The cell's TensorBoard run: its name, one folder per part, each part made safe as a folder name."""
    parts = [re.sub(r"[^A-Za-z0-9._=+-]", "_", part) or "_" for part in judge.cell_name(record).split("/")]
    return "/".join("_" if part in (".", "..") else part for part in parts)


def hparams_of(record: dict) -> dict:
    """The cell's settings as hyper-parameters: numbers, strings and booleans only."""
    values = {name: record.get(name) for name in SETTINGS}
    values.update({name: value for name, value in judge.options_of(record).items() if name != "data_dir"})
    return {name: value if isinstance(value, (bool, int, float, str)) else str(value)
            for name, value in values.items() if value is not None}


def scalars_of(view, record: dict, losses, deviation, frame_row: dict | None) -> dict[str, list[tuple]]:
    """tag -> [(step, value)]: what one cell's TensorBoard run holds (the test reads these back)."""
    out: dict[str, list[tuple]] = {}
    if losses:
        out[LOSS] = [(step, float(v)) for step, v in enumerate(losses)]
        if deviation is not None and not view.is_reference(record):
            out[DEVIATION] = [(step, float(v)) for step, v in enumerate(deviation)]
    last = max(len(losses or ()) - 1, 0)
    for name, value in (record.get("metrics") or {}).items():
        if _number(value) is not None:
            out[f"metrics/{name}"] = [(last, _number(value))]
    for column, tag in FIGURES.items():
        if _number((frame_row or {}).get(column)) is not None:
            out[tag] = [(last, _number(frame_row[column]))]
    return out


def _number(value) -> float | None:
    """A finite number as a float; anything else (None, NaN, text, a flag) as None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def write(model, logdir: Path) -> list[str]:
    """Write one TensorBoard run per cell that ran (rosetta/report/model.py's RunReport); returns their names."""
    event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, summary_v2, RecordWriter = _protos()
    from rosetta.report.model import loss_deviations

    logdir = Path(logdir)
    if logdir.exists() and not logdir.is_dir():
        raise UsageError(f"{logdir} is a file; give --tensorboard a folder for the TensorBoard runs")
    now = time.time()
    frame_rows = dict(zip(map(id, model.records), model.frame.to_dict("records")))
    written, all_hparams, all_tags = [], {}, []

    def event_file(folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(EVENTS_GLOB):
            old.unlink()
        out = RecordWriter(open(folder / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.rosetta", "wb"))
        out.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        return out

    def summary_event(out, summary, step: int = 0):
        out.write(event_pb2.Event(wall_time=now, step=step, summary=summary).SerializeToString())

    for view in model.tasks:
        curves = {id(r): (losses, deviation) for r, losses, deviation in loss_deviations(view)}
        for record in view.ran:
            name = run_name(record)
            if name in written:
                continue
            losses, deviation = curves.get(id(record), (record.get("losses"), None))
            scalars = scalars_of(view, record, losses if record.get("status") == "ok" else None, deviation,
                                 frame_rows.get(id(record)))
            hparams = hparams_of(record)
            for key, value in hparams.items():
                all_hparams.setdefault(key, value)
            all_tags += [tag for tag in scalars if tag not in all_tags]
            out = event_file(logdir / name)
            summary_event(out, summary_v2.hparams_pb(hparams, trial_id=name, start_time_secs=now))
            for tag, points in scalars.items():
                for step, value in points:
                    summary_event(out, summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]),
                                  step)
            status = api_pb2.STATUS_SUCCESS if record.get("status") == "ok" else api_pb2.STATUS_FAILURE
            end = plugin_data_pb2.HParamsPluginData(
                session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=now))
            summary_event(out, summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(end),
                tensor=metadata.NULL_TENSOR)]))
            out.close()
            written.append(name)
    if not written:
        raise UsageError("no cell of this run ran (all skipped or unavailable): nothing to show in TensorBoard")
    experiment = summary_v2.hparams_config_pb(
        [summary_v2.HParam(name) for name in all_hparams], [summary_v2.Metric(tag) for tag in all_tags],
        time_created_secs=now)
    out = event_file(logdir)
    summary_event(out, experiment)
    out.close()
    return written
