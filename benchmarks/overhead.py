"""Harness overhead and run-to-run stability: each backend's manual recipe as a bare script against the
same cell run through rosetta, alternating, in one run.

    .venv/bin/python benchmarks/overhead.py [--rounds 10] [--threads 1] [--cpus last] [--backends numpy,torch,...]
                                            [--hidden 4096] [--batch-size 8192]

For each round and each backend it runs benchmarks/bare/<backend>_manual_sgd.py (numpy and the framework,
nothing of rosetta) and the same cell through rosetta.runner.run_cell (a rosetta worker process), in
alternating order (bare first in one round, rosetta first in the next), with the same interpreter, the
same environment variables and the same thread settings. Both sides train the same problem: this script
writes it once to an .npz from tasks/classifier.make_problem (the bare scripts read it; the worker builds
it from the same seed), and the benchmark checks that both loss curves agree. --hidden and --batch-size
(the classifier's options, e.g. the largest point of its sweep) change the problem on both sides: the bare
scripts take every shape from the arrays they read.

Printed per backend: the median over rounds of each side's steady-state step median, their ratio (the
median of the per-round ratios rosetta / bare, each pair measured back to back), and the coefficient of
variation over rounds of each side's step median. Everything measured, with the machine's load average
around each run, goes to benchmarks/results/<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rosetta import envs, registry, runner  # noqa: E402
from rosetta.backend import Backend  # noqa: E402
from rosetta.plan import Cell  # noqa: E402
from rosetta.repeats import across_repeats  # noqa: E402
from rosetta.worker import machine  # noqa: E402
from tasks import classifier  # noqa: E402

BACKENDS = ("numpy", "torch", "tensorflow", "jax", "keras", "mxnet", "paddle")
RECIPE = "manual-sgd"
MARK = "BARE "


def write_problem(path: Path, size: int, seed: int, precision: str, steps: int | None,
                  options: dict | None = None) -> dict:
    """options: the classifier's task options given (hidden, batch_size), passed to make_problem as the worker
    passes them."""
    options = dict(options or {})
    problem = classifier.make_problem(size=size, seed=seed, recipe=RECIPE, precision=precision, steps=steps,
                                      **options)
    np.savez(path, x_train=problem.x_train, y_train=problem.y_train, x_val=problem.x_val, y_val=problem.y_val,
             batches=problem.batches, lr=problem.recipe.hyper["lr"], **problem.params)
    return {"size": size, "seed": seed, "precision": precision, "steps": problem.steps,
            "batch_size": problem.batch_size, "hidden": problem.hidden, "options": options}


def run_bare(backend: Backend, problem: Path, threads: int | None, timeout: float) -> dict:
    script = HERE / "bare" / f"{backend.name}_manual_sgd.py"
    command = [str(envs.interpreter(backend)), str(script), "--problem", str(problem)]
    if threads:
        command += ["--threads", str(threads)]
    # The worker's own environment (thread variables, the variant's and the device's settings), so that the
    # two sides differ only by rosetta's code.
    env = envs.worker_environment(backend, backend.default_variant, "cpu", threads)
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        return {"status": "failed", "error": (done.stderr or done.stdout).strip()[-1500:]}
    return {"status": "ok", **json.loads(lines[-1][len(MARK):]), "wall_s": time.time() - started}


def run_rosetta(backend: Backend, config: dict, threads: int | None, timeout: float) -> dict:
    cell = Cell("classifier", backend.name, backend.default_variant, "cpu", RECIPE, config["precision"],
                config["size"], config["seed"], config["steps"], options=tuple(sorted(config.get("options", {}).items())))
    task = registry.discover_tasks()["classifier"]
    started = time.time()
    record = runner.run_cell(cell, backend, task, run_id="overhead-benchmark", timeout=timeout, threads=threads)
    return {**record, "wall_s": time.time() - started}


def summarize(runs: dict) -> dict:
    bare = [r["step_median_s"] for r in runs["bare"] if r.get("status") == "ok"]
    harness = [r["step_median_s"] for r in runs["rosetta"] if r.get("status") == "ok"]
    paired = [h["step_median_s"] / b["step_median_s"] for b, h in zip(runs["bare"], runs["rosetta"])
              if b.get("status") == "ok" and h.get("status") == "ok"]
    deviation = None
    pairs = [(b, h) for b, h in zip(runs["bare"], runs["rosetta"]) if b.get("status") == h.get("status") == "ok"]
    if pairs:
        b, h = pairs[0]
        n = min(len(b["losses"]), len(h["losses"]))
        a, r = np.asarray(b["losses"][:n]), np.asarray(h["losses"][:n])
        deviation = float(np.max(np.abs(a - r) / np.maximum(np.abs(r), 1e-300))) if n else None
    # The whole process, start to exit (interpreter, imports, problem, training, teardown): the only ratio
    # that sees the harness where both sides time their steps with the same code (SAME_STEP_CLOCK).
    whole = [h["wall_s"] / b["wall_s"] for b, h in pairs if b.get("wall_s") and h.get("wall_s")]
    return {"bare": across_repeats(bare), "rosetta": across_repeats(harness), "ratio": across_repeats(paired),
            "paired_ratios": paired, "whole_process_ratio": across_repeats(whole), "loss_max_rel_dev": deviation}


# Backends whose bare script and worker time each step with the same callback inside one fit() call: their
# step ratio is 1 by construction and says nothing of the harness; their whole-process ratio does.
SAME_STEP_CLOCK = {"keras": "1 by construction: both sides time steps with the same callback inside fit()"}


def table(summaries: dict) -> str:
    from tabulate import tabulate

    rows = []
    for name, s in summaries.items():
        us = lambda v: "" if v is None else f"{v * 1e6:,.1f}"
        pct = lambda v: "" if v is None else f"{v:.1%}"
        ratio = s["ratio"]["median"]
        whole = (s.get("whole_process_ratio") or {}).get("median")
        rows.append([name, us(s["bare"]["median"]), us(s["rosetta"]["median"]),
                     "" if ratio is None else f"{ratio:.3f}" + (f" ({SAME_STEP_CLOCK[name]})" if name in SAME_STEP_CLOCK else ""),
                     "" if whole is None else f"{whole:.3f}",
                     "" if not s["paired_ratios"] else f"{min(s['paired_ratios']):.3f}-{max(s['paired_ratios']):.3f}",
                     pct(s["bare"]["cv"]), pct(s["rosetta"]["cv"]), s["rosetta"]["n"],
                     "identical" if s["loss_max_rel_dev"] == 0 else
                     ("" if s["loss_max_rel_dev"] is None else f"{s['loss_max_rel_dev']:.1e}")])
    return tabulate(rows, headers=["backend", "bare step us", "rosetta step us", "ratio", "whole-process ratio", "ratio range",
                                   "CV bare", "CV rosetta", "rounds", "losses"], tablefmt="github")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default: every backend with a bare script)")
    parser.add_argument("--rounds", type=int, default=10, help="alternations per backend (default 10)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of every framework on both sides; 0: each framework's default (default 1)")
    parser.add_argument("--cpus", default="last",
                        help="pin the benchmark and every process it starts to these CPUs, e.g. 1 or 0,1; 'last' "
                             "(the default) is the machine's last CPU; 'none' leaves the scheduler free")
    parser.add_argument("--size", type=int, default=classifier.DEFAULT_SIZE)
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's 5,000)")
    parser.add_argument("--hidden", type=int, help="the classifier's hidden units (default: the course's 12)")
    parser.add_argument("--batch-size", type=int, help="points per step (default: the recipe's 20)")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the JSON goes")
    args = parser.parse_args(argv)

    if args.cpus != "none" and hasattr(os, "sched_setaffinity"):
        # Both sides on the same CPU, where the scheduler cannot move them: the largest source of
        # run-to-run spread on a small shared machine after other processes' load.
        cpus = ({max(os.sched_getaffinity(0))} if args.cpus == "last" else {int(c) for c in args.cpus.split(",")})
        os.sched_setaffinity(0, cpus)
    threads = args.threads or None
    # Only the options given, sorted by name: the cell's options as `rosetta run --hidden --batch-size` makes them.
    options = {name: value for name, value in sorted({"batch_size": args.batch_size, "hidden": args.hidden}.items())
               if value is not None}
    try:
        classifier.validate(args.size, RECIPE, args.steps, **options)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    found = registry.discover_backends()
    chosen = [found[name.strip()] for name in args.backends.split(",") if name.strip()]
    missing = [b.name for b in chosen if not envs.is_installed(b)]
    if missing:
        print(f"not installed: {', '.join(missing)}; run `rosetta setup {' '.join(missing)}`", file=sys.stderr)
        return 2

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        problem = Path(tmp) / "problem.npz"
        config = write_problem(problem, args.size, args.seed, args.precision, args.steps, options)
        runs = {b.name: {"bare": [], "rosetta": [], "load": []} for b in chosen}
        for round_number in range(args.rounds):
            for k, backend in enumerate(chosen):
                sides = ["bare", "rosetta"] if (round_number + k) % 2 == 0 else ["rosetta", "bare"]
                for side in sides:
                    before = os.getloadavg()[0]
                    result = (run_bare(backend, problem, threads, args.timeout) if side == "bare"
                              else run_rosetta(backend, config, threads, args.timeout))
                    runs[backend.name][side].append(result)
                    runs[backend.name]["load"].append({"side": side, "round": round_number,
                                                       "load_1min_before": before,
                                                       "load_1min_after": os.getloadavg()[0]})
                    shown = (f"{result['step_median_s'] * 1e6:,.1f} us" if result.get("status") == "ok"
                             else f"{result.get('status')}: {result.get('verdict') or result.get('error', '')[-300:]}")
                    print(f"round {round_number + 1}/{args.rounds} {backend.name:10s} {side:7s} {shown}",
                          file=sys.stderr, flush=True)

    summaries = {name: summarize(r) for name, r in runs.items()}
    print(table(summaries))
    loads = [entry[key] for r in runs.values() for entry in r["load"] for key in ("load_1min_before", "load_1min_after")]
    print(f"\n{args.rounds} rounds, threads {threads or 'framework default'}, CPUs "
          f"{sorted(os.sched_getaffinity(0))}, {config['steps']} steps of {config['batch_size']}, hidden "
          f"{config['hidden']} ({args.precision}); "
          f"1-minute load average {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores; "
          f"{time.time() - started:.0f} s")

    args.out.mkdir(parents=True, exist_ok=True)
    name = time.strftime("%Y-%m-%d")
    path, suffix = args.out / f"{name}.json", 1
    while path.exists():
        suffix += 1
        path = args.out / f"{name}-{suffix}.json"
    for r in runs.values():  # the comparison above used whole curves; keep the head of one pair's
        for side in ("bare", "rosetta"):
            for k, result in enumerate(r[side]):
                losses = result.pop("losses", None)
                if k == 0 and losses is not None:
                    result["losses_head"] = losses[:classifier.AGREEMENT_STEPS]
                result.pop("report_data", None)
    path.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine.describe(), "cpus": sorted(os.sched_getaffinity(0)), "threads": threads,
        "rounds": args.rounds, "problem": config, "summary": summaries, "runs": runs,
        "wall_s": time.time() - started}, indent=1))
    print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
