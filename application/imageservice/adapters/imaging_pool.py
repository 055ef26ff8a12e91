"""Imaging runners: where decodes and encodes run, and under which budget.

``ProcessImagingRunner`` (the service's): every imaging job runs in a child process, at most
``max_jobs`` at once per process. Each child lives under an address-space ceiling
(``RLIMIT_AS``) set by the kernel, so a decompression bomb meets a MemoryError (or dies) in
the child instead of growing a web worker; the parent kills a child that outlives the wall-clock
limit. Children are reused for light jobs and retired after a heavy one (peak RSS above
``heavy_rss_bytes``), after ``max_child_jobs`` jobs, and after ``idle_seconds`` without work,
so a spike never stays resident anywhere.

Starting a child costs ~150 ms (Python plus Pillow), more than the whole transfer of a 12 MP
JPEG's bytes to it (~1 ms) or of the derivatives back; docs/READY.md has the figures. So the
pool keeps ``warm_children`` spares: children started ahead of need that have never served a
job and wait for their first without a time limit (a fresh interpreter holds no spike).
``warm()`` starts them (a long-running job worker calls it; the Lambda and one-shot commands do
not, and keep no spares), and from then on a spare taken by a job is replaced on a background
thread once that job is over, so the replacement's start never competes with the job for CPU.
The bytes still travel through the socket rather than as a file path: the parent needs them
anyway (size, checksum, scanner), and a path would let the child read a file that changed after
those checks.

A child is a fresh interpreter (``subprocess``: fork + exec at once), never a fork of the
caller: a web worker has other threads (gunicorn's request threads, the embedded job thread,
SQLite handles) that may hold locks at the instant of a bare fork; the start (above) is paid
once per child, not per job. The child's side is imaging_child.py. multiprocessing's
forkserver would fork faster but re-imports the host's ``__main__`` script in every child
(gunicorn, the Lambda runtime, a benchmark script), which is not ours to control. Nothing starts
at import time or in the constructor.

``InlineImagingRunner`` runs the same calls in the caller's process without any budget: for unit
tests and tools, never wired by bootstrap.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Sequence

from ..core import errors as service_errors
from ..core.errors import ServiceError, TooExpensive, TooManyRequests, TransientError
from .imaging_child import run_imaging

log = logging.getLogger(__name__)

# A job whose peak RSS passed this retires its child: the memory it grew stays with the child
# (allocators seldom give it back), so the child goes rather than sit on it.
HEAVY_RSS_BYTES = 256 * 1024 * 1024
# A child that served this many jobs retires too (heap fragmentation creeps up slowly).
MAX_CHILD_JOBS = 100
# An idle child exits after this long; the parent reuses one only within half of it, so it
# never hands a job to a child that is just leaving.
IDLE_SECONDS = 10.0
# Pillow's freed image blocks (16 MiB each) a child keeps for its next job instead of handing
# them back to the kernel: a 12 MP job's ~6 ms of fresh page faults (docs/READY.md), for at most
# 64 MiB held by a child between jobs (it still leaves after idle_seconds).
CACHED_IMAGE_BLOCKS = 4
# How long a new child may take to start and answer before the job counts as not started.
START_SECONDS = 30.0
# What a child runs: imaging_child.child_main, given its socket's fd and its budget.
CHILD_CODE = "import sys; from imageservice.adapters.imaging_child import child_main; child_main(*sys.argv[1:])"
# Where the imageservice package is importable from, for children of a host that put it on
# sys.path by hand (the benchmarks) rather than installing it.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class ImagingBudget:
    """The limits, from settings: see ``Settings.imaging_*``."""

    max_jobs: int = 2  # heavy jobs at once per process
    memory_bytes: int = 1024 * 1024 * 1024  # RLIMIT_AS of each child
    timeout_seconds: float = 20.0  # wall clock per job
    queue_seconds: float = 5.0  # how long a job waits for a slot before giving up
    warm_children: int = 1  # spare children kept started, ready for the next job

    @classmethod
    def from_settings(cls, settings) -> "ImagingBudget":
        return settings.section(cls, prefix="imaging_")


def build_imaging_runner(settings) -> "ProcessImagingRunner":
    """The runner the service, the worker and the Lambda use (nothing starts until a job)."""
    return ProcessImagingRunner(ImagingBudget.from_settings(settings))


class InlineImagingRunner:
    """Imaging in the caller's own process and thread, with no budget at all (unit tests)."""

    def process(self, data: bytes, specs: Sequence, limits) -> Any:
        return run_imaging("process", data, (list(specs), limits))

    def warm(self) -> None:
        """Nothing to start: imaging runs in the caller."""

    def convert(self, data: bytes, request, limits, *, logo: bytes | None = None,
                max_output_bytes: int | None = None) -> Any:
        return run_imaging("convert", data, (request, limits, logo, max_output_bytes))


