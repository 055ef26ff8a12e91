"""Memory of a process group from /proc (Linux): what the abuse suite and the attack benchmark
measure a server by, every process of it included (gunicorn's master and workers, the imaging
children)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass
class ProcessMemory:
    pid: int
    command: str
    rss: int  # bytes resident now
    peak: int  # VmHWM: the most it has had resident (since start, or its last reset)


def group_processes(pgid: int) -> list[ProcessMemory]:
    """Every live process of the process group ``pgid``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) != pgid or fields[0] == "Z":
            continue
        found.append(ProcessMemory(int(entry.name), command, _kib(status, "VmRSS"), _kib(status, "VmHWM")))
    return found


def group_rss(pgid: int) -> int:
    return sum(p.rss for p in group_processes(pgid))


def _kib(status: str, field: str) -> int:
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """Calls ``sample()`` every ``interval`` s on a thread while used as a context manager."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        raise NotImplementedError


class GroupMonitor(Sampler):
    """Samples a process group every ``interval`` s on a thread: the highest peak RSS each
    process reached while watched (short-lived imaging children included) and the group's
    highest total."""

    def __init__(self, pgid: int, interval: float = 0.05):
        super().__init__(interval)
        self.pgid = pgid
        self.peaks: dict[int, ProcessMemory] = {}
        self.max_total = 0

    def sample(self) -> None:
        processes = group_processes(self.pgid)
        for process in processes:
            seen = self.peaks.get(process.pid)
            if seen is None or process.peak > seen.peak:
                self.peaks[process.pid] = process
        self.max_total = max(self.max_total, sum(p.rss for p in processes))

    def highest(self) -> ProcessMemory | None:
        return max(self.peaks.values(), key=lambda p: p.peak, default=None)


def wait_for_group_rss_below(pgid: int, limit: int, timeout: float) -> float:
    """Seconds until the group's total RSS fell below ``limit``; AssertionError after ``timeout``."""
    started = time.monotonic()
    while True:
        total = group_rss(pgid)
        if total < limit:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            detail = ", ".join(f"{p.pid} {p.rss // 2**20} MiB {p.command[:60]}" for p in group_processes(pgid))
            raise AssertionError(f"group RSS {total // 2**20} MiB after {timeout}s: {detail}")
        time.sleep(0.2)


def tree_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (disk growth of a data dir)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
