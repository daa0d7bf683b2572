"""The Ray executor (rosetta/executors/ray.py) on a real two-node Ray cluster started on this machine
(ray.cluster_utils.Cluster), every address on the loopback interface, one node offering a custom resource
that stands for a GPU. Each test is bounded in time (a SIGALRM deadline, subprocess timeouts); the module
ends by shutting the cluster down and checking that no Ray process of it is left.

What it shows (issue 15): float64 records identical to the local executor's, losses bit for bit; the "GPU"
cell lands on the node with the resource; a node removed under a cell: the cell runs again elsewhere and
comes back once (or, with no retry left, as one "lost: node died" row); a node missing an environment is a
one-line error before any cell runs; `--resume` finishes a run whose driver was killed; no connection of
the cluster or of the driver leaves 127.0.0.1; missing Ray is a one-line error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

# Before Ray is imported (it reads this once): keep the head, the nodes and the driver on 127.0.0.1.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from conftest import BACKENDS, REGISTRY, ROOT, make_cell, rosetta  # noqa: E402

from rosetta import envs  # noqa: E402
from rosetta.executors import Job  # noqa: E402

from rosetta.executors.ray import SLOT, RayExecutor  # noqa: E402

try:
    import ray
    from ray.cluster_utils import Cluster
except ImportError:  # the test of the missing-Ray error still runs
    ray = None

CLI_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Tiny problems: the classifier at 2000 points (every recipe's batch fits), 5 steps.
SMALL = ("--task", "classifier", "--size", "2000", "--steps", "5", "--device", "cpu", "--precision", "float64")
NUMPY = BACKENDS["numpy"]
TORCH = BACKENDS["torch"]
HAS_TORCH = envs.is_installed(TORCH)


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail the test (TimeoutError in the main thread) if it runs longer than this."""
    def expired(signum, frame):
        raise TimeoutError(f"the test ran past its {seconds:g} s deadline")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------------------ processes, sockets

def pids_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _ip(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # four little-endian 32-bit words
    return socket.inet_ntop(socket.AF_INET6, words)


def tcp_sockets() -> dict:
    """inode -> (local ip, local port, remote ip, remote port, state) of every TCP socket (/proc/net/tcp*)."""
    table = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            (lip, lport), (rip, rport) = local.split(":"), remote.split(":")
            table[inode] = (_ip(lip), int(lport, 16), _ip(rip), int(rport, 16), "LISTEN" if state == "0A" else state)
    return table


def sockets_of(pid: int) -> set:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "0.0.0.0", "::") or ip.startswith("::ffff:127.")


def outside_connections(pids) -> list[str]:
    """Every TCP socket of these processes that is bound to, or talks to, an address off the loopback interface
    (0.0.0.0 as the remote end of a listening socket is no address at all)."""
    table = tcp_sockets()
    bad = []
    for pid in pids:
        for inode in sockets_of(pid):
            if inode in table:
                lip, lport, rip, rport, state = table[inode]
                bound_outside = lip in ("0.0.0.0", "::") or not loopback(lip)
                if bound_outside or (state != "LISTEN" and not loopback(rip)):
                    bad.append(f"pid {pid}: {lip}:{lport} -> {rip}:{rport} ({state})")
    return bad


# ------------------------------------------------------------------------------------------ the cluster

class TwoNodes:
    """A head and one node, 1 CPU each, both offering rosetta_node; the second also `fake_gpu`."""

    def __init__(self):
        self.temp = tempfile.mkdtemp(prefix="rosetta-ray-", dir="/tmp")  # short: Ray's socket paths are long
        self.seen: set = set()
        self.before = descendants(os.getpid())  # what earlier tests of the session left below this process
        self.cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=1, resources={SLOT: 1}, node_ip_address="127.0.0.1", include_dashboard=False,
            temp_dir=self.temp))
        self.gpu_node = self.add(resources={SLOT: 1, "fake_gpu": 1})
        self.cluster.wait_for_nodes()
        self.address = self.cluster.address
        self.closed = False

    def add(self, **args):
        return self.cluster.add_node(num_cpus=args.pop("num_cpus", 1), node_ip_address="127.0.0.1", **args)

    def processes(self) -> list[int]:
        """The cluster's processes: those below this test process (its nodes, their Ray workers, the cells'
        workers), and any that name its temporary folder (an orphan would)."""
        found = sorted(set(pids_with(self.temp)) | (descendants(os.getpid()) - self.before))
        self.seen |= set(found)
        return found

    def left(self) -> list[int]:
        """Processes of the cluster still running (after shutdown nothing should be; an exited process that
        its parent has not reaped yet, a zombie, runs nothing)."""
        return sorted(pid for pid in (self.seen | set(self.processes())) if running(pid))

    def shutdown(self):
        if not self.closed:
            self.closed = True
            if ray.is_initialized():
                ray.shutdown()
            self.cluster.shutdown()
            shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    if ray is None:
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    with deadline(120):
        nodes = TwoNodes()
    yield nodes
    nodes.shutdown()


