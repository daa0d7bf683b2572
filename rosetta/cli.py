"""The `rosetta` command: thin argparse commands over plain library functions.

Bad input ends in one line on stderr that says what was wrong and what to do, and exit code 2.
"""

from __future__ import annotations

import argparse
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
    run.add_argument("--seed", type=seed_int, default=0, help="seed of data, weights and batch order (default 0)")
    run.add_argument("--threads", type=positive_int, help="threads per framework (default: framework's own)")
    run.add_argument("--timeout", type=positive_int, help="seconds before a cell is killed (default per task)")
    run.add_argument("--out", type=Path, default=registry.ROOT / "reports", help="where run folders go")

    commands.add_parser("list", help="tasks, backends, variants and what is installed")

    setup = commands.add_parser("setup", help="install backends into their environments")
    setup.add_argument("backends", nargs="*", default=["all"], help="backend names or 'all' (default: all)")
    setup.add_argument("--gpu", action="store_true", help="install GPU builds (requirements-gpu.txt)")
    setup.add_argument("--force", action="store_true", help="reinstall even when nothing changed")

    report = commands.add_parser("report", help="rebuild the reports of a run from its results.jsonl")
    report.add_argument("run_dir", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("default")
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


def cmd_run(args) -> int:
    from rosetta import report, runner

    tasks = choose(args.task, registry.TASKS, "task")
    if args.device not in DEVICES:
        raise UsageError(f"unknown device {args.device!r}; choose from {', '.join(DEVICES)}")
    if args.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {args.precision!r}; choose from {', '.join(PRECISIONS)}")
    devices = ["cpu", "gpu"] if args.device == "all" else [args.device]
    backends = registry.discover()
    picks = registry.resolve(args.backend, backends, args.all_variants)
    known_recipes = {r for t in tasks for r in registry.load_task(t).RECIPES}
    recipes = None if args.recipe == "all" else choose(args.recipe, sorted(known_recipes), "recipe")
    unavailable = [b for b in backends.values() if b.problem] if "all" in args.backend.split(",") else []
    cells = runner.plan(tasks, picks, devices, recipes, args.precision, args.size, args.seed, args.steps,
                        args.lr, unavailable)

    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + "-".join(tasks)
    run_dir = args.out / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = args.out / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    (run_dir / "command.txt").write_text("rosetta " + " ".join(args.argv) + "\n")

    records = run_with_progress(cells, backends, run_dir, run_dir.name, args.timeout, args.threads)
    written = report.write_reports(run_dir)
    print_table(report.display_table(report.summary(records), report.TERMINAL_COLUMNS))
    print(f"\nreports in {run_dir}: " + ", ".join(p.name for p in written.values()))
    return 0


def run_with_progress(cells, backends, run_dir, run_id, timeout, threads):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rosetta import runner

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        bar = progress.add_task("starting", total=len(cells))

        def on_record(record, cell):
            if record is None:
                progress.update(bar, description=f"running {cell.id}")
            else:
                progress.advance(bar)
                progress.console.print(f"{cell.id}: {record.get('verdict')}")

        records = runner.execute(cells, backends, run_dir, run_id, timeout, threads, on_record)
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


def cmd_report(args) -> int:
    from rosetta import report

    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir} is not a directory; give a run folder made by `rosetta run`")
    written = report.write_reports(args.run_dir)
    print(f"rebuilt {', '.join(str(p) for p in written.values())}")
    return 0


COMMANDS = {"run": cmd_run, "list": cmd_list, "setup": cmd_setup, "report": cmd_report}
