"""The Python API: `rosetta run` and the reports as a notebook calls them (docs/python-api.md).

    rosetta.run(task=..., backend=..., **options) -> Run    the CLI's `rosetta run`, the same options
    rosetta.sweep(task=..., hidden=[...], ...) -> Run       the CLI's `rosetta sweep` (docs/sweeps.md)
    rosetta.load(run_dir) -> Run                            a run folder made by any of them
    Run.records, .to_pandas(), .curves(), .sweep(), .report(), .tensorboard(), .compare(other), an HTML summary

There is no second code path: run() turns its keywords into the arguments of `rosetta run` and parses them
with the CLI's own parser (rosetta/cli.py), so the options, their defaults, their checks and the one-line
message of a UsageError are the CLI's; then the same functions run the cells (cli.prepare_run, runs.run) and
write the reports (report.write_reports). Only the progress bar differs: in Jupyter it is an HTML bar that
updates in place (rosetta/progress.py).
"""

from __future__ import annotations

import html
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta import judge
from rosetta.report.model import loss_deviations
from rosetta.errors import UsageError

SUMMARY_COLUMNS = ("variant", "device", "recipe", "precision", "options", "verdict", "val_accuracy", "agreement",
                   "max_rel_dev_head", "step_median_ms", "samples_per_s", "train_s", "timing_flag")


def _registry(registry=None):
    if registry is not None:
        return registry
    from rosetta.registry import discover
    return discover()


def run_arguments(options: dict, registry, command: str = "run") -> list[str]:
    """The `rosetta run` (or `rosetta sweep`) arguments that say what the keywords say (task_option=value ->
    --task-option=value); a keyword the command does not take is a UsageError naming those it does."""
    from rosetta.cli import build_parser

    commands = next(a for a in build_parser(registry)._actions if a.dest == "command")
    run_parser = commands.choices[command]  # the command's own parser, as the command line builds it
    by_name = {}
    for action in run_parser._actions:
        if action.option_strings:
            by_name[action.dest.removeprefix("task_") if action.dest.startswith("task_") else action.dest] = action
    by_name.pop("help", None)
    argv = []
    for name, value in options.items():
        action = by_name.get(name)
        if action is None:
            raise UsageError(f"rosetta.{command}() takes no option {name!r}; it takes the options of "
                             f"`rosetta {command}`: {', '.join(sorted(by_name))}")
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # a switch: True gives it, False leaves it out
            if not isinstance(value, (bool, np.bool_)):
                raise UsageError(f"{name}={value!r}: {flag} is a switch; give True or False")
            if value:
                argv.append(flag)
        elif value is not None:
            if isinstance(value, (list, tuple, set)):
                value = ",".join(str(v) for v in value)
            argv.append(f"{flag}={value}")
    return argv


def run(task: str = "classifier", backend: str = "all", *, progress: bool = True, registry=None,
        **options) -> "Run":
    """Run a matrix of cells, as `rosetta run` does, write its reports, and return the Run.

    Keywords are the options of `rosetta run` with underscores (recipe="manual-sgd", size=2000, steps=20,
    device="cpu", quick=True, out="runs", name="first", resume="runs/first", and each task's own options,
    e.g. epochs=2); a list is joined with commas (backend=["a", "b"] is backend="a,b"). progress=False runs quietly."""
    from rosetta import cli

    registry = _registry(registry)
    options = {"task": task, "backend": backend, **options}
    argv = ["run", *run_arguments(options, registry)]
    args = cli.build_parser(registry).parse_args(argv)  # the CLI's checks, defaults and messages
    args.argv = argv
    return _execute(cli.prepare_run(args, registry), registry, progress)


def sweep(task: str = "classifier", backend: str = "all", *, progress: bool = True, registry=None,
          **options) -> "Run":
    """Run a sweep, as `rosetta sweep` does (docs/sweeps.md), write its report, and return the Run; sizes are
    lists (hidden=[12, 1024]), the other keywords those of rosetta.run(), plus ceiling_size. Run.sweep() is
    its table of timings."""
    from rosetta import cli

    registry = _registry(registry)
    argv = ["sweep", *run_arguments({"task": task, "backend": backend, **options}, registry, "sweep")]
    args = cli.build_parser(registry).parse_args(argv)
    args.argv = argv
    return _execute(cli.prepare_sweep(args, registry), registry, progress)


