"""The local queue's doorbell: a sender rings it after its job is committed, and a receiver that
found the queue empty waits on it instead of sleeping a fixed interval.

Two wires, one wait:

- **in this process**, a self-pipe (an ``os.pipe`` per process): the web thread that enqueued
  wakes the embedded job thread beside it;
- **across processes**, a FIFO beside the queue's database (``queue.sqlite3.wake``): ``serve``'s
  web processes wake an ``imageservice worker`` running alone, and each other.

A receiver blocks in one ``select`` on both file descriptors, so either wire wakes it; a
``threading.Condition`` could serve the first wire but a thread cannot block on a condition
and a file descriptor at once without a helper thread per process. Both wires are level-
triggered: a ring that lands between a receiver's empty look and its wait leaves a byte behind,
and the wait returns at once, so no wake-up is lost. A stale byte costs one extra look at the
queue. bench/bench_wakeup.py measured the choices; docs/READY.md has the figures.

The FIFO is opened read-write and non-blocking (Linux allows it for FIFOs): the open never
waits for a peer, a write never fails for want of a reader (the byte waits in the pipe, up to
its 64 KiB, beyond which rings are dropped: receivers are awake then anyway), and a reader never
sees end-of-file. Where no FIFO can be made (a filesystem without them), the doorbell rings in
this process only and the receiver's poll interval bounds the pickup across processes.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

# One read drains this many rings; more only means another read on the next wake.
DRAIN_BYTES = 4096


class Doorbell:
    """Wakes receivers waiting for jobs, in this process and in others sharing ``fifo_path``.

    Thread-safe and fork-aware: a process that forked (gunicorn's workers) opens its own
    descriptors on first use, so a ring in one process never reaches the other's self-pipe.
    Nothing is opened until the first ring or wait; the descriptors close with the doorbell.
    """

    def __init__(self, fifo_path: Path):
        self.fifo_path = Path(fifo_path)
        self._lock = threading.Lock()
        self._wires = _Wires()
        weakref.finalize(self, self._wires.close)

    def ring(self) -> None:
        """Wake the receivers waiting now (or the next to wait). Never blocks and never raises:
        it runs after the job is committed, and the receivers' poll interval is the backstop."""
        try:
            wires = self._open()
            for fd in (wires.pipe_write, wires.fifo):
                if fd is None:
                    continue
                try:
                    os.write(fd, b"!")
                except BlockingIOError:  # full of unread rings: the receivers are awake anyway
                    continue
        except OSError as exc:  # out of descriptors, say: the job waits for the next poll
            log.warning("could not ring the job queue's doorbell: %s", exc)

    def wait(self, timeout: float) -> bool:
        """Block until a ring or ``timeout`` seconds; whether a ring came. Drains the rings seen,
        so the next wait blocks again."""
        wires = self._open()
        # poll, not select: a busy web process's descriptors may number past select's 1024.
        waiting = select.poll()
        for fd in (wires.pipe_read, wires.fifo):
            if fd is not None:
                waiting.register(fd, select.POLLIN)
        readable = waiting.poll(max(0.0, timeout) * 1000)
        for fd, _ in readable:
            _drain(fd)
        return bool(readable)

    def close(self) -> None:
        with self._lock:
            self._wires.close()

    def _open(self) -> "_Wires":
        with self._lock:
            if self._wires.pid != os.getpid():  # first use, or a copy made by fork: our own wires
                self._wires.forget()  # a fork's inherited descriptors stay the parent's to close
                self._wires.pipe_read, self._wires.pipe_write = os.pipe()
                os.set_blocking(self._wires.pipe_read, False)
                os.set_blocking(self._wires.pipe_write, False)
                self._wires.fifo = _open_fifo(self.fifo_path)
                self._wires.pid = os.getpid()
            return self._wires


class _Wires:
    """The open descriptors of one process's doorbell."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pipe_read: int | None = None
        self.pipe_write: int | None = None
        self.fifo: int | None = None

    def close(self) -> None:
        if self.pid == os.getpid():
            for fd in (self.pipe_read, self.pipe_write, self.fifo):
                if fd is not None:
                    os.close(fd)
        self.forget()

    def forget(self) -> None:
        self.pid = self.pipe_read = self.pipe_write = self.fifo = None


def _open_fifo(path: Path) -> int | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass  # another process made it: share it
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            log.warning("%s is not a FIFO; jobs wake workers in this process only", path)
            return None
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # a filesystem without FIFOs, permissions: the poll interval remains
        log.warning("no FIFO at %s (%s); jobs wake workers in this process only", path, exc)
        return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, DRAIN_BYTES):
            pass
    except BlockingIOError:
        return
