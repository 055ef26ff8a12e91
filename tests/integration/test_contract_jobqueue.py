"""The JobQueue contract (ports.JobQueue), once against the SQLite queue and once against SQS
(moto server, queues made by setup_resources with a 2 s visibility timeout and 3 attempts)."""

from __future__ import annotations

import json
import time

import pytest

from imageservice.core.records import Job
from imageservice.ports import JobQueue



def receive_one(queue, wait: float = 0) -> list:
    return queue.receive(max_jobs=1, wait_seconds=wait)


def test_the_adapter_implements_the_protocol(backend):
    assert isinstance(backend.queue, JobQueue)
    backend.queue.ping()


def test_a_sent_job_is_received_once_then_acked_for_good(backend):
    queue = backend.queue
    queue.send(Job("originals/alice/01ABC", source="complete"))
    [received] = receive_one(queue, wait=1)
    assert received.job == Job("originals/alice/01ABC", source="complete")
    assert received.attempts == 1
    assert queue.receive(max_jobs=10) == []  # hidden while someone works on it
    queue.ack(received)
    time.sleep(backend.settings.job_visibility_timeout + 0.5)
    assert queue.receive(max_jobs=10, wait_seconds=1) == []
    assert queue.dead_letters() == []


def test_receive_takes_at_most_max_jobs(backend):
    queue = backend.queue
    for index in range(3):
        queue.send(Job(f"originals/alice/{index}"))
    first = queue.receive(max_jobs=2, wait_seconds=1)
    assert 1 <= len(first) <= 2  # SQS may answer with fewer than asked
    rest = []
    deadline = time.monotonic() + 5
    while len(first) + len(rest) < 3 and time.monotonic() < deadline:
        rest += queue.receive(max_jobs=2, wait_seconds=1)
    keys = sorted(r.job.key for r in first + rest)
    assert keys == [f"originals/alice/{i}" for i in range(3)]


def test_an_unacked_job_comes_back_after_the_visibility_timeout(backend):
    queue = backend.queue
    queue.send(Job("originals/alice/crash"))
    [first] = receive_one(queue, wait=1)
    time.sleep(backend.settings.job_visibility_timeout + 0.5)  # the processor died without acking
    [second] = receive_one(queue, wait=1)
    assert second.job == first.job
    assert second.attempts == 2
    queue.ack(first)  # an outdated receipt removes nothing...
    queue.retry(first, 0, "late")  # ...and hands nothing back
    assert receive_one(queue) == []
    queue.ack(second)


def test_retry_hands_the_job_back_after_the_delay(backend):
    queue = backend.queue
    queue.send(Job("originals/alice/flaky"))
    [first] = receive_one(queue, wait=1)
    assert queue.retry(first, 1, "storage unavailable") is True
    assert receive_one(queue) == []  # not before the delay
    time.sleep(1.2)
    [second] = receive_one(queue, wait=1)
    assert (second.job, second.attempts) == (first.job, 2)
    queue.ack(second)


def test_after_the_last_attempt_the_job_is_dead_lettered(backend):
    queue = backend.queue
    queue.send(Job("originals/alice/poison", source="s3"))
    max_attempts = backend.settings.job_max_attempts
    for attempt in range(1, max_attempts + 1):
        [received] = receive_one(queue, wait=1)
        assert received.attempts == attempt
        assert queue.retry(received, 0, f"boom {attempt}") is (attempt < max_attempts)
    assert queue.receive(max_jobs=10, wait_seconds=1) == []  # never delivered again
    dead = queue.dead_letters()
    assert [job for job, _ in dead] == [Job("originals/alice/poison", source="s3")]
    assert all(isinstance(reason, str) and reason for _, reason in dead)
    assert [job for job, _ in queue.dead_letters()] == [Job("originals/alice/poison", source="s3")]  # kept


# -- SQS only: what arrives from S3 rather than from send()

@pytest.fixture
def sqs_backend(backend):
    if backend.kind != "aws":
        pytest.skip("only SQS receives S3 notifications")
    return backend


def _s3_record(key: str, event: str = "ObjectCreated:Put") -> dict:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": event,
            "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 1}}}


def test_sqs_receive_decodes_s3_notifications_and_drops_test_events(sqs_backend):
    sqs, url, queue = sqs_backend.clients.sqs, sqs_backend.settings.queue_url, sqs_backend.queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [_s3_record("originals/alice/My+Photo%281%29.jpg")]}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [_s3_record("originals/alice/x", "ObjectRemoved:Delete")]}))
    received = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not received:
        received += queue.receive(max_jobs=10, wait_seconds=1)
    assert [r.job for r in received] == [Job("originals/alice/My Photo(1).jpg", source="s3")]
    queue.ack(received[0])
    time.sleep(sqs_backend.settings.job_visibility_timeout + 0.5)
    assert queue.receive(max_jobs=10, wait_seconds=1) == []  # the test and removal events were deleted


def test_sqs_receive_splits_a_notification_with_several_records(sqs_backend):
    sqs, url, queue = sqs_backend.clients.sqs, sqs_backend.settings.queue_url, sqs_backend.queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {"Records": [_s3_record("originals/alice/a"), _s3_record("originals/alice/b")]}))
    received = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and len(received) < 2:
        received += queue.receive(max_jobs=10, wait_seconds=1)
    assert sorted(r.job.key for r in received) == ["originals/alice/a", "originals/alice/b"]
    assert len({r.receipt for r in received}) == 2  # each retried and dead-lettered on its own
