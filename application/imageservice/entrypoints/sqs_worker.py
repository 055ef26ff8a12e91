"""``imageservice worker`` in aws mode: Lambda's SQS integration, played locally.

Long-polls the jobs queue, turns each batch into the exact event Lambda would deliver, runs
the Lambda's own event processor in-process, and deletes only the messages not listed in
``batchItemFailures``. Failed messages are left alone: they become visible again after the
queue's visibility timeout, and after ``maxReceiveCount`` deliveries SQS moves them to the
dead-letter queue — exactly what happens in AWS. For emulators and development; in AWS the
Lambda does this.
"""

from __future__ import annotations

import logging
import math
import threading

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters.aws.errors import transient_errors
from ..adapters.aws.events import sqs_lambda_event
from ..adapters.aws.sqs import MAX_BATCH, MAX_WAIT_SECONDS, SqsJobQueue
from ..bootstrap import Components
from ..core.errors import TransientError
from .aws_processor import EventProcessor, build_event_processor

log = logging.getLogger(__name__)


class SqsLambdaWorker:
    def __init__(self, sqs_client, queue: SqsJobQueue, processor: EventProcessor, *, region: str,
                 poll_seconds: float, batch_size: int = MAX_BATCH, stop: threading.Event | None = None):
        """``sqs_client``: the boto3 SQS client ``queue`` uses; ``processor``: the Lambda's own
        event processor; ``region``: what Lambda writes into each record's ``awsRegion``;
        ``poll_seconds`` (IMAGESERVICE_WORKER_POLL_SECONDS): the long poll, rounded up, 1 to 20 s."""
        self.sqs = sqs_client
        self.queue = queue
        self.queue_url = queue.queue_url
        self.region = region
        self.processor = processor
        self.batch_size = max(1, min(MAX_BATCH, batch_size))
        self.wait_seconds = min(MAX_WAIT_SECONDS, max(1, math.ceil(poll_seconds)))
        self.stop = stop or threading.Event()

    def run_once(self) -> int:
        """Receive one batch (long poll), process it, delete what succeeded; how many arrived."""
        with transient_errors("receive jobs"):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=self.wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        if not messages:
            return 0
        event = sqs_lambda_event(messages, self.queue.queue_arn(), self.region)
        response = self.processor.handle(event)
        failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._delete(done)
        log.info("batch of %d: %d done, %d handed back", len(messages), len(done), len(failed))
        return len(messages)

    def _delete(self, messages: list[dict]) -> None:
        with transient_errors("delete messages"):
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        for failure in response.get("Failed", []):
            # The message comes back after its visibility timeout; the pipeline skips it then.
            log.warning("could not delete a processed message: %s", failure.get("Message") or failure.get("Code"))

    def run_forever(self) -> None:
        """Poll until ``stop`` is set; a failing backend pauses the loop instead of ending it."""
        log.info("SQS worker started on %s (long poll %ss)", self.queue_url, self.wait_seconds)
        while not self.stop.is_set():
            try:
                self.run_once()
            except (TransientError, BotoCoreError, ClientError) as exc:
                log.warning("worker loop: %s", exc)
                self.stop.wait(1.0)
        log.info("SQS worker stopped")


def build_sqs_worker(components: Components, stop: threading.Event | None = None) -> SqsLambdaWorker:
    """aws mode's ``imageservice worker``: the Lambda's event processor fed by SQS long polls."""
    settings, clients, queue = components.settings, components.aws_clients, components.queue
    if clients is None or not isinstance(queue, SqsJobQueue):
        raise RuntimeError("the SQS worker needs aws mode's components")
    processor = build_event_processor(settings, components.pipeline, components.notifications,
                                      batches=components.batch_runner)
    return SqsLambdaWorker(clients.sqs, queue, processor, region=clients.region,
                           poll_seconds=settings.worker_poll_seconds, stop=stop)
