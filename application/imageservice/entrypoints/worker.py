"""The job worker: takes jobs from the queue and runs the pipeline on each (``process`` jobs),
or delivers an image event (``notify`` jobs, notifications.py).

At-least-once: a job is acked only after the pipeline finished with it; a worker killed
mid-job leaves the job hidden until its visibility timeout, then another run takes it again,
and the pipeline's claim/lease makes that second run safe.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time

from ..bootstrap import Components
from ..core.records import NOTIFY_JOB, ReceivedJob
from ..jobs import JobDispatcher
from ..notifications import retry_delay
from ..pipeline import lease_before_redelivery

log = logging.getLogger(__name__)

# How often a web process that does not run the job threads tries to take them over.
LEADER_POLL_SECONDS = 1.0


class Worker:
    def __init__(self, components: Components, stop: threading.Event | None = None):
        self.components = components
        self.settings = components.settings
        self.stop = stop or threading.Event()
        self._last_sweep = 0.0
        self.jobs = JobDispatcher(components.pipeline, components.notifications, self.settings.job_max_attempts,
                                  batches=components.batch_runner)

    def handle(self, received: ReceivedJob) -> str:
        """Run one job; ack it when done, hand it back (or dead-letter it) when it failed."""
        job = received.job
        lease_until = lease_before_redelivery(received.visible_again_at) if received.visible_again_at else None
        try:
            outcome = self.jobs.run(job, received.attempts, lease_until)
        except Exception as exc:  # retry anything; the pipeline already recorded a final failure
            log.warning("%s job %s attempt %d failed: %s", job.kind, job.key, received.attempts, exc,
                        extra={"request_id": job.request_id})
            if job.kind == NOTIFY_JOB:  # a receiver that is down gets more and more room to come back
                delay = retry_delay(self.settings.notify_retry_delay, received.attempts)
            else:
                delay = self.settings.job_retry_delay * received.attempts
            self.components.queue.retry(received, delay, f"{type(exc).__name__}: {exc}")
            return "retry"
        self.components.queue.ack(received)
        return outcome

    def run_once(self, wait_seconds: float = 0) -> int:
        """Process whatever one receive returns; how many jobs were handled."""
        batch = self.components.queue.receive(max_jobs=4, wait_seconds=wait_seconds)
        for received in batch:
            self.handle(received)
        return len(batch)

    def drain(self, timeout: float = 30) -> None:
        """Work until the queue has nothing visible (tests and one-shot runs)."""
        deadline = time.monotonic() + timeout
        while self.run_once() and time.monotonic() < deadline:
            pass

    def run_forever(self) -> None:
        log.info("worker started (%s mode)", self.settings.backend)
        if self.components.imaging is not None:
            self.components.imaging.warm()  # the first job finds its imaging child started
        while not self.stop.is_set():
            try:
                # An empty receive has already waited worker_poll_seconds for a job (the local
                # queue wakes at once when one is sent; SQS long-polls): no sleep after it.
                self.run_once(wait_seconds=self.settings.worker_poll_seconds)
                self._maybe_sweep()
            except Exception:  # keep the loop alive through a passing database or storage fault
                log.exception("worker loop error")
                self.stop.wait(1.0)
        log.info("worker stopped")

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.settings.sweep_interval:
            self._last_sweep = now
            counts = self.components.service.sweep()
            if any(counts.values()):
                log.info("sweep removed %s", counts)


class JobThreads:
    """The job threads ``serve`` runs beside the web app in local mode (web/server.py)."""

    def __init__(self, components: Components, count: int):
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=Worker(components, self.stop_event).run_forever,
                                         name=f"imageservice-worker-{n}", daemon=True) for n in range(count)]
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """Let each thread finish its current job (a job cut short would wait out its visibility
        timeout before another run takes it), then return."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def start_worker_threads(components: Components) -> JobThreads:
    """Local mode with the embedded worker on: ``embedded_worker_threads`` job threads; else none."""
    settings = components.settings
    count = settings.embedded_worker_threads if settings.backend == "local" and settings.embedded_worker else 0
    return JobThreads(components, count)


class JobLeadership:
    """Of ``serve``'s web processes, the one holding an exclusive lock on ``jobs.lock`` in the
    data dir runs the job threads, so there are ``embedded_worker_threads`` of them whatever
    the number of processes. The kernel releases the lock when its holder exits, however it
    exits, and another process takes it within LEADER_POLL_SECONDS."""

    def __init__(self, components: Components):
        self.components = components
        self.stopping = threading.Event()
        self.jobs: JobThreads | None = None
        self.lock_file = None
        self.thread = threading.Thread(target=self._lead, name="imageservice-job-leader", daemon=True)
        self.thread.start()

    def _lead(self) -> None:
        path = self.components.settings.data_path / "jobs.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(path, "a")  # held open while leading: closing it releases the lock
        while not self.stopping.is_set():
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.stopping.wait(LEADER_POLL_SECONDS)
                continue
            self.lock_file = lock_file
            self.jobs = start_worker_threads(self.components)
            log.info("this process runs the job threads")
            return
        lock_file.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        if self.jobs is not None:
            self.jobs.stop()
        if self.lock_file is not None:
            self.lock_file.close()


def start_job_leadership(components: Components) -> JobLeadership | None:
    """``serve``'s job threads, in one of its processes; None when there are none to run."""
    settings = components.settings
    if settings.backend != "local" or not settings.embedded_worker or settings.embedded_worker_threads < 1:
        return None
    return JobLeadership(components)
