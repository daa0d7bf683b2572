"""The Ray executor: the run's cells spread over a Ray cluster (`rosetta run ... --executor ray [--address A]`).

Ray is an optional install of the engine's environment (`pip install -e '.[ray]'`); it is imported here only,
when a run asks for this executor. Each cell is one Ray task that calls rosetta.runner.run_cell on the node
Ray picks: the same worker process, with the backend's interpreter, as the local executor runs. Backend
environments are not shipped: every node holds the project at the same path with `rosetta setup` done (or
runs the project's Docker image). docs/cluster.md is the user's guide.

What a cell asks Ray for (Ray's own scheduler places it, retries it, and keeps the accounts):

- `rosetta_node`: every node that runs cells offers 1 of this custom resource (`ray start ...
  --resources='{"rosetta_node": 1}'`; a local instance started by this executor has it). A cell asks for
  1/cells_per_node of it, so with the default of 1 a timed cell has its node to itself.
- CPUs: the threads it will use (1 unless --threads says otherwise), never more than the largest node has.
- a GPU cell: one GPU. The resource is Ray's "GPU" unless ROSETTA_RAY_GPU_RESOURCE names another
  (a custom resource standing for a GPU, e.g. on a node whose GPU Ray does not detect; the tests use one).
- ROSETTA_RAY_RESOURCES='{"name": amount}': more resources every cell asks for (to confine a run to the
  nodes started with them).

Before the first cell, a probe pinned to each node that offers `rosetta_node` checks that the
environments the run needs are installed there; a missing one is a one-line UsageError naming the node and
the `rosetta setup` command. A node that dies under a cell: Ray runs the cell again elsewhere, at most
ROSETTA_RAY_RETRIES times (default 2); if it still cannot, the cell's row says "lost: node died". Either
way the driver gets exactly one record per cell, and appends it (rosetta/executors/__init__.py).

Each record names its node ({"hostname", "address", "ray_node_id", "cells_per_node"}) and the executor;
`cells_per_node` is also a top-level field (a timing field: rosetta/judge.py) when it is above 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path

from rosetta.errors import UsageError
from rosetta.executors import Executor, Job
from rosetta.runner import base_record, why_not

SLOT = "rosetta_node"  # the custom resource every node that runs cells offers once
INSTALL = "pip install -e '.[ray]'"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROBE_TIMEOUT_S = 180


def import_ray(loopback: bool):
    """Ray, imported now. loopback: keep every address on 127.0.0.1 (a local instance, or a cluster whose
    address is a loopback one): Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported, and
    without it "127.0.0.1" is resolved to the machine's outward interface."""
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        from rosetta.executors import unavailable
        raise UsageError(unavailable("ray") or f"Ray failed to import; reinstall it with `{INSTALL}`") from None
    return ray


def is_loopback(address: str | None) -> bool:
    if address is None:
        return True
    host = re.sub(r"^[a-z]+://", "", address).rsplit(":", 1)[0].strip("[]")
    return host in LOOPBACK


