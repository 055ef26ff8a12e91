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

from ...core.records import NOTIFY_JOB, Job
from ...core.retries import attempts_exhausted
from ...notifications import NotificationDelivery
from ...pipeline import Pipeline, lease_before_redelivery
from .events import is_direct_s3_event, jobs_from_message_body, jobs_from_s3_records, receive_count


class ProcessingFailed(RuntimeError):
    """Some keys of a direct S3 invocation failed; raising makes Lambda retry the event."""


class EventProcessor:
    def __init__(self, pipeline: Pipeline, max_attempts: int, visibility_timeout: int, logger: Any = None,
                 notifications: NotificationDelivery | None = None):
        """``visibility_timeout``: how long, from the start of an invocation, its messages stay
        hidden at least (the queue's visibility timeout, or the function timeout when the queue's
        is longer); every claim's lease ends before then. ``notifications`` delivers ``notify``
        jobs (image events); a failed delivery comes back after the visibility timeout."""
        self.pipeline = pipeline
        self.notifications = notifications
        self.max_attempts = max_attempts
        self.visibility_timeout = visibility_timeout
        self.log = logger or logging.getLogger(__name__)
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
        final = attempts_exhausted(attempt, self.max_attempts)
        outcomes = []
        for job in jobs_from_message_body(record.body):
            if job.kind == NOTIFY_JOB:
                outcomes.append(self._deliver(job, attempt, final))
                continue
            try:
                outcome = self.pipeline.process_key(job.key, final_attempt=final, lease_until=lease_until,
                                                    request_id=job.request_id)
            except Exception:
                if final:  # SQS's redrive policy moves the message to the DLQ on its next receive
                    self.pipeline.metrics.increment("jobs_dead_lettered")
                raise
            self.log.info("%s: %s (attempt %d)", job.key, outcome, attempt,
                          extra={"key": job.key, "source": job.source, "outcome": outcome,
                                 "attempt": attempt, "message_id": record.message_id})
            outcomes.append(outcome)
        return outcomes

    def _deliver(self, job: Job, attempt: int, final: bool) -> str:
        if self.notifications is None:
            raise RuntimeError("a notify job reached a processor built without notifications")
        try:
            return self.notifications.deliver(job.payload or {})
        except Exception:
            if final:  # SQS's redrive policy moves the message to the DLQ on its next receive
                self.pipeline.metrics.increment("jobs_dead_lettered")
                self.log.error("gave up delivering event %s after %d attempts; it goes to the dead-letter queue",
                               job.key, attempt, extra={"key": job.key})
            raise

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
