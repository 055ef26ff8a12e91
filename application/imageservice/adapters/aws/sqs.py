"""SQS JobQueue: the jobs queue, fed by the app and by S3 event notifications, plus its DLQ.

Attempts are SQS's ``ApproximateReceiveCount``. Dead-lettering is SQS's redrive policy
(``maxReceiveCount`` = settings.job_max_attempts): a job that failed its last attempt is made
visible at once, and the next ReceiveMessage moves it to the dead-letter queue instead of
delivering it. SQS cannot annotate a message, so the reason of the last failure is not kept
with it: the record's ``error`` (the pipeline's final attempt) and the processor's log say why.
"""

from __future__ import annotations

import json
import logging
import math

from botocore.exceptions import ClientError

from ...core.records import Job, ReceivedJob
from ...core.retries import attempts_exhausted
from .errors import error_code, transient_errors
from .events import MalformedMessage, app_message_body, jobs_from_message_body

log = logging.getLogger(__name__)

MAX_BATCH = 10  # ReceiveMessage and DeleteMessageBatch take at most 10
MAX_WAIT_SECONDS = 20  # SQS's longest long poll
MAX_VISIBILITY = 12 * 3600
STALE_RECEIPT_CODES = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"})
DEAD_LETTER_REASON = "moved to the dead-letter queue after {attempts} failed attempts"


class SqsJobQueue:
    def __init__(self, sqs_client, queue_url: str, *, dead_letter_queue_url: str | None = None, max_attempts: int):
        """``dead_letter_queue_url``: when None, found through the queue's redrive policy."""
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.max_attempts = max_attempts
        self._dead_letter_queue_url = dead_letter_queue_url
        self._queue_arn: str | None = None

    def send(self, job: Job) -> None:
        """Enqueue an app message ``{"key", "source"}``; delivered at least once.
        Raises TransientError on throttling or network failures."""
        with transient_errors("send job"):
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=app_message_body(job))

    def receive(self, max_jobs: int = 1, wait_seconds: float = 0) -> list[ReceivedJob]:
        """Up to ``max_jobs`` (at most 10) jobs, hidden for the queue's visibility timeout.

        Long-polls up to ``wait_seconds`` (rounded up, at most 20). S3 test events are deleted
        on sight; a message carrying several S3 records is split into one app message per key
        (then deleted), so every job is retried and dead-lettered on its own. A malformed
        message is left alone: it comes back until the redrive policy dead-letters it.
        """
        wait = min(MAX_WAIT_SECONDS, max(0, math.ceil(wait_seconds)))
        while True:
            with transient_errors("receive jobs"):
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=max(1, min(MAX_BATCH, max_jobs)),
                    WaitTimeSeconds=wait,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            received = [job for job in map(self._received_job, messages) if job is not None]
            # A batch of nothing but test events or split notifications is not "no jobs".
            if received or not messages:
                return received

    def _received_job(self, message: dict) -> ReceivedJob | None:
        try:
            jobs = jobs_from_message_body(message["Body"])
        except MalformedMessage as exc:
            log.warning("leaving malformed message %s for the dead-letter queue: %s", message["MessageId"], exc)
            return None
        if len(jobs) == 1:
            attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            return ReceivedJob(jobs[0], message["ReceiptHandle"], attempts)
        for job in jobs:  # zero (a test event) or several (split)
            self.send(job)
        self._delete(message["ReceiptHandle"])
        return None

    def ack(self, received: ReceivedJob) -> None:
        """The job is done: delete its message. A receipt that is no longer current (the job
        was received again by someone else) is ignored, as in the local queue."""
        self._delete(received.receipt)

    def retry(self, received: ReceivedJob, delay: int, reason: str) -> bool:
        """Hand the job back after ``delay`` seconds (ChangeMessageVisibility).

        After the last attempt (``attempts >= max_attempts``) the message is made visible at
        once instead, so the next receive lets the redrive policy move it to the dead-letter
        queue; returns False in that case. ``reason`` is only logged (see module docstring).
        """
        last = attempts_exhausted(received.attempts, self.max_attempts)
        timeout = 0 if last else max(0, min(MAX_VISIBILITY, int(delay)))
        log.info("job %s attempt %d failed (%s); %s", received.job.key, received.attempts, reason,
                 "dead-lettering" if last else f"retrying in {timeout}s")
        with transient_errors("retry job"):
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=received.receipt, VisibilityTimeout=timeout
                )
            except ClientError as exc:
                if error_code(exc) not in STALE_RECEIPT_CODES:
                    raise
        return not last

    def dead_letters(self, limit: int = 100) -> list[tuple[Job, str]]:
        """Jobs in the dead-letter queue, read without removing them (received with a zero
        visibility timeout, so they stay visible); the reason is a fixed text (see above)."""
        queue_url = self.dead_letter_queue_url()
        found: dict[str, tuple[Job, str]] = {}
        while len(found) < limit:
            with transient_errors("read dead letters"):
                response = self.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=MAX_BATCH,
                    VisibilityTimeout=0,
                    WaitTimeSeconds=1,
                )
            fresh = [m for m in response.get("Messages", []) if m["MessageId"] not in found]
            if not fresh:
                break
            for message in fresh:
                try:
                    jobs = jobs_from_message_body(message["Body"])
                except MalformedMessage:
                    jobs = [Job(key="", source="malformed")]
                for job in jobs[:1]:
                    found[message["MessageId"]] = (job, DEAD_LETTER_REASON.format(attempts=self.max_attempts))
        return list(found.values())[:limit]

    def dead_letter_queue_url(self) -> str:
        """The DLQ's URL: configured, or the target of the queue's redrive policy."""
        if self._dead_letter_queue_url is None:
            with transient_errors("find dead-letter queue"):
                attributes = self.sqs.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"]
                ).get("Attributes", {})
                if "RedrivePolicy" not in attributes:
                    raise RuntimeError(f"{self.queue_url} has no redrive policy (run `imageservice setup`)")
                arn = str(json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"])
                _, _, _, _, account, name = arn.split(":", 5)
                self._dead_letter_queue_url = self.sqs.get_queue_url(
                    QueueName=name, QueueOwnerAWSAccountId=account
                )["QueueUrl"]
        return self._dead_letter_queue_url  # type: ignore[return-value]

    def queue_arn(self) -> str:
        """The jobs queue's ARN (one request, then remembered)."""
        if self._queue_arn is None:
            with transient_errors("read queue arn"):
                self._queue_arn = self.sqs.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
        return self._queue_arn  # type: ignore[return-value]

    def ping(self) -> None:
        """Raise when the queue cannot be reached (GetQueueAttributes)."""
        self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    def _delete(self, receipt: str) -> None:
        with transient_errors("delete message"):
            try:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
            except ClientError as exc:
                if error_code(exc) not in STALE_RECEIPT_CODES:
                    raise
                log.info("message already gone or received again: %s", error_code(exc))
