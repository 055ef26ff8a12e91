"""How fast can a sender wake an idle job worker? The candidates for the local queue's doorbell
(application/imageservice/adapters/local/doorbell.py), measured bare, without SQLite:

- in one process: a ``threading.Condition``, and a self-pipe under ``select`` (what ships);
- across processes: a FIFO (what ships) and a Unix datagram socket, each under ``select``;
- the old way for scale: a receiver that looks every 50 ms (the SQLite queue's former sleep).

    .venv/bin/python bench/bench_wakeup.py [--tries 200]

Each try: the receiver is blocked, the sender stamps ``perf_counter`` and rings; the receiver
stamps when it wakes (the clock is system-wide, so the stamps compare across processes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import select
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

OLD_POLL_SECONDS = 0.05


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{name:44} p50 {statistics.median(ordered) * 1e6:8.0f} us   p99 {p99 * 1e6:8.0f} us"


def _in_process(tries: int, wait_for_ring, ring) -> list[float]:
    """A receiver thread blocked in ``wait_for_ring()``; this thread stamps and calls ``ring()``."""
    woke, woken_at = threading.Event(), []

    def receiver() -> None:
        for _ in range(tries):
            wait_for_ring()
            woken_at.append(time.perf_counter())
            woke.set()

    thread = threading.Thread(target=receiver)
    thread.start()
    rung_at = []
    for _ in range(tries):
        time.sleep(0.002 + random.random() * 0.002)
        woke.clear()
        rung_at.append(time.perf_counter())
        ring()
        woke.wait()
    thread.join()
    return [b - a for a, b in zip(rung_at, woken_at)]


def in_process_condition(tries: int) -> list[float]:
    condition, rung = threading.Condition(), [False]

    def wait_for_ring() -> None:
        with condition:
            condition.wait_for(lambda: rung[0])
            rung[0] = False

    def ring() -> None:
        with condition:
            rung[0] = True
            condition.notify()

    return _in_process(tries, wait_for_ring, ring)


def in_process_self_pipe(tries: int) -> list[float]:
    read_fd, write_fd = os.pipe()

    def wait_for_ring() -> None:
        select.select([read_fd], [], [])
        os.read(read_fd, 4096)

    try:
        return _in_process(tries, wait_for_ring, lambda: os.write(write_fd, b"!"))
    finally:
        os.close(read_fd)
        os.close(write_fd)


def _fifo_receiver(path: str, tries: int, answers) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    answers.put("ready")
    for _ in range(tries):
        select.select([fd], [], [])
        os.read(fd, 4096)
        answers.put(time.perf_counter())


def _datagram_receiver(path: str, tries: int, answers) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    answers.put("ready")
    for _ in range(tries):
        select.select([sock], [], [])
        sock.recv(4096)
        answers.put(time.perf_counter())


def _poll_receiver(path: str, tries: int, answers) -> None:
    answers.put("ready")
    for _ in range(tries):
        while not os.path.exists(path):
            time.sleep(OLD_POLL_SECONDS)
        os.unlink(path)
        answers.put(time.perf_counter())


def across_processes(kind: str, tries: int, folder: Path) -> list[float]:
    path = str(folder / kind)
    if kind == "fifo":
        os.mkfifo(path)
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    target = {"fifo": _fifo_receiver, "datagram": _datagram_receiver, "poll": _poll_receiver}[kind]
    process = context.Process(target=target, args=(path, tries, answers))
    process.start()
    assert answers.get(timeout=30) == "ready"
    if kind == "fifo":
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        ring = lambda: os.write(fd, b"!")  # noqa: E731
    elif kind == "datagram":
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ring = lambda: sender.sendto(b"!", path)  # noqa: E731
    else:
        ring = lambda: Path(path).touch()  # noqa: E731
    samples = []
    # The poller is in step with the rings when they come at a fixed pace; a random pause over
    # its whole interval shows its real spread.
    longest_pause = OLD_POLL_SECONDS if kind == "poll" else 0.002
    for _ in range(tries):
        time.sleep(0.002 + random.random() * longest_pause)
        started = time.perf_counter()
        ring()
        samples.append(answers.get(timeout=30) - started)
    process.join()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=200)
    args = parser.parse_args()
    tries = args.tries
    print(f"wake-up latency of an idle receiver, {tries} tries each "
          "(the sender pauses 2-4 ms between rings, 2-52 ms for the poller)")
    print(summary("in process: threading.Condition", in_process_condition(tries)))
    print(summary("in process: self-pipe + select (shipped)", in_process_self_pipe(tries)))
    with tempfile.TemporaryDirectory() as folder:
        print(summary("across processes: FIFO + select (shipped)", across_processes("fifo", tries, Path(folder))))
        print(summary("across processes: Unix datagram + select", across_processes("datagram", tries, Path(folder))))
        poll_tries = min(tries, 60)
        print(summary(f"across processes: look every {OLD_POLL_SECONDS * 1000:.0f} ms (old, {poll_tries} tries)",
                      across_processes("poll", poll_tries, Path(folder))))


if __name__ == "__main__":
    main()