# --- the pool ---------------------------------------------------------------------------------


class ProcessImagingRunner:
    """Runs each imaging job in a budgeted child process (see the module docstring).

    Thread-safe: web request threads and the job thread share one runner per process.
    """

    def __init__(self, budget: ImagingBudget, *, heavy_rss_bytes: int = HEAVY_RSS_BYTES,
                 max_child_jobs: int = MAX_CHILD_JOBS, idle_seconds: float = IDLE_SECONDS):
        self.budget = budget
        self.heavy_rss_bytes = heavy_rss_bytes
        self.max_child_jobs = max_child_jobs
        self.idle_seconds = idle_seconds
        self._idle: list[_Child] = []  # used children within their idle time, and spares
        self._keep_warm = False  # warm() was asked for: spares are kept from then on
        self._reset_state()
        # Children of a runner nobody holds any more go with it (tests build many).
        weakref.finalize(self, _close_all, self._idle)

    def _reset_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._spare_started = threading.Condition(self._lock)  # told when a spare's start ends
        self._slots = threading.BoundedSemaphore(self.budget.max_jobs)
        self._idle.clear()  # after a fork these belong to the parent: forget, never signal them
        self._starting = 0  # spares being started on background threads
        self._closes = 0  # a spare whose start began before a close() is not kept after it

    # -- the port ------------------------------------------------------------------------------

    def process(self, data: bytes, specs: Sequence, limits) -> Any:
        return self._run("process", data, (list(specs), limits))

    def convert(self, data: bytes, request, limits, *, logo: bytes | None = None,
                max_output_bytes: int | None = None) -> Any:
        return self._run("convert", data, (request, limits, logo, max_output_bytes))

    def warm(self) -> None:
        """Start the spare children in the background (a worker calls this as it starts), so
        the first job finds one ready. Returns at once."""
        if self._pid != os.getpid():
            self._reset_state()
        self._keep_warm = True
        self._replenish()

    def close(self) -> None:
        """Stop the idle children (jobs in flight finish; their children retire after)."""
        with self._lock:
            self._closes += 1
            _close_all(self._idle)

    # -- internals -----------------------------------------------------------------------------

    def _run(self, kind: str, data: bytes, args: tuple) -> Any:
        if self._pid != os.getpid():  # a copy made by fork (gunicorn --preload): start afresh
            self._reset_state()
        if not self._slots.acquire(timeout=self.budget.queue_seconds):
            raise TooManyRequests(
                f"All {self.budget.max_jobs} imaging slots stayed busy for {self.budget.queue_seconds:g} s; "
                "try again shortly.",
                code="imaging_busy", retry_after=math.ceil(max(1.0, self.budget.queue_seconds)),
            )
        try:
            child = self._take_child()
            try:
                status, payload, stats = child.run(kind, args, data, self.budget.timeout_seconds)
            except BaseException:
                child.kill()
                raise
            child.jobs += 1
            if stats["retire"] or stats["peak_rss"] > self.heavy_rss_bytes or child.jobs >= self.max_child_jobs:
                child.close()
            else:
                self._give_back(child)
            peak_mib = stats["peak_rss"] // 2**20
            # One line per job: what each kind of input really costs, and what budget fits.
            log.info("imaging %s: %s in %.3f s, peak RSS %d MiB", kind, status, stats["seconds"], peak_mib,
                     extra={"imaging_job": kind, "imaging_outcome": status, "peak_rss_mib": peak_mib,
                            "imaging_seconds": round(stats["seconds"], 3)})
            return _result(status, payload)
        finally:
            self._slots.release()
            self._replenish()

    def _take_child(self) -> "_Child":
        """A used child still within its idle time first (it keeps the spare spare), else a
        spare (one whose start is under way is waited for: starting a second would only share
        the CPU with it), else a new child started now."""
        fresh_after = time.monotonic() - self.idle_seconds / 2
        with self._lock:
            self._spare_started.wait_for(lambda: self._idle or not self._starting, START_SECONDS)
            for child in list(self._idle):
                if (child.jobs and child.last_used < fresh_after) or not child.alive():
                    self._idle.remove(child)
                    child.close()
            used = [child for child in self._idle if child.jobs]
            if used or self._idle:
                child = max(used, key=lambda c: c.last_used) if used else self._idle[-1]
                self._idle.remove(child)
                return child
        return _Child(self.budget, self.idle_seconds)

    def _replenish(self) -> None:
        """Start spares on background threads until ``warm_children`` are idle or starting."""
        if not self._keep_warm:
            return
        with self._lock:
            missing = self.budget.warm_children - self._starting - sum(1 for c in self._idle if not c.jobs)
            self._starting += max(0, missing)
            closes = self._closes
        for _ in range(missing):
            threading.Thread(target=self._start_spare, args=(closes,), name="imaging-spare",
                             daemon=True).start()

    def _start_spare(self, closes: int) -> None:
        try:
            child = _Child(self.budget, self.idle_seconds)
        except TransientError as exc:  # the host's limits: the next job starts its own child
            log.warning("could not start a spare imaging child: %s", exc)
            child = None
        with self._lock:
            self._starting -= 1
            if child is not None and closes == self._closes:
                self._idle.append(child)
                child = None
            self._spare_started.notify_all()
        if child is not None:
            child.close()

    def _give_back(self, child: "_Child") -> None:
        child.last_used = time.monotonic()
        with self._lock:
            self._idle.append(child)


