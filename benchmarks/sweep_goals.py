"""The sweep's goals (docs/sweeps.md), measured, not asserted by a test:

1. a quick sweep of the classifier over its five sizes and every backend's default variant finishes in under
   10 minutes on this machine;
2. at the largest classifier size, the best variant reaches at least half of the matmul ceiling measured in
   the same run (read from the quick sweep, and from a full sweep when --full names one);
3. (the harness overhead at that size: benchmarks/overhead.py --hidden 4096 --batch-size 8192, its own JSON).

    .venv/bin/python benchmarks/sweep_goals.py [--out docs/results] [--name sweep-classifier-quick] [--full RUN_DIR]

It runs `rosetta sweep --task classifier --quick --device cpu` as a user does, in a subprocess, with the wall
clock and the machine's load around it, then reads the run's own report model (rosetta/report/sweep.py).
Everything goes to benchmarks/results/sweep-goals-<date>.json, beside the command that made it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from rosetta.registry import discover  # noqa: E402
from rosetta.report import load  # noqa: E402
from rosetta.report import sweep as sweep_report  # noqa: E402
from rosetta.worker import machine  # noqa: E402

QUICK_LIMIT_S = 600
HALF = 0.5


def largest_point(run_dir: Path, registry) -> dict:
    """The best variant at the largest point of a sweep, against the machine's matmul ceiling of its run."""
    model = sweep_report.build(load(run_dir, registry))
    point = model.points[-1]
    ranked = model.at(point, "cpu")
    peak = model.peak("cpu")
    best = ranked[0]
    return {"run": str(run_dir), "point": point.label, "flops_per_step": point.flops, "best": best.variant,
            "step_s": best.step_s, "gflops": best.gflops, "ceiling_gflops": peak.matmul_gflops,
            "ceiling_from": peak.backend, "share": best.gflops / peak.matmul_gflops,
            "goal_half_of_ceiling": best.gflops / peak.matmul_gflops >= HALF,
            "flagged": [t.variant for t in ranked if t.flag],
            "ranking": [{"variant": t.variant, "gflops": t.gflops, "share": t.gflops / peak.matmul_gflops}
                        for t in ranked]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results", help="where the sweep's run folder goes")
    parser.add_argument("--name", default="sweep-classifier-quick", help="its name (it must not exist)")
    parser.add_argument("--full", type=Path, help="a full sweep's run folder to read goal 2 from as well")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="where the JSON goes")
    args = parser.parse_args(argv)

    command = [sys.executable, "-m", "rosetta", "sweep", "--task", "classifier", "--quick", "--device", "cpu",
               "--out", str(args.out), "--name", args.name]
    load_before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return done.returncode
    registry = discover()
    run_dir = args.out / args.name
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()]
    found = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "sweep_command": " ".join(command[2:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine.describe(),
        "quick_sweep": {"wall_s": wall, "cells": len(records), "limit_s": QUICK_LIMIT_S,
                        "goal_under_limit": wall < QUICK_LIMIT_S,
                        "busy_cells": sum(bool((r.get("load") or {}).get("busy")) for r in records),
                        "loadavg_before": load_before, "loadavg_after": load_after},
        "largest_point": {"quick": largest_point(run_dir, registry)},
    }
    if args.full is not None:
        found["largest_point"]["full"] = largest_point(args.full, registry)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"sweep-goals-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(found, indent=1))
    quick = found["quick_sweep"]
    print(f"quick sweep: {quick['cells']} cells in {wall:.0f} s (goal < {QUICK_LIMIT_S} s: "
          f"{'met' if quick['goal_under_limit'] else 'NOT met'}); {quick['busy_cells']} cells flagged busy; "
          f"load {load_before[0]:.2f} -> {load_after[0]:.2f}")
    for name, point in found["largest_point"].items():
        print(f"{name} sweep, largest point {point['point']}: best {point['best']} {point['gflops']:.3g} GFLOP/s = "
              f"{point['share']:.1%} of the ceiling {point['ceiling_gflops']:.3g} ({point['ceiling_from']}); goal "
              f">= 50%: {'met' if point['goal_half_of_ceiling'] else 'NOT met'}")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
