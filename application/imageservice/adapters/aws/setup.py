"""``imageservice setup`` in aws mode: create what the service needs, for emulators and development.

In AWS, CloudFormation (infrastructure/data.yaml) owns these resources; this makes the same
shape on moto, SeaweedFS or a sandbox account, read from that same template (template.py): the
lifecycle rules, CORS, event prefixes, table keys, indexes and TTL attributes are written once. Idempotent: whatever exists is brought to the
wanted configuration, whatever is missing is created, so running it twice changes nothing.

The images table gets its status index (added to a table made before it, then the records
written before it get their list keys: dynamodb.backfill.backfill_list_keys).

Names come from settings: the bucket and tables by name (the sessions table defaults to
Flask-Session's ``Sessions``), the jobs queue from the last path
segment of IMAGESERVICE_QUEUE_URL, its dead-letter queue from IMAGESERVICE_DEAD_LETTER_QUEUE_URL
the same way, or else ``<queue name>-dlq``; the image-events topic (when IMAGESERVICE_TOPIC_ARN is
set) by the last part of its ARN.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from ...settings import Settings
from ..dynamodb.backfill import backfill_list_keys
from .errors import error_code
from .factory import AwsClients, build_aws_clients
from .template import DataTemplate

UNSUPPORTED_NOTIFICATION_CODES = frozenset({"NotImplemented", "MethodNotAllowed", "BucketAlreadyOwnedByYou"})

MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
INDEX_WAIT_SECONDS = 600  # DynamoDB builds a new index over the existing items before it is ACTIVE
FLASK_SESSION_DEFAULT_TABLE = "Sessions"  # its table when IMAGESERVICE_SESSION_TABLE is unset


def queue_name_from_url(url: str) -> str:
    """``https://sqs.us-east-1.amazonaws.com/123456789012/jobs`` -> ``jobs``."""
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise ValueError(f"no queue name in {url!r}")
    return name


def setup_resources(settings: Settings, clients: AwsClients | None = None) -> Iterator[str]:
    """Create or update queues, bucket and tables; yields one human-readable line per step."""
    clients = clients or build_aws_clients(settings)
    sqs, s3, dynamodb = clients.sqs, clients.s3, clients.dynamodb
    template = DataTemplate.load({"QuarantineDays": settings.quarantine_days, "MaxReceiveCount": settings.job_max_attempts})

    queue_name = queue_name_from_url(settings.queue_url)
    dead_letter_name = (
        queue_name_from_url(settings.dead_letter_queue_url) if settings.dead_letter_queue_url else f"{queue_name}-dlq"
    )
    dead_letter_url, line = _ensure_queue(
        sqs, dead_letter_name, {"MessageRetentionPeriod": str(template.dead_letter_retention())})
    yield line
    dead_letter_arn = _queue_arn(sqs, dead_letter_url)
    queue_url, line = _ensure_queue(sqs, queue_name, {
        "VisibilityTimeout": str(settings.job_visibility_timeout),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(settings.job_max_attempts)}
        ),
    })
    yield line
    queue_arn = _queue_arn(sqs, queue_url)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _queue_policy(queue_arn, settings.bucket)})
    yield f"queue {queue_name}: S3 bucket {settings.bucket} may send to it"
    for name, url, wanted in (("IMAGESERVICE_QUEUE_URL", queue_url, settings.queue_url),
                              ("IMAGESERVICE_DEAD_LETTER_QUEUE_URL", dead_letter_url, settings.dead_letter_queue_url)):
        if wanted and url != wanted:
            yield f"note: the queue's URL is {url}; set {name} to it"

    yield _ensure_bucket(s3, settings.bucket, clients.region)
    s3.put_bucket_cors(Bucket=settings.bucket,
                       CORSConfiguration={"CORSRules": template.cors_rules(_origin(settings.public_url))})
    yield f"bucket {settings.bucket}: CORS allows PUT/GET/HEAD from {_origin(settings.public_url)}"
    rules = template.lifecycle_rules()
    s3.put_bucket_lifecycle_configuration(Bucket=settings.bucket, LifecycleConfiguration={"Rules": rules})
    yield f"bucket {settings.bucket}: lifecycle rules {', '.join(rule['ID'] for rule in rules)}"
    prefixes = template.event_prefixes()
    try:
        s3.put_bucket_notification_configuration(
            Bucket=settings.bucket, NotificationConfiguration=_notifications(queue_arn, prefixes)
        )
    except ClientError as exc:
        # S3-compatible stores without event notifications (SeaweedFS answers with the odd
        # BucketAlreadyOwnedByYou): uploads are then processed on POST .../complete only.
        on_real_s3 = not (settings.s3_endpoint_url or settings.aws_endpoint_url)
        if on_real_s3 or error_code(exc) not in UNSUPPORTED_NOTIFICATION_CODES:
            raise
        yield (f"bucket {settings.bucket}: this endpoint has no S3 event notifications; uploads are "
               "processed when clients call POST /api/images/{id}/complete")
    else:
        yield f"bucket {settings.bucket}: ObjectCreated under {', '.join(prefixes)} -> queue {queue_name}"

    if settings.topic_arn:
        yield _ensure_topic(clients.sns, settings.topic_arn)

    keys, indexes, ttl = template.table("ImagesTable")
    yield _ensure_table(dynamodb, settings.table, keys, indexes)
    yield _ensure_ttl(dynamodb, settings.table, ttl)
    completed = backfill_list_keys(dynamodb, settings.table)
    yield f"table {settings.table}: list keys (status index, tag items) written for {completed} earlier records"
    session_table = settings.session_table or FLASK_SESSION_DEFAULT_TABLE
    keys, indexes, ttl = template.table("SessionsTable")
    yield _ensure_table(dynamodb, session_table, keys, indexes)
    yield _ensure_ttl(dynamodb, session_table, ttl)


