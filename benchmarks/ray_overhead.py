"""What the Ray executor costs and gains on this machine (issue 15; docs/cluster.md publishes the numbers).

    .venv/bin/python benchmarks/ray_overhead.py [--startups 3] [--rounds 1] [--out benchmarks/results]

1. Ray's start-up cost, each time in a fresh interpreter: `import ray`, `ray.init()` of a local instance
   (what `rosetta run --executor ray` without --address does), the first task's round trip, ray.shutdown().
   And the start of a two-node cluster (ray.cluster_utils.Cluster: a head and a node, one CPU each).
2. The wall time of `rosetta run --quick --task classifier --backend all --device cpu --threads 1`, run by
   the local executor (one cell after the other) and by the Ray executor on that two-node cluster (two
   cells at once, one per node), alternating (local first in one round, Ray first in the next).

Every address stays on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0). The machine's load goes with each
measurement: the 1-minute load average before and after, and the CPU that processes other than this
benchmark's (and its children's) took while it ran, with the busiest of them named. Results go to
benchmarks/results/ray-overhead-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: everything on 127.0.0.1

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from rosetta.worker import machine  # noqa: E402

COMMAND = ["run", "--quick", "--task", "classifier", "--backend", "all", "--device", "cpu", "--threads", "1"]
SLOT = "rosetta_node"
TICKS = os.sysconf("SC_CLK_TCK")

STARTUP = r"""
import json, os, time
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
t0 = time.perf_counter()
import ray
t1 = time.perf_counter()
ray.init(address="local", resources={"rosetta_node": 1}, include_dashboard=False, _node_ip_address="127.0.0.1",
         log_to_driver=False, logging_level="WARNING")
t2 = time.perf_counter()
ray.get(ray.remote(lambda: 1).remote())
t3 = time.perf_counter()
ray.get(ray.remote(lambda: 1).remote())
t4 = time.perf_counter()
ray.shutdown()
t5 = time.perf_counter()
print("STARTUP " + json.dumps({"import_s": t1 - t0, "init_s": t2 - t1, "first_task_s": t3 - t2,
                               "second_task_s": t4 - t3, "shutdown_s": t5 - t4}))
"""


# ------------------------------------------------------------------------------------------ load

def _cpu_times() -> dict:
    """pid -> (CPU seconds of the process and of its reaped children, parent pid, command) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                head, _, rest = stat.read().rpartition(")")
            fields = rest.split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found[int(entry)] = (sum(float(v) for v in fields[11:15]) / TICKS, int(fields[1]),
                             command or head.partition("(")[2])
    return found


def _machine_busy() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [float(v) for v in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq) / TICKS


def _ours(snapshot: dict) -> set:
    """This process and every process below it."""
    children: dict = {}
    for pid, (_, parent, _) in snapshot.items():
        children.setdefault(parent, []).append(pid)
    ours, todo = {os.getpid()}, [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in ours:
                ours.add(child)
                todo.append(child)
    return ours


class Load:
    """The load average around a measurement, and the CPU other processes took during it: the machine's busy
    time (/proc/stat) less this benchmark's (its process tree, the reaped children included), with the
    busiest other processes named (those that started during it count in full; those that ended during it
    are in the total only)."""

    def __enter__(self):
        self.start, self.busy = _cpu_times(), _machine_busy()
        self.wall, self.loadavg = time.monotonic(), os.getloadavg()
        return self

    def __exit__(self, *exc):
        end, busy, wall = _cpu_times(), _machine_busy(), time.monotonic() - self.wall
        ours = _ours(self.start) | _ours(end)

        def used(pid):
            cpu, _, command = end[pid]
            before = self.start.get(pid)
            return cpu - before[0] if before and before[2] == command else cpu
        own = sum(used(pid) for pid in end if pid in ours)
        others = sorted(((used(pid), pid, end[pid][2]) for pid in end if pid not in ours), reverse=True)
        self.found = {"loadavg_before": list(self.loadavg), "loadavg_after": list(os.getloadavg()),
                      "wall_s": wall, "machine_busy_cpu_s": busy - self.busy, "own_cpu_s": own,
                      "others_cpu_share": max(busy - self.busy - own, 0.0) / wall if wall > 0 else None,
                      "busiest_others": [{"pid": pid, "cpu_share": round(u / wall, 3), "command": c[:120]}
                                         for u, pid, c in others[:5] if u > 0]}
        return False


# ------------------------------------------------------------------------------------------ measurements

def startups(count: int) -> list[dict]:
    found = []
    for _ in range(count):
        with Load() as load:
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, timeout=300,
                                 cwd=ROOT)
            total = time.perf_counter() - started
        line = next((l for l in out.stdout.splitlines() if l.startswith("STARTUP ")), None)
        if line is None:
            raise SystemExit(f"the start-up probe failed:\n{out.stderr[-3000:]}")
        found.append({**json.loads(line[8:]), "process_s": total, "load": load.found})
        print(f"local instance: {found[-1]['init_s']:.2f} s to start, process {total:.2f} s", flush=True)
    return found


