"""How busy the machine was while a cell ran: a timing taken beside another job is not a measurement.

Linux only (elsewhere: nothing is recorded, and the report says the load is unknown). At the start and the
end of the cell the worker reads /proc/stat (the CPU time every process on the machine took, and the time
the hypervisor stole) and the CPU time of its own session (the worker and every process it started: a
framework's helpers, data-parallel replicas). What the machine spent beyond the cell's own is what others
took while it ran.
"""

from __future__ import annotations

import os
import time

# A cell is flagged "busy" when other processes took more than this share of one CPU on average while it
# ran, or the hypervisor stole more than STEAL_SHARE of one CPU. A quiet machine measures a few percent
# (the system's daemons); one other single-threaded job, 100 %.
OTHERS_SHARE = 0.25
STEAL_SHARE = 0.10
MIN_SECONDS = 0.05  # below this, a share is the clock's 10 ms granularity, not a neighbour


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def _machine_cpu() -> tuple[float, float] | None:
    """(busy seconds of all CPUs, stolen seconds) since boot, from the first line of /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice: guest time is inside user already
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0.0] * 8)[:8]
    return (user + nice + system + irq + softirq) / _ticks(), steal / _ticks()


def _session_cpu(session: int | None) -> float:
    """CPU seconds of the live processes of one session (None: of this process alone), with their reaped
    children's."""
    total = 0.0
    for entry in ([e for e in os.listdir("/proc") if e.isdigit()] if session is not None else ["self"]):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:  # it ended meanwhile
            continue
        # after the command: state ppid pgrp session ... utime(11) stime(12) cutime(13) cstime(14)
        if session is None or int(fields[3]) == session:
            total += sum(float(v) for v in fields[11:15]) / _ticks()
    return total


class LoadMeter:
    """start() when the cell starts, stop() when it ends: what else ran on the machine meanwhile. The cell's
    own work is its session's (a worker leads a session of its own), or with own_session=False this
    process's alone."""

    def __init__(self, own_session: bool = True):
        self.own_session = own_session

    def start(self) -> "LoadMeter":
        self.session = os.getsid(0) if self.own_session else None
        self.wall = time.monotonic()
        self.machine = _machine_cpu()
        self.own = _session_cpu(self.session) if self.machine else 0.0
        self.loadavg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return self

    def stop(self) -> dict:
        wall = time.monotonic() - self.wall
        machine = _machine_cpu()
        found = {"wall_s": wall, "cpus": os.cpu_count(), "loadavg_1min_start": self.loadavg,
                 "loadavg_1min_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        if self.machine is None or machine is None or wall <= 0:
            return {**found, "measured": False}
        own = _session_cpu(self.session) - self.own
        busy, steal = machine[0] - self.machine[0], machine[1] - self.machine[1]
        others = max(busy - own, 0.0)
        found.update(measured=True, own_cpu_s=own, others_cpu_s=others, steal_s=steal,
                     others_share=others / wall, steal_share=steal / wall)
        found["busy"] = ((others > MIN_SECONDS and found["others_share"] > OTHERS_SHARE)
                         or (steal > MIN_SECONDS and found["steal_share"] > STEAL_SHARE))
        return found


def sample(seconds: float = 0.5) -> dict:
    """How busy the machine is right now, beside this process: what `rosetta run` says before it starts."""
    meter = LoadMeter(own_session=False).start()
    time.sleep(seconds)
    return meter.stop()