def job(cell, backend, **kwargs) -> Job:
    return Job(cell, backend, REGISTRY.task(cell.task), run_id="test-ray", threads=1, **kwargs)


def records_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------ without a cluster

def test_missing_ray_is_a_one_line_error_naming_the_install_command(tmp_path):
    args = ["run", *SMALL, "--backend", "numpy", "--executor", "ray", "--out", str(tmp_path)]
    code = f"import sys; sys.modules['ray'] = None\nfrom rosetta.cli import main\nsys.exit(main({args!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("rosetta: error:")]
    assert len(errors) == 1 and "pip install -e '.[ray]'" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir()), "the error comes before a run folder is made"


# ------------------------------------------------------------------------------------------ on the cluster

def test_float64_records_are_identical_to_the_local_executors(cluster, tmp_path):
    backends = "numpy,torch" if HAS_TORCH else "numpy"
    args = [*SMALL, "--backend", backends, "--recipe", "manual-sgd,adam", "--out", str(tmp_path)]
    local = rosetta("run", *args, "--name", "local", timeout=300)
    assert local.returncode == 0, local.stderr
    on_ray = rosetta("run", *args, "--name", "ray", "--executor", "ray", "--address", cluster.address,
                     env=CLI_ENV, timeout=300)
    assert on_ray.returncode == 0, on_ray.stderr
    ours = {r["cell"] + r["backend"]: r for r in records_of(tmp_path / "local")}
    theirs = {r["cell"] + r["backend"]: r for r in records_of(tmp_path / "ray")}
    assert ours.keys() == theirs.keys() and len(ours) == (4 if HAS_TORCH else 2)
    for key, mine in ours.items():
        other = theirs[key]
        assert mine["status"] == other["status"] == "ok", (key, other.get("verdict"))
        assert json.dumps(mine["losses"]) == json.dumps(other["losses"]), key  # bit for bit, as JSON's repr
        assert mine["metrics"] == other["metrics"] and mine["verdict"] == other["verdict"], key
        assert mine["executor"] == "local" and other["executor"] == "ray"
        node = other["node"]
        assert node["address"] == "127.0.0.1" and node["hostname"] == socket.gethostname()
        assert len(node["ray_node_id"]) >= 16 and node["cells_per_node"] == 1
    report = (tmp_path / "ray" / "report.md").read_text()
    assert "Ray node" in report