def run_rosetta(out: Path, name: str, extra: list[str]) -> dict:
    with Load() as load:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "rosetta", *COMMAND, "--out", str(out), "--name", name,
                                 *extra], capture_output=True, text=True, timeout=3600, cwd=ROOT)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"rosetta {' '.join(COMMAND + extra)} failed:\n{result.stderr[-3000:]}")
    records = [json.loads(l) for l in (out / name / "results.jsonl").read_text().splitlines() if l.strip()]
    statuses: dict = {}
    for r in records:
        statuses[r.get("status")] = statuses.get(r.get("status"), 0) + 1
    nodes = sorted({(r.get("node") or {}).get("ray_node_id", "")[:8] for r in records if r.get("node")})
    cell_s = sum(r.get("wall_s") or 0.0 for r in records)
    return {"wall_s": wall, "cells": len(records), "statuses": statuses, "sum_of_cell_wall_s": cell_s,
            "nodes_used": nodes, "busy_cells": sum(1 for r in records if (r.get("load") or {}).get("busy")),
            "load": load.found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--startups", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    results = {"benchmark": "benchmarks/ray_overhead.py", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "machine": machine.describe(), "ray": ray.__version__, "python": platform.python_version(),
               "command": "rosetta " + " ".join(COMMAND), "startups": startups(args.startups)}

    temp = tempfile.mkdtemp(prefix="rosetta-bench-", dir="/tmp")
    runs_dir = Path(tempfile.mkdtemp(prefix="rosetta-bench-runs-"))
    with Load() as load:
        started = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=1, resources={SLOT: 1}, node_ip_address="127.0.0.1", include_dashboard=False, temp_dir=temp))
        cluster.add_node(num_cpus=1, resources={SLOT: 1}, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        cluster_s = time.perf_counter() - started
    results["two_node_cluster_start_s"] = cluster_s
    results["two_node_cluster_start_load"] = load.found
    print(f"two-node cluster: {cluster_s:.2f} s to start", flush=True)
    runs = []
    try:
        for round_number in range(args.rounds):
            order = ["local", "ray"] if round_number % 2 == 0 else ["ray", "local"]
            for executor in order:
                extra = [] if executor == "local" else ["--executor", "ray", "--address", cluster.address]
                found = run_rosetta(runs_dir, f"{executor}-{round_number}", extra)
                runs.append({"executor": executor, "round": round_number, **found})
                print(f"{executor}: {found['wall_s']:.1f} s wall, {found['cells']} cells {found['statuses']}, "
                      f"others took {found['load']['others_cpu_share']:.0%} of a CPU", flush=True)
    finally:
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(runs_dir, ignore_errors=True)
    results["runs"] = runs
    summary = {}
    for executor in ("local", "ray"):
        walls = [r["wall_s"] for r in runs if r["executor"] == executor]
        summary[executor] = {"median_wall_s": statistics.median(walls), "walls_s": walls}
    summary["ray_over_local"] = summary["ray"]["median_wall_s"] / summary["local"]["median_wall_s"]
    summary["local_instance_init_median_s"] = statistics.median(s["init_s"] for s in results["startups"])
    summary["import_ray_median_s"] = statistics.median(s["import_s"] for s in results["startups"])
    summary["first_task_median_s"] = statistics.median(s["first_task_s"] for s in results["startups"])
    shares = [r["load"]["others_cpu_share"] for r in runs] + [s["load"]["others_cpu_share"] for s in results["startups"]]
    summary["others_cpu_share_max"] = max(shares)
    summary["busy"] = max(shares) > 0.25
    results["summary"] = summary
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ray-overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"written {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
