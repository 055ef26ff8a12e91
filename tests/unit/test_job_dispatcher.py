"""The one job dispatcher (jobs.py) of the local worker and the Lambda: what it runs, and that a
failure is counted as dead-lettered on the last attempt only, then raised for the queue."""

from __future__ import annotations

import collections

import pytest

from imageservice.core.records import NOTIFY_JOB, Job
from imageservice.jobs import DEAD_LETTERED, JobDispatcher


class CountingMetrics:
    def __init__(self):
        self.counts = collections.Counter()

    def increment(self, name, value=1, **dimensions):
        self.counts[name] += value

    def timing(self, name, milliseconds, **dimensions):
        pass


class StandInPipeline:
    """The pipeline's one method the dispatcher calls, failing on demand."""

    def __init__(self, fails: bool):
        self.metrics, self.fails, self.calls = CountingMetrics(), fails, []

    def process_key(self, key, *, final_attempt, lease_until, request_id):
        self.calls.append((key, final_attempt, lease_until, request_id))
        if self.fails:
            raise OSError("storage is down")
        return "ready"


class StandInNotifications:
    def __init__(self):
        self.delivered = []

    def deliver(self, payload):
        self.delivered.append(payload)
        return "delivered"


def test_a_process_job_runs_the_pipeline_with_its_attempt_and_lease():
    pipeline = StandInPipeline(fails=False)
    jobs = JobDispatcher(pipeline, None, max_attempts=3)
    assert jobs.run(Job("originals/a/1", request_id="r1"), attempt=3, lease_until="2026-01-01T00:00:00Z") == "ready"
    assert pipeline.calls == [("originals/a/1", True, "2026-01-01T00:00:00Z", "r1")]


def test_a_notify_job_is_delivered():
    notifications = StandInNotifications()
    jobs = JobDispatcher(StandInPipeline(fails=False), notifications, max_attempts=3)
    assert jobs.run(Job("event-1", kind=NOTIFY_JOB, payload={"type": "image.ready"}), attempt=1) == "delivered"
    assert notifications.delivered == [{"type": "image.ready"}]


@pytest.mark.parametrize(("attempt", "dead_lettered"), [(1, 0), (2, 0), (3, 1), (4, 1)])
def test_a_failure_counts_as_dead_lettered_on_the_last_attempt_only(attempt, dead_lettered):
    pipeline = StandInPipeline(fails=True)
    with pytest.raises(OSError):
        JobDispatcher(pipeline, None, max_attempts=3).run(Job("originals/a/1"), attempt=attempt)
    assert pipeline.metrics.counts[DEAD_LETTERED] == dead_lettered


def test_a_notify_job_without_notifications_fails_loudly():
    with pytest.raises(RuntimeError, match="without notifications"):
        JobDispatcher(StandInPipeline(fails=False), None, max_attempts=3).run(Job("e", kind=NOTIFY_JOB), attempt=1)
