"""The messages that reach the processor, in one place.

Three kinds of SQS message body arrive on the jobs queue:

- an S3 event notification (``{"Records": [{"eventSource": "aws:s3", "eventName":
  "ObjectCreated:Put", "s3": {"object": {"key": "originals/alice/My+Photo%281%29.jpg"}}}]}``),
  whose keys are URL-encoded the way ``quote_plus`` does it;
- S3's ``s3:TestEvent``, sent once when notifications are configured: ignored;
- an app message, ``{"key": ..., "source": ...}``: what SqsJobQueue.send writes (the API's
  ``complete`` call); a ``notify`` job adds ``"kind": "notify", "payload": {"target", "event"}``.

The Lambda can also be invoked by S3 directly (``{"Records": [...]}`` as the whole event). The
worker command turns received SQS messages into the event Lambda's SQS integration would
deliver.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable
from urllib.parse import unquote_plus

from ...core.records import JOB_KINDS, PROCESS_JOB, Job

S3_SOURCE = "aws:s3"
SQS_SOURCE = "aws:sqs"
TEST_EVENT = "s3:TestEvent"
OBJECT_CREATED = "ObjectCreated:"


class MalformedMessage(ValueError):
    """A message body that is none of the known kinds; it is retried, then dead-lettered."""


def app_message_body(job: Job) -> str:
    """The SQS body SqsJobQueue.send writes for ``job``."""
    body: dict[str, Any] = {"key": job.key, "source": job.source}
    if job.request_id:
        body["request_id"] = job.request_id
    if job.kind != PROCESS_JOB:
        body["kind"], body["payload"] = job.kind, job.payload
    return json.dumps(body, separators=(",", ":"))


def jobs_from_s3_records(records: Iterable[dict[str, Any]]) -> list[Job]:
    """Keys of ObjectCreated records, URL-decoded; other S3 events (removals...) are skipped."""
    jobs = []
    for record in records:
        if record.get("eventSource") != S3_SOURCE:
            continue
        name = str(record.get("eventName", ""))
        if name.startswith("s3:"):
            name = name[3:]
        if not name.startswith(OBJECT_CREATED):
            continue
        try:
            encoded = record["s3"]["object"]["key"]
        except (KeyError, TypeError):
            raise MalformedMessage("an S3 record without s3.object.key") from None
        jobs.append(Job(unquote_plus(encoded), source="s3"))
    return jobs


def jobs_from_message_body(body: str) -> list[Job]:
    """The jobs one SQS message carries: none for a test event, one or more for an S3
    notification, one for an app message. Raises MalformedMessage for anything else."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        raise MalformedMessage(f"not JSON: {str(body)[:200]!r}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"not a JSON object: {str(body)[:200]!r}")
    if data.get("Event") == TEST_EVENT:
        return []
    if isinstance(data.get("Records"), list):
        return jobs_from_s3_records(data["Records"])
    if isinstance(data.get("key"), str) and data["key"]:
        request_id = data.get("request_id")
        kind = data.get("kind", PROCESS_JOB)
        payload = data.get("payload")
        if kind not in JOB_KINDS or (kind != PROCESS_JOB and not isinstance(payload, dict)):
            raise MalformedMessage(f"an app message of an unknown kind: {str(body)[:200]!r}")
        return [Job(data["key"], source=str(data.get("source") or "app"),
                    request_id=request_id if isinstance(request_id, str) else None,
                    kind=kind, payload=payload if kind != PROCESS_JOB else None)]
    raise MalformedMessage(f"neither an S3 notification nor an app message: {str(body)[:200]!r}")


def is_direct_s3_event(event: Any) -> bool:
    """An S3 notification delivered straight to the Lambda (no queue in between)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and all(r.get("eventSource") == S3_SOURCE for r in records)


def sqs_lambda_event(messages: Iterable[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS integration delivers for these ReceiveMessage results.

    ``messages`` must have been received with all system attributes and message attributes.
    """
    records = []
    for message in messages:
        attributes = dict(message.get("Attributes", {}))
        attributes.setdefault("ApproximateReceiveCount", "1")
        records.append({
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": SQS_SOURCE,
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    return {"Records": records}


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # ReceiveMessage says StringValue/BinaryValue/DataType; Lambda's event uses camelCase and
    # base64 for binary values.
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType", "String"),
    }


def receive_count(record: dict[str, Any]) -> int:
    """ApproximateReceiveCount of an SQS event record (1 when absent)."""
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1
