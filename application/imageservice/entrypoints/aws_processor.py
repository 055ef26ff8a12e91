"""What the processor Lambda does with an event; the worker command runs the same code.

SQS batches go through powertools' BatchProcessor: each record is handled on its own, a
record that raises is reported in ``batchItemFailures`` (and comes back after the visibility
timeout), the others are deleted. A record's delivery count (``ApproximateReceiveCount``)
tells the pipeline when it is the last attempt, so the record says why before SQS moves the
message to the dead-letter queue. A direct S3 invocation processes every key and raises when
any failed (Lambda then retries the whole, idempotent, event).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..adapters.aws.events import is_direct_s3_event, jobs_from_message_body, jobs_from_s3_records, receive_count
from ..core.records import NOTIFY_JOB
from ..jobs import JobDispatcher
from ..notifications import NotificationDelivery
from ..batching import BatchRunner
from ..pipeline import Pipeline, lease_before_redelivery
from ..settings import Settings


class ProcessingFailed(RuntimeError):
    """Some keys of a direct S3 invocation failed; raising makes Lambda retry the event."""


class EventProcessor:
    def __init__(self, pipeline: Pipeline, max_attempts: int, visibility_timeout: int, logger: Any = None,
                 notifications: NotificationDelivery | None = None, batches: BatchRunner | None = None):
        """``visibility_timeout``: how long, from the start of an invocation, its messages stay
        hidden at least (the queue's visibility timeout, or the function timeout when the queue's
        is longer); every claim's lease ends before then. ``notifications`` delivers ``notify``
        jobs (image events); a failed delivery comes back after the visibility timeout."""
        self.pipeline = pipeline
        self.visibility_timeout = visibility_timeout
        self.log = logger or logging.getLogger(__name__)
        self.jobs = JobDispatcher(pipeline, notifications, max_attempts, self.log, batches=batches)
        # Always answer with batchItemFailures, even when every record failed: the effect
        # (nothing deleted) is the same and callers need not tell two shapes apart.
        self._batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Process an SQS event (returns ``{"batchItemFailures": [...]}``) or a direct S3
        event (returns a summary; raises ProcessingFailed when a key failed)."""
        if is_direct_s3_event(event):
            return self.handle_s3_event(event)
        lease_until = lease_before_redelivery(time.time() + self.visibility_timeout)
        return process_partial_response(
            event=event, record_handler=functools.partial(self.handle_sqs_record, lease_until=lease_until),
            processor=self._batch, context=context,
        )

    def handle_sqs_record(self, record: SQSRecord, lease_until: str | None = None) -> list[str]:
        """Process every key one SQS message carries; raises to report the record failed."""
        attempt = receive_count(record.raw_event)
        outcomes = []
        for job in jobs_from_message_body(record.body):
            outcome = self.jobs.run(job, attempt, lease_until)
            if job.kind != NOTIFY_JOB:
                self.log.info("%s: %s (attempt %d)", job.key, outcome, attempt,
                              extra={"key": job.key, "source": job.source, "outcome": outcome,
                                     "attempt": attempt, "message_id": record.message_id})
            outcomes.append(outcome)
        return outcomes

    def handle_s3_event(self, event: dict[str, Any]) -> dict[str, Any]:
        jobs = jobs_from_s3_records(event["Records"])
        failed = []
        for job in jobs:
            try:
                outcome = self.pipeline.process_key(job.key)
            except Exception:  # the per-record boundary: the other keys still get processed
                self.log.exception("%s: processing failed", job.key, extra={"key": job.key})
                failed.append(job.key)
                continue
            self.log.info("%s: %s", job.key, outcome, extra={"key": job.key, "source": job.source, "outcome": outcome})
        if failed:
            raise ProcessingFailed(f"{len(failed)} of {len(jobs)} objects failed: {', '.join(failed)}")
        return {"processed": len(jobs)}


def build_event_processor(settings: Settings, pipeline: Pipeline, notifications: NotificationDelivery | None,
                          logger: Any = None, batches: BatchRunner | None = None) -> EventProcessor:
    """The Lambda's event processor, for the Lambda itself and aws mode's ``imageservice worker``."""
    return EventProcessor(pipeline, settings.job_max_attempts, settings.job_visibility_timeout,
                          logger=logger, notifications=notifications, batches=batches)