# Signals that stop a process on request, not because of what the job did: such a job is
# retried. Anything else (SIGKILL from the OOM killer, SIGSEGV/SIGABRT from a codec that ran out
# of memory, our own SIGALRM) is the job's doing.
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})


def _close_all(children: list) -> None:
    while children:
        children.pop().close()


def _result(status: str, payload: Any) -> Any:
    if status == "ok":
        return payload
    if status == "error":  # a ServiceError raised by the imaging code, rebuilt by name
        name, code, message, http_status = payload
        cls = getattr(service_errors, name, None)
        if not (isinstance(cls, type) and issubclass(cls, ServiceError)):
            cls = ServiceError
        error = cls.__new__(cls)
        ServiceError.__init__(error, message, code=code, status=http_status)
        raise error
    if status == "too_expensive":
        raise TooExpensive(payload)
    raise RuntimeError(f"the imaging job failed in its child process:\n{payload}")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (PACKAGE_ROOT, env.get("PYTHONPATH"))))
    # glibc reserves 64 MiB of address space per thread arena; the codecs' threads would spend
    # the RLIMIT_AS budget on reservations rather than on pixels.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.setdefault("PILLOW_BLOCKS_MAX", str(CACHED_IMAGE_BLOCKS))  # read by Pillow as it loads
    return env


class _Child:
    """One child process and the parent's end of its socket."""

    def __init__(self, budget: ImagingBudget, idle_seconds: float):
        parent_end, child_end = socket.socketpair()
        fd = child_end.fileno()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD_CODE, str(fd), str(budget.memory_bytes),
                 str(budget.timeout_seconds), str(idle_seconds)],
                pass_fds=[fd], env=_child_env(), stdin=subprocess.DEVNULL,
                # Its own process group: a stop signal to serve's group (Ctrl-C, a supervisor)
                # is for the parent, which finishes the job in hand and then closes the socket;
                # one reaching a child that is still starting up would kill it mid-job.
                process_group=0,
            )
        except OSError as exc:  # the host's process or memory limits
            parent_end.close()
            raise TransientError(f"could not start an imaging process: {exc}") from exc
        finally:
            child_end.close()
        self.conn = Connection(parent_end.detach())
        self.jobs = 0
        self.last_used = time.monotonic()
        try:
            ready = self.conn.poll(START_SECONDS) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise TransientError(f"the imaging process did not start (exit code {self.process.returncode})")

    def alive(self) -> bool:
        # An idle child has nothing to say: anything readable is the end of its socket.
        return self.process.poll() is None and not self.conn.poll(0)

    def run(self, kind: str, args: tuple, data: bytes, timeout: float) -> tuple[str, Any, dict]:
        started = time.monotonic()
        try:
            self.conn.send((kind, args))
            self.conn.send_bytes(data)
            if not self.conn.poll(timeout):
                self.kill()
                log.warning("imaging %s: killed after %g s", kind, timeout,
                            extra={"imaging_job": kind, "imaging_outcome": "timeout"})
                raise TooExpensive(f"The imaging job took longer than the {timeout:g} s allowed.")
            return self.conn.recv()
        except (EOFError, OSError):
            pass
        # The child died under the job: killed by the kernel, or a library aborted (out of
        # memory, most likely, as the address space is capped). The job is not retried.
        try:
            code = self.process.wait(1)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        log.warning("imaging %s: the child ended with %s after %.1f s", kind, code, time.monotonic() - started,
                    extra={"imaging_job": kind, "imaging_outcome": "died", "exit_code": code})
        if code is not None and -code in _STOP_SIGNALS:
            raise TransientError(f"the imaging process was stopped (signal {-code})")
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise TooExpensive(f"The imaging job ended abnormally ({how}), beyond its memory budget.")

    def close(self) -> None:
        """Let the child go: it exits when its socket closes (or it already has)."""
        self.conn.close()
        try:
            self.process.wait(0.5)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.conn.close()
