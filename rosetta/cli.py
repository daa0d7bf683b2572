"""The `rosetta` command: thin argparse commands over the library (rosetta/runs.py, report/, check.py, ...).

Discovery happens once per command (the registry is built before the parser: the tasks' own options become
flags of `rosetta run`). Bad input ends in one line on stderr that says what was wrong and what to do, and
exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import os
import sys
import time
import warnings
from pathlib import Path

from rosetta import envs
from rosetta.errors import UsageError
from rosetta.plan import DEFAULT_CEILING_SIZE, DEFAULT_THREADS, EXECUTORS, RunOptions
from rosetta.registry import ROOT, PluginWarning, Registry, discover


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def number(parse, accept, requirement: str):
    """An argparse type: `parse` the text, then `accept` the value or say what it must be."""
    kind = "whole number" if parse is int else "number"

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{value} {requirement}")
        return value
    return convert


positive_int = number(int, lambda v: v >= 1, "must be at least 1")
natural_int = number(int, lambda v: v >= 0, "must be 0 or more")
positive_float = number(float, lambda v: 0 < v < float("inf"), "must be a positive finite number")
seed_int = number(int, lambda v: 0 <= v < 2**32, "is outside 0 .. 2**32-1")


def task_option_type(option):
    def convert(text: str):
        try:
            return option.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(option.flag + " ")) from None
    return convert


def add_run_arguments(run: argparse.ArgumentParser, registry: Registry, lists: bool = False) -> None:
    """The options of `rosetta run` (and of `rosetta sweep`, which runs the same cells over a grid: lists,
    every whole-number task option takes a comma-separated list, e.g. --hidden 12,1024)."""
    run.add_argument("--task", default="classifier",
                     help=f"task name, comma-separated, or 'all' (default: classifier; known: {', '.join(registry.tasks)})")
    run.add_argument("--backend", default="all",
                     help="backend or variant names, comma-separated, or 'all' (default: all)")
    run.add_argument("--all-variants", action="store_true", help="run every variant of each chosen backend")
    run.add_argument("--device", default="all", help="cpu, gpu or all (default: all)")
    run.add_argument("--recipe", default="all", help="recipe, comma-separated, or 'all' (default: all)")
    run.add_argument("--precision", default="float32", help="float32 or float64 (default: float32)")
    run.add_argument("--size", type=positive_int, help="data set size (default: the task's own)")
    run.add_argument("--steps", type=positive_int, help="training steps (default: the recipe's own)")
    run.add_argument("--lr", type=positive_float, help="replace the recipe's learning rate")
    run.add_argument("--seed", type=seed_int, default=0, help="seed of data, weights and batch order (default 0)")
    run.add_argument("--threads", type=natural_int, default=DEFAULT_THREADS,
                     help="intra- and inter-op threads of every framework, and OpenMP / BLAS threads (default "
                          f"{DEFAULT_THREADS}; 0: each framework's own default)")
    run.add_argument("--repeats", type=positive_int, default=1,
                     help="run each cell N times, each in a fresh worker, cells alternating; the report gives "
                          "the median step time across repeats and its coefficient of variation (default 1)")
    run.add_argument("--quick", action="store_true",
                     help="a first look: every task at its small size and step count (unless --size, --steps)")
    run.add_argument("--timeout", type=positive_int, help="seconds before a cell is killed (default per task)")
    run.add_argument("--executor", default="local", choices=EXECUTORS,
                     help="where cells run: local (one after the other, on this machine; the default) or ray "
                          "(spread over a Ray cluster: docs/cluster.md)")
    run.add_argument("--address", help="ray: the address of a running cluster (default: start a local one)")
    run.add_argument("--cells-per-node", type=positive_int, default=1,
                     help="ray: cells that may share a node at once (default 1: a timed cell has its node to itself)")
    run.add_argument("--out", type=Path, default=ROOT / "reports", help="where run folders go")
    run.add_argument("--name", help="the run folder's name (default: <date>-<time>-<tasks>); it must not exist")
    takers: dict = {}
    for task in registry.tasks.values():
        for name in task.options:
            takers.setdefault(name, []).append(task.name)
    for name, option in registry.task_options().items():
        help_text = f"{', '.join(takers[name])}: {option.help}"
        if option.kind == "flag":
            run.add_argument(option.flag, dest=f"task_{name}", action="store_true", help=help_text)
        else:
            if lists and option.kind == "int":
                option = dataclasses.replace(option, kind="ints")
            run.add_argument(option.flag, dest=f"task_{name}", type=task_option_type(option), help=help_text)


def build_parser(registry: Registry) -> Parser:
    parser = Parser(prog="rosetta", description="One deep-learning exercise, every framework, side by side.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser("run", help="run tasks on backends and write a report")
    add_run_arguments(run, registry)
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="run only the cells an interrupted run did not finish (its other options are reused)")

    sweep = commands.add_parser("sweep", help="one task over a grid of its sizes: each framework's step time and "
                                              "GFLOP/s against the machine's ceiling, measured in the same run")
    add_run_arguments(sweep, registry, lists=True)
    sweep.set_defaults(recipe=None)
    sweep.add_argument("--ceiling-size", type=positive_int, default=DEFAULT_CEILING_SIZE,
                       help=f"n of the n x n matmul that measures each framework's peak (default {DEFAULT_CEILING_SIZE})")

    listing = commands.add_parser("list", help="tasks, backends, variants and what is installed")
    listing.add_argument("--markdown", action="store_true", help="the backends as Markdown tables (docs/backends.md)")
    listing.add_argument("--update", type=Path, metavar="PAGE",
                         help="rewrite the tables between a page's markers (docs/backends.md)")
    publish = commands.add_parser("publish", help="regenerate the tables a docs page publishes from committed runs")
    publish.add_argument("pages", nargs="+", type=Path, help="Markdown pages with <!-- table: RUN_DIR --> marks")
    commands.add_parser("images", help="the `docker build` command of each Docker image, from the registry")

    setup = commands.add_parser("setup", help="install backends into their environments")
    setup.add_argument("backends", nargs="*", default=["all"], help="backend names or 'all' (default: all)")
    setup.add_argument("--gpu", action="store_true", help="install GPU builds (requirements-gpu.txt)")
    setup.add_argument("--force", action="store_true", help="reinstall even when nothing changed")

    commands.add_parser("doctor", help="what each backend's environment holds, and how to fix what is missing")

    check = commands.add_parser("check", help="conformance check of one backend: its adapter against the contract, "
                                              "each task it implements against the reference, at tiny sizes")
    check.add_argument("--backend", required=True, help="the backend's name (see `rosetta list`)")
    check.add_argument("--task", default="all", help="task name, comma-separated, or 'all' (default: all)")
    check.add_argument("--steps", type=positive_int, default=20, help="training steps per cell (default 20)")
    check.add_argument("--verbose", action="store_true", help="show tracebacks of passing checks' warnings too")

    report = commands.add_parser("report", help="rebuild the reports of a run from its results.jsonl")
    report.add_argument("run_dir", type=Path)
    report.add_argument("--tensorboard", type=Path, metavar="DIR",
                        help="also write one TensorBoard run per cell into DIR (loss and deviation from the "
                             "reference per step, final metrics, settings as hparams); then `tensorboard --logdir DIR`")

    compare = commands.add_parser("compare", help="what changed per cell between two runs: time, accuracy, verdict")
    compare.add_argument("run_a", type=Path, help="the run to compare against (before)")
    compare.add_argument("run_b", type=Path, help="the run to judge (after)")
    compare.add_argument("--noise-factor", type=positive_float, default=1.0,
                         help="flag a time ratio beyond 1 + K x the measured noise (default 1)")
    compare.add_argument("--min-noise", type=number(float, lambda v: 0 <= v < 10, "must be in 0 .. 10"),
                         default=0.05, help="the least relative noise assumed (default 0.05)")
    site = commands.add_parser("site", help="one static page over many runs: each run's date, machine, versions and "
                                            "verdicts, each cell's step time and accuracy across them")
    site.add_argument("run_dirs", nargs="+", type=Path, help="run folders, or folders holding run folders")
    site.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write index.html")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # `kill` ends a run the way Ctrl-C does: workers stopped, records kept


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("default")
    plain = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *rest: (  # a broken plugin: one line, no source
        f"rosetta: warning: {message}\n" if issubclass(category, PluginWarning)
        else plain(message, category, *rest))
    try:
        argv = sys.argv[1:] if argv is None else argv
        registry = discover()
        args = build_parser(registry).parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args, registry)
    except UsageError as error:
        print(f"rosetta: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rosetta: interrupted; finished cells are in results.jsonl", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rosetta list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# ------------------------------------------------------------------------------------------ commands

def run_options(args, registry: Registry) -> RunOptions:
    """RunOptions from the parsed arguments (shared with `rosetta sweep`)."""
    task_options = {name: getattr(args, f"task_{name}") for name in registry.task_options()
                    if getattr(args, f"task_{name}", None) not in (None, False)}
    return RunOptions(task=args.task, backend=args.backend, all_variants=args.all_variants, device=args.device,
                      recipe=args.recipe, precision=args.precision, size=args.size, steps=args.steps, lr=args.lr,
                      seed=args.seed, threads=args.threads, timeout=args.timeout, repeats=args.repeats,
                      quick=args.quick, task_options=task_options, executor=args.executor, address=args.address,
                      cells_per_node=args.cells_per_node)


def cmd_run(args, registry: Registry) -> int:
    return execute_and_report(prepare_run(args, registry), registry)


def cmd_sweep(args, registry: Registry) -> int:
    """`rosetta sweep`: a run over a grid of the task's sizes (rosetta/sweeps.py), then the sweep's report."""
    return execute_and_report(prepare_sweep(args, registry), registry)


def prepare_sweep(args, registry: Registry):
    """The parsed arguments of `rosetta sweep` -> runs.Prepared (shared with rosetta.sweep(), rosetta/api.py)."""
    from rosetta import runs, sweeps

    options = run_options(args, registry)
    task = sweeps.sweep_task(options, registry)
    sizes = {k: v for k, v in options.task_options.items() if k in task.sweep.sizes}
    for name, values in options.task_options.items():
        if name not in sizes and isinstance(values, tuple):
            if len(values) > 1:
                raise UsageError(f"--{name.replace('_', '-')} takes one value in a sweep; the sizes it varies: "
                                 + ", ".join("--" + s.replace("_", "-") for s in task.sweep.sizes))
            options.task_options[name] = values[0]
    options.grid = sweeps.grid(task, sizes, args.quick)
    options.task_options = {k: v for k, v in options.task_options.items() if k not in sizes}
    options.ceiling_size = args.ceiling_size
    return runs.prepare(options, registry, args.out, args.name, command="rosetta " + " ".join(args.argv))


def prepare_run(args, registry: Registry):
    """The parsed arguments of `rosetta run` -> runs.Prepared: a new run folder, or the interrupted run that
    --resume names (shared with rosetta.run(), rosetta/api.py, which parses its keywords with this parser)."""
    from rosetta import runs

    if args.resume is not None:
        prepared = runs.prepare_resume(args.resume, registry)
        print(f"resuming {prepared.run_dir}: {len(prepared.plan.cells) - len(prepared.todo)} of "
              f"{len(prepared.plan.cells)} cells done, {len(prepared.todo)} to run", file=sys.stderr)
        return prepared
    return runs.prepare(run_options(args, registry), registry, args.out, args.name,
                        command="rosetta " + " ".join(args.argv))


def warn_if_busy() -> None:
    """Say on stderr, before a run, when other processes already load the machine (shared with rosetta.run())."""
    from rosetta.worker.load import sample

    now = sample(0.5)
    if now.get("busy"):
        print(f"rosetta: warning: the machine is busy: other processes are using {now['others_share']:.0%} of a CPU "
              f"(load average {now['loadavg_1min_end']:.1f}); timings taken now will be flagged, and not ranked",
              file=sys.stderr)


SWEEP_SUMMARY = ("The machine's ceiling", "Fastest at each size", "At the largest size")


def execute_and_report(prepared, registry: Registry) -> int:
    """Run the prepared cells with a progress bar, then write and print the reports (shared with sweep)."""
    from rosetta import report, runs
    from rosetta.progress import TerminalProgress
    from rosetta.report import sweep as sweep_report
    from rosetta.report.terminal import print_table

    warn_if_busy()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        runs.run(prepared, registry, TerminalProgress(prepared.options.repeats))
    except KeyboardInterrupt:
        print(f"rosetta: interrupted; finished cells are in {prepared.run_dir / 'results.jsonl'}; "
              f"continue with `rosetta run --resume {prepared.run_dir}`", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    written = report.write_reports(prepared.run_dir, registry)
    model = report.load(prepared.run_dir, registry)
    swept = sweep_report.build(model)
    if swept is None:
        print_table(model)
    else:  # a sweep: what a reader wants first, the winners and how close they come to the ceiling
        shown = [s for s in sweep_report.sections(swept) if s.title.startswith(SWEEP_SUMMARY)]
        print("\n\n".join(f"{s.title}\n\n{s.markdown}" for s in shown))
    timed = [r for r in model.records if r.get("status") == "ok" and r.get("load")]
    busy = [r for r in timed if r["load"].get("busy")]
    if busy:
        print(f"\nrosetta: warning: {len(busy)} of {len(timed)} cells ran on a busy machine (other processes took "
              f"more than a quarter of a CPU): their timings are flagged and not ranked; run them again on a quiet "
              f"machine", file=sys.stderr)
    print(f"\nreports in {prepared.run_dir}: " + ", ".join(p.name for p in written.values()))
    return 0


def cmd_list(args, registry: Registry) -> int:
    from rosetta import catalog
    if args.update:
        page = args.update.read_text() if args.update.exists() else ""
        try:
            args.update.write_text(catalog.update(page, registry))
        except ValueError as error:
            raise UsageError(f"{args.update}: {error}; add them where the tables belong") from None
        print(f"updated the tables in {args.update}")
    elif args.markdown:
        print(catalog.markdown(registry), end="")
    else:
        print("\n".join(catalog.listing(registry)))
    return 0


def cmd_publish(args, registry: Registry) -> int:
    from rosetta.published import publish
    for page in args.pages:
        if not page.exists():
            raise UsageError(f"{page} does not exist; give a Markdown page of docs/")
        print(f"{page}: {publish(page.resolve(), registry)} tables regenerated")
    return 0


def cmd_images(args, registry: Registry) -> int:
    from rosetta.images import images
    for image in images(registry):
        print(image.build_command())
    return 0


def cmd_setup(args, registry: Registry) -> int:
    if "all" in args.backends:
        chosen = registry.runnable()
    else:
        chosen = []
        for name in args.backends:
            if name not in registry.backends:
                raise UsageError(f"unknown backend {name!r}; known backends: {', '.join(registry.backends)}")
            chosen.append(registry.backends[name])
    for backend in envs.setup_order(chosen):
        started = time.time()
        outcome = envs.setup(backend, gpu=args.gpu, force=args.force)
        print(f"{backend.name}: {outcome} ({time.time() - started:.1f} s, {envs.interpreter(backend)})")
    return 0


def cmd_doctor(args, registry: Registry) -> int:
    from rosetta.doctor import doctor

    for line in doctor(registry):
        print(line)
    return 0


def cmd_check(args, registry: Registry) -> int:
    from rosetta import check
    from rosetta.plan import choose

    tasks = choose(args.task, registry.tasks, "task")
    report = check.check_backend(args.backend, tasks, args.steps, registry=registry,
                                 progress=lambda message: print(f"  ... {message}", file=sys.stderr, flush=True))
    print("\n".join(report.lines(args.verbose)))
    return report.exit_code


def cmd_report(args, registry: Registry) -> int:
    from rosetta import report

    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir} is not a directory; give a run folder made by `rosetta run`")
    written = report.write_reports(args.run_dir, registry)
    print(f"rebuilt {', '.join(str(p) for p in written.values())}")
    if args.tensorboard is not None:
        from rosetta import tensorboard

        runs = tensorboard.write(report.load(args.run_dir, registry), args.tensorboard)
        print(f"TensorBoard: {len(runs)} runs in {args.tensorboard}; view them with "
              f"`tensorboard --logdir {args.tensorboard}`")
    return 0


def cmd_compare(args, registry: Registry) -> int:
    from rosetta import compare
    from rosetta.report.terminal import print_frame

    runs = [compare.load_run(args.run_a), compare.load_run(args.run_b)]
    rows, only_a, only_b = compare_runs(*runs, registry, args.run_a, args.run_b, args.noise_factor, args.min_noise)
    print_frame(compare.display(rows))
    print("\n" + "\n".join(compare.summary_lines(rows, only_a, only_b, str(args.run_a), str(args.run_b),
                                                 args.noise_factor, args.min_noise,
                                                 compare.differences_between(*runs))))
    return 0


def compare_runs(records_a: list, records_b: list, registry: Registry, name_a, name_b, noise_factor: float,
                 min_noise: float):
    """compare.compare(), and the error when two runs share no cell (shared with Run.compare(), rosetta/api.py)."""
    from rosetta import compare

    rows, only_a, only_b = compare.compare(records_a, records_b, registry, noise_factor=noise_factor,
                                           min_noise=min_noise)
    if rows.empty:
        raise UsageError(f"{name_a} and {name_b} have no cell in common (matched by "
                         f"{', '.join(compare.KEY)}); compare runs of the same cells")
    return rows, only_a, only_b


def cmd_site(args, registry: Registry) -> int:
    from rosetta import site

    print(f"wrote {site.write_site(args.run_dirs, args.out, registry)}")
    return 0


COMMANDS = {"run": cmd_run, "sweep": cmd_sweep, "list": cmd_list, "setup": cmd_setup, "report": cmd_report, "doctor": cmd_doctor,
            "compare": cmd_compare, "check": cmd_check, "images": cmd_images, "publish": cmd_publish,
            "site": cmd_site}