def _ensure_topic(sns: Any, topic_arn: str) -> str:
    """The image-events topic named by the last part of IMAGESERVICE_TOPIC_ARN (CreateTopic is
    idempotent: it answers the existing topic's ARN)."""
    name = topic_arn.rsplit(":", 1)[-1]
    made = sns.create_topic(Name=name)["TopicArn"]
    if made != topic_arn:
        return f"topic {name}: {made}; note: set IMAGESERVICE_TOPIC_ARN to it"
    return f"topic {name}: ready ({made})"


def _ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) not in MISSING_QUEUE_CODES:
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return url, f"queue {name}: created ({url})"
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url, f"queue {name}: exists, attributes updated ({url})"


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _queue_policy(queue_arn: str, bucket: str) -> str:
    partition = queue_arn.split(":")[1]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ImagesBucketSendsObjectCreatedEvents",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"}},
        }],
    })


def _ensure_bucket(s3: Any, bucket: str, region: str) -> str:
    try:
        s3.head_bucket(Bucket=bucket)
        return f"bucket {bucket}: exists"
    except ClientError as exc:
        if error_code(exc) not in MISSING_BUCKET_CODES:
            raise
    options: dict[str, Any] = {}
    if region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **options)
    return f"bucket {bucket}: created"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _notifications(queue_arn: str, prefixes: list[str]) -> dict[str, Any]:
    return {"QueueConfigurations": [
        {
            "Id": f"originals-{index}",
            "QueueArn": queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
        }
        for index, prefix in enumerate(prefixes)
    ]}


def _ensure_table(dynamodb: Any, table: str, key_schema: list[tuple[str, str]],
                  indexes: dict[str, list[tuple[str, str]]] | None = None) -> str:
    """The table with ``key_schema`` and the global secondary ``indexes`` (name -> key schema;
    every attribute projected): created when missing, an index it lacks added (one at a time,
    as UpdateTable allows; each waited for until ACTIVE)."""
    indexes = indexes or {}
    try:
        existing = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=_attribute_definitions(key_schema, indexes),
            KeySchema=_key_schema(key_schema),
            **({"GlobalSecondaryIndexes": [_index(name, keys) for name, keys in indexes.items()]} if indexes else {}),
        )
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return f"table {table}: created" + (f" with index {', '.join(indexes)}" if indexes else "")
    present = {index["IndexName"] for index in existing.get("GlobalSecondaryIndexes", [])}
    added = [name for name in indexes if name not in present]
    for name in added:
        dynamodb.update_table(
            TableName=table, AttributeDefinitions=_attribute_definitions(key_schema, indexes),
            GlobalSecondaryIndexUpdates=[{"Create": _index(name, indexes[name])}],
        )
        _wait_for_index(dynamodb, table, name)
    return f"table {table}: exists" + (f", index {', '.join(added)} added" if added else "")


def _key_schema(keys: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"AttributeName": name, "KeyType": kind} for name, kind in keys]


def _index(name: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": _key_schema(keys), "Projection": {"ProjectionType": "ALL"}}


def _attribute_definitions(key_schema: list[tuple[str, str]],
                           indexes: dict[str, list[tuple[str, str]]]) -> list[dict[str, str]]:
    """Every key attribute of the table and its indexes (all strings), each once."""
    names = dict.fromkeys(name for keys in (key_schema, *indexes.values()) for name, _ in keys)
    return [{"AttributeName": name, "AttributeType": "S"} for name in names]


def _wait_for_index(dynamodb: Any, table: str, name: str, pause: float = 2.0) -> None:
    """Until the table and index ``name`` are ACTIVE (DynamoDB backfills a new index from the
    existing items first). Raises TimeoutError after INDEX_WAIT_SECONDS."""
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while True:
        description = dynamodb.describe_table(TableName=table)["Table"]
        statuses = [index.get("IndexStatus") for index in description.get("GlobalSecondaryIndexes", [])
                    if index["IndexName"] == name]
        if description.get("TableStatus") == "ACTIVE" and statuses == ["ACTIVE"]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table}: index {name} is not ACTIVE after {INDEX_WAIT_SECONDS} s")
        time.sleep(pause)


def _ensure_ttl(dynamodb: Any, table: str, attribute: str) -> str:
    current = dynamodb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and current.get("AttributeName") == attribute:
        return f"table {table}: TTL on {attribute}"
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )
    return f"table {table}: TTL on {attribute} enabled"
