"""Issue 23: a job sent while the worker is idle is picked up at once, not at the next poll.

The worker runs with a 5 s poll interval, so pickups within PICKUP_MAX_SECONDS, half within 20 ms, can only come
from the queue's doorbell (adapters/local/doorbell.py): once with the worker as a thread beside
the sender (what ``serve`` does), once as ``imageservice worker`` in its own process. Real
SQLite, real processes; the pickup is seen from outside the worker, as the job's row taking
its first receipt (or already gone, acked).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time

from imageservice.adapters.local.doorbell import Doorbell
from imageservice.adapters.local.jobqueue import SqliteJobQueue
from imageservice.bootstrap import build_components
from imageservice.core.records import Job
from imageservice.entrypoints.worker import Worker
from servers import ServerProcess, imageservice, service_env
from support import make_settings

TRIES = 50
# What only a wake-up gives, with room for a loaded machine (the suite runs beside servers on
# two cores): every pickup far inside the poll interval, half of them within 20 ms. The p99
# target itself (20 ms over 50 tries) is checked by bench/bench_pickup.py in make bench.
PICKUP_MEDIAN_SECONDS = 0.020
PICKUP_MAX_SECONDS = 1.0
POLL_SECONDS = 5.0  # a poll would take 2.5 s on average, up to 5 s
# The worker only ignores such a key (not an original), so each job is over in a moment.
IDLE_KEY = "not-an-original/pickup-{}"


def pickup_seconds(queue: SqliteJobQueue, watcher: sqlite3.Connection, number: int) -> float:
    """Send one job to an idle worker; seconds until its row is received (or already acked)."""
    time.sleep(0.05 + random.random() * 0.05)  # idle, and not in step with anything
    started = time.perf_counter()
    queue.send(Job(IDLE_KEY.format(number), source="test"))
    while True:
        row = watcher.execute("SELECT attempts FROM jobs WHERE key = ?", (IDLE_KEY.format(number),)).fetchone()
        elapsed = time.perf_counter() - started
        if row is None or row[0] > 0:
            return elapsed
        if elapsed > 10:
            raise AssertionError(f"job {number} was not picked up within 10 s")
        time.sleep(0.0002)


def assert_woken(samples: list[float], context: str = "") -> None:
    ordered = sorted(samples)
    assert ordered[len(ordered) // 2] <= PICKUP_MEDIAN_SECONDS, report(samples) + context
    assert ordered[-1] <= PICKUP_MAX_SECONDS, report(samples) + context


def measure(queue: SqliteJobQueue) -> list[float]:
    queue.depth()  # the database and its table exist before the watcher looks
    watcher = sqlite3.connect(queue.db.path, isolation_level=None)
    try:
        pickup_seconds(queue, watcher, -1)  # the worker's first look, connections opened
        return [pickup_seconds(queue, watcher, number) for number in range(TRIES)]
    finally:
        watcher.close()


def report(samples: list[float]) -> str:
    return "pickup ms: " + ", ".join(f"{s * 1000:.1f}" for s in sorted(samples))


def test_a_job_sent_in_the_same_process_wakes_the_worker_thread(tmp_path):
    components = build_components(make_settings(tmp_path, worker_poll_seconds=POLL_SECONDS))
    stop = threading.Event()
    thread = threading.Thread(target=Worker(components, stop).run_forever, daemon=True)
    thread.start()
    try:
        samples = measure(components.queue)
    finally:
        stop.set()
        components.queue.doorbell.ring()  # wake it now rather than at the end of its poll
        thread.join(10)
    assert not thread.is_alive()
    assert_woken(samples)


def test_a_job_sent_by_another_process_wakes_a_lone_worker(tmp_path):
    data_dir = tmp_path / "data"
    env = service_env(data_dir, 8000, IMAGESERVICE_WORKER_POLL_SECONDS=str(POLL_SECONDS))
    worker = ServerProcess(imageservice("worker"), env, tmp_path / "worker.log").start()
    try:
        queue = SqliteJobQueue(data_dir / "queue.sqlite3", visibility_timeout=120, max_attempts=5)
        samples = measure(queue)
    finally:
        worker.stop()
    assert_woken(samples, "\n" + worker.log())


def test_a_ring_before_the_wait_is_not_lost_and_is_heard_once(tmp_path):
    doorbell = Doorbell(tmp_path / "queue.sqlite3.wake")
    doorbell.ring()
    doorbell.ring()
    assert doorbell.wait(5) is True  # at once: the rings waited in the wires
    started = time.monotonic()
    assert doorbell.wait(0.05) is False  # both drained: the next wait blocks its full time
    assert time.monotonic() - started >= 0.04


def test_without_a_fifo_the_doorbell_still_rings_within_the_process(tmp_path):
    squatter = tmp_path / "queue.sqlite3.wake"
    squatter.write_text("a regular file where the FIFO should be")
    doorbell = Doorbell(squatter)
    threading.Timer(0.05, doorbell.ring).start()
    started = time.monotonic()
    assert doorbell.wait(5) is True
    assert time.monotonic() - started < 1
    doorbell.close()
