"""CPU time during a step: each lane's worker processes, and the machine as a whole.

Read with psutil while the round runs (the processes are gone once it ends): the first
reading after the load starts and the last before the stack stops bound the step. A
prefork worker's children come and go; each is read while it lives and its last reading
kept.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

READ_EVERY_S = 1.0


@dataclass
class _Tree:
    """A worker and its children: the last CPU time read of each process."""

    root: int
    seen: dict[int, float] = field(default_factory=dict)
    handles: dict[int, psutil.Process] = field(default_factory=dict)

    def read(self) -> float:
        with contextlib.suppress(psutil.Error):
            root = self.handles.setdefault(self.root, psutil.Process(self.root))
            for child in root.children(recursive=True):
                self.handles.setdefault(child.pid, child)
        for pid, process in list(self.handles.items()):
            try:
                times = process.cpu_times()
            except psutil.Error:
                self.handles.pop(pid)
                continue
            self.seen[pid] = times.user + times.system
        return sum(self.seen.values())


@dataclass
class CpuSampler:
    """`read(pids)` as often as you like (at most once a second counts); then the figures."""

    trees: dict[str, _Tree] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    machine_first: tuple[float, float] | None = None
    machine_last: tuple[float, float] | None = None
    machine_peak: float | None = None  # the busiest interval between two readings
    read_at: float = 0.0

    def read(self, workers: Mapping[str, int]) -> None:
        """`workers`: each lane's worker PID."""
        now = time.monotonic()
        if now - self.read_at < READ_EVERY_S and self.machine_first is not None:
            return
        self.read_at = now
        for lane, pid in workers.items():
            total = self.trees.setdefault(lane, _Tree(pid)).read()
            self.first.setdefault(lane, total)
            self.last[lane] = total
        machine = psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        # Linux counts guest time inside user time already: leave it out of the total.
        total = sum(machine) - getattr(machine, "guest", 0.0) - getattr(machine, "guest_nice", 0.0)
        reading = (total - idle, total)
        if self.machine_first is None:
            self.machine_first = reading
        elif self.machine_last is not None and reading[1] > self.machine_last[1]:
            second = (reading[0] - self.machine_last[0]) / (reading[1] - self.machine_last[1])
            self.machine_peak = max(self.machine_peak or 0.0, second)
        self.machine_last = reading

    def worker_cpu_s(self, lane: str) -> float | None:
        if lane not in self.first or self.machine_first == self.machine_last:
            return None  # not read, or read once: no time between two readings
        return self.last[lane] - self.first[lane]

    def machine_busy(self) -> float | None:
        """Busy share of every core between the first reading and the last."""
        if self.machine_first is None or self.machine_last is None:
            return None
        busy = self.machine_last[0] - self.machine_first[0]
        total = self.machine_last[1] - self.machine_first[1]
        return busy / total if total > 0 else None


def machine_busy_now(over_s: float = 1.0) -> float:
    """The busy share of every core over the next `over_s`: what else runs on the machine."""
    return psutil.cpu_percent(interval=over_s) / 100