def test_a_sweep_on_the_cluster_is_the_same_command_and_the_same_report(cluster, tmp_path):
    args = ["--task", "classifier", "--backend", "numpy", "--device", "cpu", "--hidden", "12,32", "--batch-size",
            "20", "--steps", "4", "--ceiling-size", "128", "--out", str(tmp_path), "--name", "sweep"]
    result = rosetta("sweep", *args, "--executor", "ray", "--address", cluster.address, env=CLI_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = records_of(tmp_path / "sweep")
    assert sorted(r["role"] for r in records) == ["ceiling", "ceiling", "check", "check", "timed", "timed"]
    assert all(r["status"] == "ok" and r["executor"] == "ray" for r in records), [r.get("verdict") for r in records]
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Fastest at each size (cpu)" in report and "## The machine's ceiling" in report


def test_the_gpu_cell_lands_on_the_node_with_the_resource_and_no_traffic_leaves_loopback(cluster):
    if not HAS_TORCH:
        pytest.skip("PyTorch is not installed (a GPU cell needs a backend with GPU support): rosetta setup torch")
    gpu_cell = make_cell("classifier", TORCH, recipe="manual-sgd", size=2000, steps=5, device="gpu")
    cpu_cells = [make_cell("classifier", NUMPY, recipe=r, size=2000, steps=5) for r in ("manual-sgd", "adam")]
    with deadline(240):
        with RayExecutor(cluster.address, gpu_resource="fake_gpu") as executor:
            got = list(executor.run([job(gpu_cell, TORCH), *[job(c, NUMPY) for c in cpu_cells]]))
            # While the driver is still connected: the cluster's processes and this driver talk on 127.0.0.1 only.
            outside = outside_connections([os.getpid(), *cluster.processes()])
    assert not outside, "\n".join(outside)
    assert len(got) == 3
    by_cell = {record["cell"] + record["backend"]: record for _, record in got}
    gpu = by_cell[gpu_cell.id + "torch"]
    assert gpu["node"]["ray_node_id"] == cluster.gpu_node.node_id, gpu["node"]
    assert gpu["status"] in ("ok", "skipped"), gpu.get("verdict")  # the fake GPU is no CUDA device
    for cell in cpu_cells:
        assert by_cell[cell.id + "numpy"]["status"] == "ok"
    with deadline(120):  # a GPU cell that no node could take is a row, not a wait for ever
        with RayExecutor(cluster.address, gpu_resource="no_such_gpu") as executor:
            [(_, nowhere)] = list(executor.run([job(gpu_cell, TORCH)]))
    assert nowhere["status"] == "skipped" and "no node of the Ray cluster has a GPU" in nowhere["verdict"]


def test_a_node_without_an_environment_is_a_one_line_error_before_any_cell_runs(cluster, tmp_path):
    with deadline(60):  # a node whose reference environment is missing (its interpreter does not exist)
        broken = cluster.add(resources={SLOT: 1}, env_vars={"ROSETTA_PYTHON_NUMPY": "/nonexistent/bin/python"})
    try:
        result = rosetta("run", *SMALL, "--backend", "numpy", "--recipe", "manual-sgd", "--executor", "ray",
                         "--address", cluster.address, "--out", str(tmp_path), "--name", "broken", env=CLI_ENV,
                         timeout=180)
    finally:
        with deadline(60):
            cluster.cluster.remove_node(broken)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("rosetta: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "lacks the environment of numpy" in lines[0] and "rosetta setup numpy" in lines[0], lines[0]
    assert broken.node_id[:8] in lines[0], lines[0]
    assert not (tmp_path / "broken" / "results.jsonl").exists()  # no cell ran


def _run_in_thread(executor, jobs):
    out: dict = {"records": [], "error": None}

    def consume():
        try:
            out["records"] = list(executor.run(jobs))
        except BaseException as error:  # reported by the test
            out["error"] = error
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread, out


SEEN_WORKERS: list[int] = []  # the cells' workers these tests saw started by the cluster


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants(root: int) -> set:
    """Every process below this one (the cluster's nodes are children of this test process)."""
    children: dict = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(parent_of(int(entry.name)), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait_for_worker(cluster, seconds: float) -> int:
    """The pid of a cell's worker started by this cluster (other runs on this machine have workers of their
    own): a descendant of this test process."""
    ends = time.time() + seconds
    while time.time() < ends:
        ours = descendants(os.getpid())
        found = [pid for pid in pids_with("-m rosetta.worker") if pid in ours]
        if found:
            SEEN_WORKERS.extend(found)
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the cell's worker never started")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _machine_dies(cluster, node, worker: int) -> None:
    """Everything of the node at once, as when its machine goes: the Ray worker running the cell, the cell's
    worker (in a session of its own, it would outlive its node here), then the node's own processes."""
    with contextlib.suppress(ProcessLookupError, TypeError):
        os.kill(parent_of(worker), signal.SIGKILL)
    _kill(worker)
    cluster.cluster.remove_node(node, allow_graceful=False)


# A cell long enough to be caught running on a quiet machine (numpy by hand: some 30 us a step, so 10 s or so):
# with 10,000 steps it could end before its node was removed.
LONG_STEPS = 300_000


def test_a_node_removed_under_a_cell_reruns_it_elsewhere_and_one_record_comes_back(cluster):
    # A long cell (a few seconds) confined to nodes offering "doomed", so that it starts on the one we remove.
    cell = make_cell("classifier", NUMPY, recipe="manual-sgd", size=2000, steps=LONG_STEPS)
    with deadline(240):
        doomed = cluster.add(resources={SLOT: 1, "doomed": 1})
        with RayExecutor(cluster.address, resources={"doomed": 0.5}, retries=2) as executor:
            thread, out = _run_in_thread(executor, [job(cell, NUMPY)])
            _machine_dies(cluster, doomed, _wait_for_worker(cluster, 60))
            assert thread.is_alive(), "the cell ended before its node was removed"
            spare = cluster.add(resources={SLOT: 1, "doomed": 1})  # the retry waits for a node that can take it
            thread.join(180)
            assert not thread.is_alive() and out["error"] is None, out["error"]
        cluster.cluster.remove_node(spare)
    assert len(out["records"]) == 1, out["records"]
    [(_, record)] = out["records"]
    assert record["status"] == "ok", record.get("verdict")
    assert record["node"]["ray_node_id"] == spare.node_id != doomed.node_id


def test_a_node_removed_under_a_cell_with_no_retry_left_is_one_lost_row(cluster):
    cell = make_cell("classifier", NUMPY, recipe="manual-sgd", size=2000, steps=LONG_STEPS)
    with deadline(180):
        doomed = cluster.add(resources={SLOT: 1, "doomed_too": 1})
        with RayExecutor(cluster.address, resources={"doomed_too": 0.5}, retries=0) as executor:
            thread, out = _run_in_thread(executor, [job(cell, NUMPY)])
            _machine_dies(cluster, doomed, _wait_for_worker(cluster, 60))
            thread.join(150)
            assert not thread.is_alive() and out["error"] is None, out["error"]
    assert len(out["records"]) == 1, out["records"]
    [(_, record)] = out["records"]
    assert record["status"] == "lost" and record["verdict"].startswith("lost: node died"), record["verdict"]
    assert record["executor"] == "ray"


def test_resume_finishes_a_run_whose_driver_was_killed(cluster, tmp_path):
    args = ["run", "--task", "classifier", "--size", "2000", "--steps", "3000", "--device", "cpu", "--precision",
            "float64", "--backend", "numpy", "--executor", "ray", "--address", cluster.address,
            "--out", str(tmp_path), "--name", "killed"]
    driver = subprocess.Popen([sys.executable, "-m", "rosetta", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, **CLI_ENV})
    results = tmp_path / "killed" / "results.jsonl"
    try:
        ends = time.time() + 180
        while time.time() < ends and not (results.exists() and results.read_text().count("\n") >= 1):
            assert driver.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        driver.kill()  # SIGKILL: no handler runs, whatever was in flight is lost with the driver
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    before = records_of(tmp_path / "killed")
    assert before, "no cell finished within 180 s, so the driver was killed before it had written anything"
    assert len(before) < 4, "every cell had finished before the kill: nothing was left for --resume to do"
    resumed = rosetta("run", "--resume", str(tmp_path / "killed"), env=CLI_ENV, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = records_of(tmp_path / "killed")
    assert sorted(r["cell"] for r in after) == sorted({r["cell"] for r in after})  # none written twice
    assert len(after) == 4 and all(r["status"] == "ok" and r["executor"] == "ray" for r in after)


def test_kill_cancels_the_queued_cells_and_prints_the_resume_command(cluster, tmp_path):
    args = ["run", "--task", "classifier", "--size", "2000", "--steps", "3000", "--device", "cpu", "--precision",
            "float64", "--backend", "numpy", "--executor", "ray", "--address", cluster.address,
            "--out", str(tmp_path), "--name", "stopped"]
    driver = subprocess.Popen([sys.executable, "-m", "rosetta", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **CLI_ENV})
    results = tmp_path / "stopped" / "results.jsonl"
    try:
        ends = time.time() + 180
        while time.time() < ends and not (results.exists() and results.read_text().count("\n") >= 1):
            assert driver.poll() is None, "the run ended before it could be stopped"
            time.sleep(0.05)
        driver.terminate()  # `kill`: handled as Ctrl-C is (rosetta/cli.py), not by Ray's own handler
        _, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr
    assert f"rosetta run --resume {tmp_path / 'stopped'}" in stderr, stderr
    assert len(records_of(tmp_path / "stopped")) < 4


def test_a_local_instance_is_started_on_loopback_and_shut_down(tmp_path):
    if ray is None:
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    before = set(pids_with("raylet")) | set(pids_with("gcs_server"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}  # the executor sets it
    result = subprocess.run([sys.executable, "-m", "rosetta", "run", *SMALL, "--backend", "numpy", "--recipe",
                             "manual-sgd", "--executor", "ray", "--out", str(tmp_path), "--name", "local-ray"],
                            capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    [record] = records_of(tmp_path / "local-ray")
    assert record["status"] == "ok" and record["node"]["address"] == "127.0.0.1"
    time.sleep(1)
    left = (set(pids_with("raylet")) | set(pids_with("gcs_server"))) - before
    assert not left, f"Ray processes left running: {sorted(left)}"


def test_zz_no_ray_process_of_the_cluster_is_left(cluster):
    """Last in this module: shut the cluster down and look for anything of it still running."""
    with deadline(120):
        assert len(cluster.processes()) > 2  # the head's and the node's processes, seen before they end
        cluster.shutdown()
        ends = time.time() + 30
        while cluster.left() and time.time() < ends:
            time.sleep(0.5)
    assert not cluster.left(), f"Ray processes left running: {cluster.left()}"
    alive = [pid for pid in SEEN_WORKERS if running(pid)]
    assert not alive, f"cells' workers outlived the cluster: {alive}"