def _env_json(name: str) -> dict:
    text = os.environ.get(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
        if isinstance(value, dict) and all(isinstance(v, (int, float)) and v > 0 for v in value.values()):
            return value
    except json.JSONDecodeError:
        pass
    raise UsageError(f'{name} must be a JSON object of positive amounts, e.g. \'{{"bench": 1}}\'; it is {text!r}')


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if not text:
        return default
    if not text.isdigit():
        raise UsageError(f"{name} must be a whole number; it is {text!r}")
    return int(text)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, cells_per_node: int = 1, gpu_resource: str | None = None,
                 resources: dict | None = None, retries: int | None = None):
        self.address = address
        self.cells_per_node = max(1, int(cells_per_node or 1))
        self.gpu_resource = gpu_resource or os.environ.get("ROSETTA_RAY_GPU_RESOURCE") or "GPU"
        self.resources = resources if resources is not None else _env_json("ROSETTA_RAY_RESOURCES")
        self.retries = retries if retries is not None else _env_int("ROSETTA_RAY_RETRIES", 2)
        self.ray = None
        self.started_here = False  # a local instance this executor started (and shuts down)
        self.initialized_here = False  # ray.init called here (a notebook's own connection is left open)
        self.probed: set = set()  # the backends already probed on every node
        self.in_flight: dict = {}  # ObjectRef -> Job

    # ---------------------------------------------------------------------------------- connection

    def connect(self):
        if self.ray is not None:
            return self.ray
        ray = import_ray(loopback=is_loopback(self.address))
        import logging
        quiet = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
        if ray.is_initialized():  # a notebook that connected already
            self.ray = ray
            return ray
        self.initialized_here = True
        # ray.init installs a SIGTERM handler of its own (it exits); the run's (rosetta/cli.py: stop the cells,
        # keep the records, print the resume command) is put back after it.
        previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        try:
            self._init(ray, quiet)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self.ray = ray
        return ray

    def _init(self, ray, quiet: dict) -> None:
        if self.address is None:
            ray.init(address="local", resources={SLOT: 1}, include_dashboard=False, _node_ip_address="127.0.0.1",
                     **quiet)  # "local": a new instance, never a cluster already running here
            self.started_here = True
        else:
            try:
                ray.init(address=self.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise UsageError(f"cannot connect to the Ray cluster at {self.address}: {first}; start it with "
                                 f"`ray start --head` (docs/cluster.md)") from None

    def nodes(self) -> list[dict]:
        """The live nodes that run cells (they offer rosetta_node)."""
        return [n for n in self.ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(SLOT, 0) > 0]

    def close(self) -> None:
        ray, self.ray = self.ray, None
        if ray is None:
            return
        interrupted = bool(self.in_flight)
        self.in_flight.clear()
        # Ctrl-C with cells still queued or running: the driver disconnects, which ends its Ray job, and Ray stops
        # every task the job owns, queued or running. Not ray.cancel() per task: Ray 2.60's owner aborts
        # (task_manager.cc, "unexpected system state") when a task it cancels is being dispatched at that moment,
        # which took the whole driver down with a C++ stack trace instead of the resume command.
        if interrupted or self.initialized_here:
            ray.shutdown()  # a local instance started here ends with it; a cluster is only disconnected

    # ---------------------------------------------------------------------------------- the probe

    def probe(self, jobs: list[Job]) -> None:
        """Check on every node that each environment the run needs is installed, before any cell runs."""
        needed = {}
        for job in jobs:
            refused = why_not(job.cell, job.backend, job.task)
            if (refused is None or refused[0] == "not-installed") and job.backend.name not in self.probed:
                needed[job.backend.name] = job.backend
        nodes = self.nodes()
        if not nodes:
            where = f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"
            raise UsageError(f"no node of {where} offers the resource {SLOT!r} that cells run on; start each node "
                             f"with `ray start ... --resources='{{\"{SLOT}\": 1}}'` (docs/cluster.md)")
        if not needed:
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        remote = self.ray.remote(_probe_node)
        refs = {remote.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node_id=n["NodeID"], soft=False)).remote(sorted(needed)): n for n in nodes}
        problems, answers = [], []
        gone = (self.ray.exceptions.TaskUnschedulableError, self.ray.exceptions.NodeDiedError,
                self.ray.exceptions.LocalRayletDiedError, self.ray.exceptions.WorkerCrashedError)
        ends = time.time() + PROBE_TIMEOUT_S
        for ref, node in refs.items():
            try:
                answers.append(self.ray.get(ref, timeout=max(1.0, ends - time.time())))
            except self.ray.exceptions.GetTimeoutError:
                raise UsageError(f"the probe of Ray node {node['NodeID'][:8]} ({node.get('NodeManagerAddress')}) did "
                                 f"not answer within {PROBE_TIMEOUT_S} s; check the cluster with `ray status`") from None
            except gone:  # a node that left the cluster since it was listed runs no cell: nothing to check
                continue
            except self.ray.exceptions.RayError as error:
                raise UsageError(f"the probe of Ray node {node['NodeID'][:8]} ({node.get('NodeManagerAddress')}) "
                                 f"failed: {_first_line(error)}; each node needs this project at the same path, "
                                 f"installed (docs/cluster.md)") from None
        for answer in answers:
            where = f"node {answer['node']['hostname']} ({answer['node']['address']}, Ray node " \
                    f"{answer['node']['ray_node_id'][:8]})"
            for name in answer["unknown"]:
                problems.append(f"{where} does not know backend {name} (its checkout at {answer['root']} differs: "
                                f"check out the same commit there)")
            for name, hint in answer["missing"]:
                problems.append(f"{where} lacks the environment of {name}: run `{hint}` in {answer['root']} there")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UsageError(problems[0] + more)
        self.probed |= set(needed)

    # ---------------------------------------------------------------------------------- cells

    def request(self, job: Job, nodes: list[dict]) -> dict | None:
        """What the cell asks Ray for, or None when no live node could ever give it."""
        largest_cpu = max(n["Resources"].get("CPU", 0) for n in nodes)
        resources = {SLOT: 1 / self.cells_per_node, **self.resources}
        options = {"num_cpus": max(1, min(job.threads or 1, int(largest_cpu) or 1)) if largest_cpu >= 1 else 0}
        if job.cell.device == "gpu":
            if self.gpu_resource == "GPU":
                options["num_gpus"] = 1
            else:
                resources[self.gpu_resource] = 1
        wants = {**resources, "CPU": options["num_cpus"], **({"GPU": 1} if "num_gpus" in options else {})}
        if not any(all(n["Resources"].get(k, 0) >= v for k, v in wants.items() if v) for n in nodes):
            return None
        return {**options, "resources": resources}

    def run(self, jobs: list[Job], on_start=None):
        if not jobs:
            return
        ray = self.connect()
        self.probe(jobs)
        nodes = self.nodes()
        remote = ray.remote(_run_on_node)
        # Cells that cannot run anywhere are answered here, as run_cell answers them (no node is involved).
        for job in jobs:
            refused = why_not(job.cell, job.backend, job.task)
            if refused is not None and refused[0] != "not-installed":
                yield job, self._stamp({**self._here(job),
                                        "status": refused[0], "verdict": refused[1]})
                continue
            options = self.request(job, nodes)
            if options is None:
                what = f"a GPU (resource {self.gpu_resource!r})" if job.cell.device == "gpu" else \
                    f"the resources {dict(self.resources)}"
                yield job, self._stamp({**self._here(job),
                                        "status": "skipped",
                                        "verdict": f"skipped: no node of the Ray cluster has {what}"})
                continue
            spec = {"cell": job.cell, "backend": job.backend.name, "task": job.task.name, "run_id": job.run_id,
                    "timeout": job.timeout, "threads": job.threads,
                    "log_dir": str(job.log_dir) if job.log_dir else None, "cells_per_node": self.cells_per_node}
            ref = remote.options(max_retries=self.retries, retry_exceptions=False, **options).remote(spec)
            self.in_flight[ref] = job
            if on_start is not None:
                on_start(job)
        while self.in_flight:
            done, _ = ray.wait(list(self.in_flight), num_returns=1)
            job = self.in_flight.pop(done[0])
            try:
                record = ray.get(done[0])
            except ray.exceptions.RayError as error:
                record = self._lost(job, error)
            yield job, self._stamp(record)

    def _lost(self, job: Job, error) -> dict:
        """The row of a cell Ray could not bring back after its retries (its node died, its Ray worker)."""
        text = _first_line(error)
        node_id = re.search(r"node id:? ?([0-9a-f]{16,})", str(error))
        address = re.search(r"address:? ?([0-9a-fA-F.:]+[0-9a-fA-F])", str(error))
        name = re.search(r"node name:? ?([^\s,]+)", str(error))
        died = isinstance(error, (self.ray.exceptions.NodeDiedError, self.ray.exceptions.LocalRayletDiedError)) \
            or "node" in text.lower() and ("dead" in text.lower() or "died" in text.lower())
        what = "node died" if died else f"Ray lost the cell ({type(error).__name__})"
        node = {"hostname": name.group(1) if name else None, "address": address.group(1) if address else None,
                "ray_node_id": node_id.group(1) if node_id else None, "cells_per_node": self.cells_per_node}
        where = ", ".join(str(v) for v in (node["hostname"], node["address"], node["ray_node_id"]) if v)
        return {**self._here(job), "status": "lost",
                "verdict": f"lost: {what}" + (f" ({where})" if where else "") + f" after {self.retries + 1} tries",
                "error": text, "node": node}

    def _here(self, job: Job) -> dict:
        """The start of a record answered by the driver: no node ran the cell, so it names no machine."""
        record = base_record(job.cell, job.backend, job.run_id, job.threads)
        record.pop("machine", None)
        return record

    def _stamp(self, record: dict) -> dict:
        record["executor"] = self.name
        if self.cells_per_node > 1:
            record["cells_per_node"] = self.cells_per_node
        return record


