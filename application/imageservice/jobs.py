"""One job dispatcher, for the local worker and for the Lambda (and aws mode's worker, which
runs the Lambda's code): a ``process`` job runs the pipeline, a ``notify`` job delivers an image
event (notifications.py), a ``batch`` job packs a batch (batching.py). A failure on the job's last attempt is counted as dead-lettered and
raised; moving the job is the queue's part (the local queue's ``retry``, SQS's redrive policy).
"""

from __future__ import annotations

import logging
from typing import Any

from .batching import BatchRunner
from .core.records import BATCH_JOB, NOTIFY_JOB, Job
from .core.retries import attempts_exhausted
from .notifications import NotificationDelivery
from .pipeline import Pipeline

DEAD_LETTERED = "jobs_dead_lettered"


class JobDispatcher:
    def __init__(self, pipeline: Pipeline, notifications: NotificationDelivery | None, max_attempts: int,
                 logger: Any = None, batches: BatchRunner | None = None):
        self.pipeline = pipeline
        self.notifications = notifications
        self.batches = batches
        self.max_attempts = max_attempts
        self.log = logger or logging.getLogger(__name__)

    def run(self, job: Job, attempt: int, lease_until: str | None = None) -> str:
        """Do ``job`` on delivery number ``attempt``; its outcome, or the failure raised."""
        final = attempts_exhausted(attempt, self.max_attempts)
        try:
            if job.kind == NOTIFY_JOB:
                if self.notifications is None:
                    raise RuntimeError("a notify job reached a dispatcher built without notifications")
                return self.notifications.deliver(job.payload or {})
            if job.kind == BATCH_JOB:
                if self.batches is None:
                    raise RuntimeError("a batch job reached a dispatcher built without the batch runner")
                return self.batches.run(str((job.payload or {}).get("user_id", "")), job.key)
            return self.pipeline.process_key(job.key, final_attempt=final, lease_until=lease_until,
                                             request_id=job.request_id)
        except Exception:
            if final:
                self.pipeline.metrics.increment(DEAD_LETTERED)
                if job.kind == NOTIFY_JOB:
                    self.log.error("gave up delivering event %s after %d attempts; it goes to the dead letters",
                                   job.key, attempt, extra={"key": job.key, "request_id": job.request_id})
            raise
