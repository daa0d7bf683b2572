"""The `rosetta` command: thin argparse commands over plain library functions.

Bad input ends in one line on stderr that says what was wrong and what to do, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from pathlib import Path

from rosetta import envs, registry
from rosetta.errors import UsageError

DEVICES = ("cpu", "gpu", "all")
PRECISIONS = ("float32", "float64")


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
positive_float = number(float, lambda v: 0 < v < float("inf"), "must be a positive finite number")
seed_int = number(int, lambda v: 0 <= v < 2**32, "is outside 0 .. 2**32-1")


def build_parser() -> Parser:
    parser = Parser(prog="rosetta", description="One deep-learning exercise, every framework, side by side.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser("run", help="run tasks on backends and write a report")
    run.add_argument("--task", default="classifier", help="task name or 'all' (default: classifier)")
    run.add_argument("--backend", default="all",
                     help="backend or variant names, comma-separated, or 'all' (default: all)")
    run.add_argument("--all-variants", action="store_true", help="run every variant of each chosen backend")
    run.add_argument("--device", default="all", help="cpu, gpu or all (default: all)")
    run.add_argument("--recipe", default="all", help="training recipe, comma-separated, or 'all' (default: all)")
    run.add_argument("--precision", default="float32", help="float32 or float64 (default: float32)")
    run.add_argument("--size", type=positive_int, help="data set size (default: the task's own)")
    run.add_argument("--steps", type=positive_int, help="training steps (default: the recipe's own)")
    run.add_argument("--lr", type=positive_float, help="replace the recipe's learning rate")
    run.add_argument("--epochs", type=positive_int, help="cnn: training epochs (default: the recipe's own)")
    run.add_argument("--batch-size", type=positive_int, help="cnn: images per step (default: the recipe's own)")
    run.add_argument("--data-dir", help="cnn: CIFAR-10, as the cifar-10-batches-py folder, a folder holding it, or "
                                        "cifar-10-python.tar.gz (default: $ROSETTA_CIFAR10, then the cache)")
    run.add_argument("--download", action="store_true",
                     help="cnn: download CIFAR-10 (170 MB, MD5-checked) into the cache if it is not found")
    run.add_argument("--seed", type=seed_int, default=0, help="seed of data, weights and batch order (default 0)")
    run.add_argument("--threads", type=positive_int,
                     help="intra- and inter-op threads of every framework, and OpenMP / BLAS threads "
                          "(default: each framework's own)")
    run.add_argument("--repeats", type=positive_int, default=1,
                     help="run each cell N times, each in a fresh worker, cells alternating; the report gives "
                          "the median step time across repeats and its coefficient of variation (default 1)")
    run.add_argument("--quick", action="store_true",
                     help="a first look: every task at its small size and step count (unless --size, --steps)")
    run.add_argument("--timeout", type=positive_int, help="seconds before a cell is killed (default per task)")
    run.add_argument("--out", type=Path, default=registry.ROOT / "reports", help="where run folders go")
    run.add_argument("--name", help="the run folder's name (default: <date>-<time>-<tasks>); it must not exist")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="run only the cells an interrupted run did not finish (its other options are reused)")

    commands.add_parser("list", help="tasks, backends, variants and what is installed")

    setup = commands.add_parser("setup", help="install backends into their environments")
    setup.add_argument("backends", nargs="*", default=["all"], help="backend names or 'all' (default: all)")
    setup.add_argument("--gpu", action="store_true", help="install GPU builds (requirements-gpu.txt)")
    setup.add_argument("--force", action="store_true", help="reinstall even when nothing changed")

    commands.add_parser("doctor", help="what each backend's environment holds, and how to fix what is missing")

    check = commands.add_parser("check", help="conformance check of one backend: its adapter against the contract, "
                                              "each task it implements against numpy, at tiny sizes")
    check.add_argument("--backend", required=True, help="the backend's name (see `rosetta list`)")
    check.add_argument("--task", default="all", help="task name, comma-separated, or 'all' (default: all)")
    check.add_argument("--steps", type=positive_int, default=20, help="training steps per cell (default 20)")
    check.add_argument("--verbose", action="store_true", help="show tracebacks of passing checks' warnings too")

    report = commands.add_parser("report", help="rebuild the reports of a run from its results.jsonl")
    report.add_argument("run_dir", type=Path)

    compare = commands.add_parser("compare", help="what changed per cell between two runs: time, accuracy, verdict")
    compare.add_argument("run_a", type=Path, help="the run to compare against (before)")
    compare.add_argument("run_b", type=Path, help="the run to judge (after)")
    compare.add_argument("--noise-factor", type=positive_float, default=1.0,
                         help="flag a time ratio beyond 1 + K x the measured noise (default 1)")
    compare.add_argument("--min-noise", type=number(float, lambda v: 0 <= v < 10, "must be in 0 .. 10"),
                         default=0.05, help="the least relative noise assumed (default 0.05)")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # `kill` ends a run the way Ctrl-C does: workers stopped, records kept


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("default")
    plain = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *rest: (  # a broken backend: one line, no source
        f"rosetta: warning: {message}\n" if issubclass(category, registry.BackendWarning)
        else plain(message, category, *rest))
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser().parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"rosetta: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rosetta: interrupted; finished cells are in results.jsonl", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------------------- commands

def choose(value: str, allowed, what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return list(allowed)
    for name in names:
        if name not in allowed:
            raise UsageError(f"unknown {what} {name!r}; choose from {', '.join(allowed)} or 'all'")
    if not names:
        raise UsageError(f"no {what} given; choose from {', '.join(allowed)} or 'all'")
    return names


RUN_OPTIONS = ("task", "backend", "all_variants", "device", "recipe", "precision", "size", "steps", "lr", "seed",
               "threads", "timeout", "repeats", "quick", "epochs", "batch_size", "data_dir", "download")
# Options added after runs were already saved: a plan.json without them gets these.
LATER_OPTIONS = {"repeats": 1, "quick": False, "epochs": None, "batch_size": None, "data_dir": None,
                 "download": False}


def plan_run(options: dict):
    """Validate a run's options and expand them into cells. The same options, saved in the run folder's
    plan.json, give the same cells again for `--resume`."""
    from rosetta import runner

    tasks = choose(options["task"], registry.TASKS, "task")
    if options["device"] not in DEVICES:
        raise UsageError(f"unknown device {options['device']!r}; choose from {', '.join(DEVICES)}")
    if options["precision"] not in PRECISIONS:
        raise UsageError(f"unknown precision {options['precision']!r}; choose from {', '.join(PRECISIONS)}")
    devices = ["cpu", "gpu"] if options["device"] == "all" else [options["device"]]
    backends = registry.discover()
    picks = registry.resolve(options["backend"], backends, options["all_variants"])
    known_recipes = {r for t in tasks for r in registry.load_task(t).RECIPES}
    recipes = None if options["recipe"] == "all" else choose(options["recipe"], sorted(known_recipes), "recipe")
    unavailable = [b for b in backends.values() if b.problem] if "all" in options["backend"].split(",") else []
    task_options = {"epochs": options["epochs"], "batch_size": options["batch_size"], "data_dir": options["data_dir"]}
    if "cnn" in tasks:  # found (or downloaded) here, once, so that every worker reads the same folder
        from rosetta.data import locate_cifar10
        task_options["data_dir"] = str(locate_cifar10(options["data_dir"], download=options["download"]))
    elif options["download"]:
        raise UsageError("--download fetches CIFAR-10 for the cnn task; add --task cnn or drop --download")
    cells = runner.plan(tasks, picks, devices, recipes, options["precision"], options["size"], options["seed"],
                        options["steps"], options["lr"], unavailable, quick=options.get("quick", False),
                        options=task_options)
    return tasks, cells, backends


def cmd_run(args) -> int:
    from rosetta import report, results

    if args.resume is not None:
        run_dir = args.resume
        options = load_plan(run_dir)
        _, cells, backends = plan_run(options)
        done = {r.get("cell") for r in results.repair(run_dir / "results.jsonl")}
        todo = [c for c in cells if c.id not in done]
        print(f"resuming {run_dir}: {len(cells) - len(todo)} of {len(cells)} cells done, {len(todo)} to run",
              file=sys.stderr)
    else:
        options = {name: getattr(args, name) for name in RUN_OPTIONS}
        tasks, cells, backends = plan_run(options)
        run_dir = (named_run_dir(args.out, args.name) if args.name is not None
                   else new_run_dir(args.out, time.strftime("%Y%m%d-%H%M%S") + "-" + "-".join(tasks)))
        (run_dir / "command.txt").write_text("rosetta " + " ".join(args.argv) + "\n")
        (run_dir / "plan.json").write_text(json.dumps({"schema": results.SCHEMA_VERSION, "options": options},
                                                      indent=1))
        todo = cells

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_with_progress(todo, backends, run_dir, run_dir.name, options["timeout"], options["threads"],
                          options.get("repeats", 1))
    except KeyboardInterrupt:
        print(f"rosetta: interrupted; finished cells are in {run_dir / 'results.jsonl'}; "
              f"continue with `rosetta run --resume {run_dir}`", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    written = report.write_reports(run_dir)
    records = results.read_records(run_dir / "results.jsonl")
    frame = report.summary(records)
    several = frame["task"].nunique() > 1
    print_table(report.display_table(frame, (("task",) if several else ()) + report.TERMINAL_COLUMNS))
    print(f"\nreports in {run_dir}: " + ", ".join(p.name for p in written.values()))
    return 0


def new_run_dir(out: Path, name: str) -> Path:
    run_dir, suffix = out / name, 1
    while run_dir.exists():
        suffix += 1
        run_dir = out / f"{name}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def named_run_dir(out: Path, name: str) -> Path:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UsageError(f"--name {name!r} is not a folder name; give a plain name such as example-classifier")
    run_dir = out / name
    if run_dir.exists():
        raise UsageError(f"{run_dir} already exists; choose another --name or remove that folder")
    run_dir.mkdir(parents=True)
    return run_dir


def load_plan(run_dir: Path) -> dict:
    plan = run_dir / "plan.json"
    if not plan.exists():
        raise UsageError(f"{run_dir} has no plan.json; --resume takes a run folder made by `rosetta run`")
    try:
        options = {**LATER_OPTIONS, **json.loads(plan.read_text())["options"]}
        missing = [name for name in RUN_OPTIONS if name not in options]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UsageError(f"{plan} is corrupt; start a new run with `rosetta run`") from None
    if missing:
        raise UsageError(f"{plan} lacks {', '.join(missing)}; start a new run with `rosetta run`")
    return options


def run_with_progress(cells, backends, run_dir, run_id, timeout, threads, repeats=1):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rosetta import runner

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        bar = progress.add_task("starting", total=len(cells) * repeats)

        def on_record(record, cell):
            if record is None:
                progress.update(bar, description=f"running {cell.id}")
            elif repeats > 1:  # a cell that did not end "ok" is not repeated: count its remaining repeats done
                done = record["repeat"]
                progress.advance(bar, 1 if record.get("status") == "ok" else repeats - done + 1)
                progress.console.print(f"{cell.id} [{done}/{repeats}]: {record.get('verdict')}")
            else:
                progress.advance(bar)
                progress.console.print(f"{cell.id}: {record.get('verdict')}")

        records = runner.execute(cells, backends, run_dir, run_id, timeout, threads, on_record, repeats)
        progress.update(bar, description="done")
    return records


def print_table(table) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(show_lines=False)
    for column in table.columns:
        wide = column == "verdict"
        shown.add_column(str(column), no_wrap=not wide, min_width=36 if wide else None,
                         max_width=60 if wide else None, overflow="fold")
    for row in table.itertuples(index=False):
        shown.add_row(*(str(v) for v in row))
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=200)
    console.print(shown)


def cmd_list(args) -> int:
    backends = registry.discover()
    print("tasks:")
    for name, module in registry.TASKS.items():
        task = registry.load_task(name)
        print(f"  {name:12s} {task.SUMMARY}")
        print(f"  {'':12s} recipes: {', '.join(task.RECIPES)}")
    print("\nbackends:")
    for backend in backends.values():
        if backend.problem:
            print(f"  {backend.name:12s} {backend.display_name}: {backend.problem}")
            continue
        installed = envs.is_installed(backend)
        state = "installed" if installed else f"not installed (run `{envs.install_hint(backend)}`)"
        where = "shared environment" if backend.environment == "shared" else f"own environment {backend.environment}"
        tasks = [t for t in registry.TASKS if backend.implements(t)]
        print(f"  {backend.name:12s} {backend.display_name}: {state}; {where}; tasks: {', '.join(tasks) or 'none'}"
              + ("" if backend.origin == "built-in" else f"; {backend.origin}"))
        for i, (variant, description) in enumerate(backend.variants.items()):
            print(f"  {'':12s}   variant {variant}{' (default)' if i == 0 else ''}: {description}")
    return 0


def cmd_setup(args) -> int:
    backends = registry.discover()
    if "all" in args.backends:
        chosen = registry.runnable(backends)
    else:
        chosen = []
        for name in args.backends:
            if name not in backends:
                raise UsageError(f"unknown backend {name!r}; known backends: {', '.join(backends)}")
            chosen.append(backends[name])
    for backend in envs.setup_order(chosen):
        started = time.time()
        outcome = envs.setup(backend, gpu=args.gpu, force=args.force)
        print(f"{backend.name}: {outcome} ({time.time() - started:.1f} s, {envs.interpreter(backend)})")
    return 0


def cmd_doctor(args) -> int:
    import shutil
    import subprocess

    from rosetta import machine, probe

    about = machine.describe()
    print(f"machine: {about['cpu']}, {about['cores']} cores, {about['os']}")
    smi = shutil.which("nvidia-smi")
    print(f"NVIDIA driver: {'nvidia-smi at ' + smi if smi else 'none (nvidia-smi not found): GPU cells will be skipped'}")
    print(f"engine: Python {about['python']} at {sys.executable}")
    for backend in registry.discover().values():
        print(f"\n{backend.name} ({backend.display_name})")
        if backend.problem:
            print(f"  {backend.problem}")
            continue
        python = envs.interpreter(backend)
        where = "shared environment" if backend.environment == "shared" else f"own environment {backend.environment}"
        print(f"  interpreter: {python} ({where})")
        if not envs.is_installed(backend):
            print(f"  not installed; fix: {envs.install_hint(backend)}")
            continue
        try:
            done = subprocess.run([str(python), "-m", "rosetta.probe", backend.module, str(backend.path)],
                                  capture_output=True,
                                  text=True, timeout=300,
                                  env=envs.worker_environment(backend, backend.default_variant, "gpu", None))
            lines = [line for line in done.stdout.splitlines() if line.startswith(probe.MARK)]
            found = json.loads(lines[-1][len(probe.MARK):]) if lines else {
                "error": f"the probe ended with code {done.returncode}: {done.stderr.strip()[-300:]}"}
        except subprocess.TimeoutExpired:
            found = {"error": "the probe did not finish in 300 s"}
        if "error" in found:
            print(f"  import fails: {found['error']}; fix: rosetta setup --force {backend.name}")
            continue
        print(f"  {backend.display_name} {found['version']}, Python {found['python']}, numpy {found['numpy']}")
        gpu = found["gpu"] or f"no GPU visible to {backend.display_name}" if backend.supports_gpu else "CPU only"
        print(f"  devices: cpu; gpu: {gpu}")
        if found["build"]:
            print("  built with: " + ", ".join(f"{k} {v}" for k, v in found["build"].items()))
    return 0


def cmd_check(args) -> int:
    from rosetta import check

    tasks = choose(args.task, registry.TASKS, "task")
    report = check.check_backend(args.backend, tasks, args.steps,
                                 progress=lambda message: print(f"  ... {message}", file=sys.stderr, flush=True))
    print("\n".join(report.lines(args.verbose)))
    return report.exit_code


def cmd_report(args) -> int:
    from rosetta import report

    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir} is not a directory; give a run folder made by `rosetta run`")
    written = report.write_reports(args.run_dir)
    print(f"rebuilt {', '.join(str(p) for p in written.values())}")
    return 0


def cmd_compare(args) -> int:
    from rosetta import compare

    runs = [compare.load_run(args.run_a), compare.load_run(args.run_b)]
    rows, only_a, only_b = compare.compare(*runs, noise_factor=args.noise_factor, min_noise=args.min_noise)
    if rows.empty:
        raise UsageError(f"{args.run_a} and {args.run_b} have no cell in common (matched by "
                         f"{', '.join(compare.KEY)}); compare runs of the same cells")
    print_table(compare.display(rows))
    print("\n" + "\n".join(compare.summary_lines(rows, only_a, only_b, str(args.run_a), str(args.run_b),
                                                 args.noise_factor, args.min_noise)))
    return 0


COMMANDS = {"run": cmd_run, "list": cmd_list, "setup": cmd_setup, "report": cmd_report, "doctor": cmd_doctor,
            "compare": cmd_compare, "check": cmd_check}