# -------------------------------------------------------------------------------------- on the node

def _first_line(error) -> str:
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


def _root() -> Path:
    from rosetta.registry import ROOT
    return ROOT


@lru_cache(maxsize=1)
def _registry():
    """The node's own registry, discovered once per Ray worker process (the same checkout as the driver's)."""
    from rosetta.registry import discover
    return discover()


def _node() -> dict:
    import ray
    return {"hostname": socket.gethostname(), "address": ray.util.get_node_ip_address(),
            "ray_node_id": ray.get_runtime_context().get_node_id()}


def _probe_node(backends: list[str]) -> dict:
    """Runs on one node: which of the run's backends this node's checkout does not know, or has not set up."""
    from rosetta import envs
    registry = _registry()
    unknown = [name for name in backends if name not in registry.backends]
    missing = [(name, envs.install_hint(registry.backends[name])) for name in backends
               if name in registry.backends and not envs.is_installed(registry.backends[name])]
    return {"node": _node(), "root": str(_root()), "unknown": unknown, "missing": missing,
            "python": sys.executable}


def _initial_environment() -> dict:
    """This process's environment as it was started (before Ray set OMP_NUM_THREADS for a task)."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    pairs = (item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {name: value for name, value in pairs}


def _run_on_node(spec: dict) -> dict:
    """One cell, as a Ray task: rosetta.runner.run_cell on this node, its record stamped with the node."""
    from rosetta.runner import run_cell
    registry = _registry()
    threads = spec["threads"]
    if not threads and "OMP_NUM_THREADS" not in _initial_environment():
        os.environ.pop("OMP_NUM_THREADS", None)  # Ray's per-task default; --threads 0 means the framework's own
    log_dir = Path(spec["log_dir"]) if spec["log_dir"] else None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
        except OSError:  # the run folder's path is not writable on this node: the log stays unwritten
            log_dir = None
    started = time.time()
    record = run_cell(spec["cell"], registry.backends[spec["backend"]], registry.task(spec["task"]), spec["run_id"],
                      spec["timeout"], threads, log_dir)
    record["node"] = {**_node(), "cells_per_node": spec["cells_per_node"]}
    record.setdefault("wall_s", time.time() - started)
    return record