def _execute(prepared, registry, progress: bool) -> "Run":
    from rosetta import cli, runs
    from rosetta.progress import for_here

    if progress:
        cli.warn_if_busy()
    try:
        runs.run(prepared, registry, for_here(prepared.options.repeats) if progress else None)
    except KeyboardInterrupt:
        print(f"rosetta: interrupted; finished cells are in {prepared.run_dir / 'results.jsonl'}; continue with "
              f"rosetta.run(resume={str(prepared.run_dir)!r})", file=sys.stderr)
        raise
    result = Run(prepared.run_dir, registry)
    result.report()
    return result


def load(run_dir, registry=None) -> "Run":
    """The Run of a run folder made by `rosetta run` or rosetta.run() (its records are read now)."""
    from rosetta.compare import load_run

    run_dir = Path(run_dir)
    load_run(run_dir)  # not a run folder: the CLI's UsageError
    return Run(run_dir, _registry(registry))


class Run:
    """A run folder and what can be read from its records. Nothing is cached between calls but the report
    model, which reload() rebuilds (a run resumed elsewhere has more records)."""

    def __init__(self, run_dir, registry=None):
        self.run_dir = Path(run_dir).resolve()  # the same folder whatever the working directory becomes
        self.registry = _registry(registry)
        self._model = None

    # ---------------------------------------------------------------------------------------------- data

    @property
    def model(self):
        """The report model (rosetta/report/model.py): the records judged once, grouped by task."""
        if self._model is None:
            from rosetta import report
            self._model = report.load(self.run_dir, self.registry)
        return self._model

    def reload(self) -> "Run":
        self._model = None
        return self

    @property
    def records(self) -> list[dict]:
        """One dict per cell, as results.jsonl holds them (schema: rosetta/results.py), in the report's order."""
        return self.model.records

    @property
    def options(self):
        """The RunOptions the run was made with (plan.json), or None for a folder without one."""
        from rosetta.runs import load_options
        return load_options(self.run_dir) if (self.run_dir / "plan.json").exists() else None

    def to_pandas(self) -> pd.DataFrame:
        """One row per cell: its settings, status and verdict, agreement with the reference, metrics, timings
        and memory (the columns of results.csv), with the cell's name first."""
        frame = self.model.frame.copy()
        frame.insert(0, "cell", [judge.cell_name(r) for r in self.model.records])
        return frame

    def curves(self) -> pd.DataFrame:
        """Long format, one row per cell and step: the training loss, and its relative deviation from the
        reference backend's loss at the same step (|loss - ref| / |ref|; 0 for the reference itself, NaN where
        there is no reference run of the same problem). Steps count from 0, the loss before any update."""
        rows = []
        for view in self.model.tasks:
            for r, losses, deviation in loss_deviations(view):
                for step, loss in enumerate(losses):
                    rows.append((judge.cell_name(r), r.get("task"), r.get("backend"), r.get("variant"),
                                 r.get("device"), r.get("recipe"), r.get("precision"), step, float(loss),
                                 float(deviation[step]) if deviation is not None and step < len(deviation)
                                 else float("nan")))
        return pd.DataFrame(rows, columns=["cell", "task", "backend", "variant", "device", "recipe", "precision",
                                           "step", "loss", "deviation"])

    def sweep(self) -> pd.DataFrame:
        """A sweep's timings, one row per variant and point: the sizes, the task's FLOPs and least bytes per step,
        the median step time, the achieved GFLOP/s and its share of the machine's matmul ceiling measured in the
        same run (rosetta/report/sweep.py); a run that is not a sweep is a UsageError."""
        from rosetta.report import sweep as sweep_report

        swept = sweep_report.build(self.model)
        if swept is None:
            raise UsageError(f"{self.run_dir} is not a sweep; make one with rosetta.sweep() or `rosetta sweep`")
        rows = []
        for t in swept.timings:
            peak = swept.peak(t.device)
            rows.append({"variant": t.variant, "device": t.device, **dict(t.point.sizes), "flops": t.point.flops,
                         "bytes": t.point.bytes, "step_s": t.step_s, "gflops": t.gflops,
                         "share_of_peak": t.gflops / peak.matmul_gflops if peak else float("nan"),
                         "timing_flag": t.flag or None})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------------------------------- outputs

    def report(self, tensorboard=None) -> dict:
        """Write the reports (results.csv, report.md, the plots, report.html) as `rosetta report` does; with
        tensorboard=DIR, also one TensorBoard run per cell there. Returns what was written."""
        from rosetta import report

        with _keeping_matplotlib_backend():
            written = report.write_reports(self.run_dir, self.registry)
        if tensorboard is not None:
            written["tensorboard"] = self.tensorboard(tensorboard)
        return written

    def tensorboard(self, logdir) -> Path:
        """One TensorBoard run per cell in logdir (rosetta/tensorboard.py); `tensorboard --logdir` it."""
        from rosetta import tensorboard

        tensorboard.write(self.model, Path(logdir))
        return Path(logdir)

    def compare(self, other, noise_factor: float | None = None, min_noise: float | None = None) -> pd.DataFrame:
        """`rosetta compare THIS OTHER` as a DataFrame: one row per cell both runs have, THIS as A (before) and
        OTHER as B (after): step times and their ratio judged against the noise, accuracy, verdicts. Its
        .attrs["summary"] holds the lines the CLI prints under the table."""
        from rosetta import cli, compare

        other = other if isinstance(other, Run) else load(other, self.registry)
        noise_factor = compare.DEFAULT_NOISE_FACTOR if noise_factor is None else noise_factor
        min_noise = compare.DEFAULT_MIN_NOISE if min_noise is None else min_noise
        if not (0 < noise_factor < float("inf")) or not (0 <= min_noise < 10):
            raise UsageError(f"noise_factor={noise_factor} must be a positive finite number and "
                             f"min_noise={min_noise} in 0 .. 10")
        a, b = self.records, other.records
        rows, only_a, only_b = cli.compare_runs(a, b, self.registry, self.run_dir, other.run_dir, noise_factor,
                                                min_noise)
        rows.attrs["summary"] = compare.summary_lines(rows, only_a, only_b, str(self.run_dir), str(other.run_dir),
                                                      noise_factor, min_noise, compare.differences_between(a, b))
        return rows

    # ------------------------------------------------------------------------------------------- display

    def summary(self) -> str:
        """'4 cells: 3 ok, 1 skipped; tasks classifier; reference numpy'."""
        statuses = pd.Series([r.get("status") for r in self.records]).value_counts()
        tasks = ", ".join(view.name for view in self.model.tasks)
        reference = self.model.reference_name
        return (f"{len(self.records)} cells: " + ", ".join(f"{n} {s}" for s, n in statuses.items())
                + f"; task {tasks}" + (f"; reference {reference}" if reference else ""))

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}: {self.summary()})"

    def _repr_html_(self) -> str:
        from rosetta.report import columns

        frame = self.model.frame
        keys = (("task",) if frame["task"].nunique() > 1 else ()) + SUMMARY_COLUMNS
        table = columns.display_table(frame, keys, self.model.reference_name)
        return (f"<div><b>Run</b> <code>{html.escape(str(self.run_dir))}</code>: {html.escape(self.summary())}"
                f"</div>" + table.to_html(index=False, escape=True, border=0))


@contextmanager
def _keeping_matplotlib_backend():
    """The reports draw with Agg (rosetta/report/plots.py); a notebook keeps its own backend (inline) after."""
    import matplotlib

    before = dict.__getitem__(matplotlib.rcParams, "backend")  # as set, not resolved
    try:
        yield
    finally:
        if dict.__getitem__(matplotlib.rcParams, "backend") != before:
            matplotlib.use(before)
            if before == "inline" or str(before).endswith("backend_inline"):  # Jupyter's: figures shown again
                from IPython import get_ipython
                from matplotlib_inline.backend_inline import configure_inline_support
                configure_inline_support(get_ipython(), before)
