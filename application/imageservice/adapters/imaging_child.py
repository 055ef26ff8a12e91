"""An imaging child's side of the pool (imaging_pool.py): serve jobs from the inherited socket
under the memory ceiling, and tell the parent how each went. Also ``run_imaging``, the one
imaging call both runners make."""

from __future__ import annotations

import math
import resource
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from ..core.errors import ServiceError

# The child's own alarm fires this long after the parent should have killed it: a backstop for
# a child whose parent died mid-job.
WATCHDOG_GRACE_SECONDS = 5

# A failed job whose address space came this close to the ceiling failed for want of memory,
# whatever the library made of it (encoder error codes, "can't start new thread", ...).
NEAR_CEILING = 0.9


def run_imaging(kind: str, data: bytes, args: tuple) -> Any:
    """One imaging call: ``process`` (specs, limits) or ``convert`` (request, limits, logo,
    max_output_bytes)."""
    from ..core import imaging

    if kind == "process":
        specs, limits = args
        return imaging.process_image(data, specs, limits)
    request, limits, logo, max_output_bytes = args
    return imaging.convert_image(data, request, limits, logo=logo, max_output_bytes=max_output_bytes)



# --- the child's side -------------------------------------------------------------------------


def child_main(fd: str | int, memory_bytes: str | int, timeout_seconds: str | float, idle_seconds: str | float) -> None:
    """A child's life (``CHILD_CODE``): serve jobs from the inherited socket ``fd`` until it
    closes or stays idle ``idle_seconds``; exit after a job that must retire."""
    memory, alarm = int(memory_bytes), math.ceil(float(timeout_seconds)) + WATCHDOG_GRACE_SECONDS
    conn = Connection(int(fd))
    from ..core import imaging

    imaging.warm_up()  # before the first job's clock starts, and before the memory ceiling

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort leaves no core file behind
    # A stop signal to the whole process group (Ctrl-C, systemd, a test harness) is for the
    # parent, which finishes its current job and then closes our socket: dying mid-job here
    # would turn a graceful stop into a failed image.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send("ready")
    # The first job is awaited without a limit (a spare waits for it), later ones idle_seconds.
    served = 0
    while conn.poll(float(idle_seconds) if served else None):
        served += 1
        try:
            kind, args = conn.recv()
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        _reset_peak_rss()
        started = time.monotonic()
        signal.alarm(alarm)  # a backstop should the parent die mid-job: its default action kills
        status, payload = _serve_one(kind, data, args, memory)
        signal.alarm(0)
        del data, args
        stats = {"seconds": time.monotonic() - started, "peak_rss": _status_bytes("VmHWM"),
                 "retire": status == "too_expensive" or _near_ceiling(memory)}
        try:
            conn.send((status, payload, stats))
        except MemoryError:  # pickling a large result did not fit under the ceiling
            del payload
            conn.send(("too_expensive", _over_memory_message(memory), {**stats, "retire": True}))
        except (EOFError, OSError):
            return
        if stats["retire"]:
            return


def _serve_one(kind: str, data: bytes, args: tuple, memory_bytes: int) -> tuple[str, Any]:
    try:
        return "ok", run_imaging(kind, data, args)
    except MemoryError:
        return "too_expensive", _over_memory_message(memory_bytes)
    except ServiceError as exc:
        # The imaging code turns decoder failures (MemoryError included) into rejections.
        if _caused_by_memory(exc) or _near_ceiling(memory_bytes) or _beyond_headroom(exc, memory_bytes):
            return "too_expensive", _over_memory_message(memory_bytes)
        return "error", (type(exc).__name__, exc.code, exc.message, exc.status)
    except Exception as exc:  # a library failing for want of memory, or a bug: told apart below
        if _near_ceiling(memory_bytes):
            return "too_expensive", _over_memory_message(memory_bytes)
        return "failed", "".join(traceback.format_exception(exc))[-4000:]


def _over_memory_message(memory_bytes: int) -> str:
    return f"The imaging job needed more than the {memory_bytes // 2**20} MiB of memory allowed."


def _caused_by_memory(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _beyond_headroom(exc: ServiceError, memory_bytes: int) -> bool:
    """A decode that failed while its pixels alone could not fit in what the ceiling leaves:
    libwebp reports a refused allocation as "could not create decoder object", and how far the
    address space got before the refusal depends on what the child already holds."""
    needed = getattr(exc, "decoded_bytes", None)
    return bool(needed) and needed >= memory_bytes - _status_bytes("VmSize")


def _near_ceiling(memory_bytes: int) -> bool:
    return _status_bytes("VmPeak") >= NEAR_CEILING * memory_bytes


def _reset_peak_rss() -> None:
    """Make VmHWM measure this job alone (Linux: writing 5 to clear_refs resets the peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass  # then VmHWM is the child's lifetime peak: it retires sooner, never later


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status in bytes; 0 where there is no /proc."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
