"""lambda/handler.py on real event JSON (tests/events/) against S3, DynamoDB and SQS on a moto server."""

from __future__ import annotations

import copy
import importlib
import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from imageservice.adapters.aws.factory import build_aws_adapters
from imageservice.adapters.aws.setup import setup_resources
from imageservice.core import keys
from imageservice.core.ids import new_id
from imageservice.core.records import ImageRecord, ListQuery
from imageservice.core.timeutil import iso_in, to_iso, utcnow
from imageservice.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events"
APP_MESSAGE_IMAGE_ID = "01HXF9ZQ2W8J9K2M4N6P8R0T2V"  # the id in sqs_app_message.json
MAX_ATTEMPTS = 3


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def jpeg_bytes(width=640, height=480, color=(200, 60, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG", quality=85)
    return out.getvalue()


def png_bytes(width=300, height=200) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 120, 200, 255)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def aws(moto_server, aws_names, monkeypatch, tmp_path):
    """Resources made by setup_resources, the handler's environment pointing at them."""
    for name, value in aws_names.env(moto_server.endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IMAGESERVICE_JOB_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    settings = Settings.from_env()
    blobs, catalog, queue, clients = build_aws_adapters(settings)
    list(setup_resources(settings, clients))
    return settings, blobs, catalog, clients


@pytest.fixture
def lambda_handler(monkeypatch):
    """The ``handler`` module as Lambda imports it (lambda/ on the path), fresh per test."""
    monkeypatch.syspath_prepend(str(REPO / "lambda"))
    module = importlib.import_module("handler")
    module.reset()
    yield module.handler
    module.reset()


def objects(clients, settings, prefix="") -> list[str]:
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def pending_record(user_id: str, image_id: str, **fields) -> ImageRecord:
    now = utcnow()
    return ImageRecord(
        image_id=image_id, user_id=user_id, status="pending", filename="photo.jpg", content_type="image/jpeg",
        created_at=to_iso(now), upload_expires_at=iso_in(600, now),
        original_key=keys.original_key(user_id, image_id, keys.is_session_user(user_id)), **fields,
    )


def test_importing_the_handler_needs_no_aws_and_no_flask():
    code = (
        "import os, sys; [os.environ.pop(k) for k in list(os.environ) if k.startswith(('AWS_', 'IMAGESERVICE_'))];"
        f"sys.path.insert(0, {str(REPO / 'lambda')!r}); import handler;"
        "bad = [m for m in ('flask', 'werkzeug', 'imageservice.web', 'imageservice.service') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_object_dropped_into_the_bucket_becomes_a_ready_image(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    blobs.put("originals/alice/My Photo(1).jpg", jpeg_bytes(), "image/jpeg")

    assert lambda_handler(load_event("sqs_s3_object_created.json"), None) == {"batchItemFailures": []}

    [record] = catalog.list(ListQuery(user_id="alice")).images
    assert (record.status, record.filename, record.width, record.height) == ("ready", "My Photo(1).jpg", 640, 480)
    assert objects(clients, settings, "originals/") == [record.original_key]  # moved to its canonical key
    assert objects(clients, settings, "derivatives/") == [
        f"derivatives/alice/{record.image_id}/preview.webp", f"derivatives/alice/{record.image_id}/thumb.webp"]


def test_the_same_event_twice_makes_one_set_of_derivatives(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    catalog.create(pending_record("alice", APP_MESSAGE_IMAGE_ID))
    blobs.put(f"originals/alice/{APP_MESSAGE_IMAGE_ID}", jpeg_bytes(), "image/jpeg")
    event = load_event("sqs_app_message.json")

    assert lambda_handler(event, None) == {"batchItemFailures": []}
    first = catalog.get("alice", APP_MESSAGE_IMAGE_ID)
    derivatives = [(o["Key"], o["ETag"], o["LastModified"]) for o in
                   clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix="derivatives/")["Contents"]]
    assert first.status == "ready" and first.attempts == 1 and len(derivatives) == 2

    assert lambda_handler(copy.deepcopy(event), None) == {"batchItemFailures": []}
    assert catalog.get("alice", APP_MESSAGE_IMAGE_ID) == first
    again = [(o["Key"], o["ETag"], o["LastModified"]) for o in
             clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix="derivatives/")["Contents"]]
    assert again == derivatives  # not even rewritten


def test_a_dropped_object_notified_twice_is_adopted_once(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    blobs.put("originals/alice/My Photo(1).jpg", jpeg_bytes(), "image/jpeg")
    event = load_event("sqs_s3_object_created.json")
    lambda_handler(event, None)
    assert lambda_handler(copy.deepcopy(event), None) == {"batchItemFailures": []}
    assert len(catalog.list(ListQuery(user_id="alice")).images) == 1
    assert len(objects(clients, settings, "derivatives/")) == 2


def test_a_poison_record_fails_alone(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    catalog.create(pending_record("alice", APP_MESSAGE_IMAGE_ID))
    blobs.put(f"originals/alice/{APP_MESSAGE_IMAGE_ID}", png_bytes(), "image/png")
    blobs.put("originals/alice/My Photo(1).jpg", jpeg_bytes(), "image/jpeg")
    poison = copy.deepcopy(load_event("sqs_app_message.json")["Records"][0])
    poison.update(messageId="poison-1", body='{"this is": "no job"')
    event = {"Records": [
        load_event("sqs_app_message.json")["Records"][0],
        poison,
        load_event("sqs_s3_test_event.json")["Records"][0],
        load_event("sqs_s3_object_created.json")["Records"][0],
    ]}

    assert lambda_handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}

    images = catalog.list(ListQuery(user_id="alice")).images
    assert sorted(r.status for r in images) == ["ready", "ready"]
    assert catalog.get("alice", APP_MESSAGE_IMAGE_ID).format == "PNG"


def test_a_test_event_does_nothing(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    assert lambda_handler(load_event("sqs_s3_test_event.json"), None) == {"batchItemFailures": []}
    assert objects(clients, settings) == []


def test_a_direct_s3_invocation_processes_its_keys(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    user = "anon-01hxf9zq2w8j9k2m4n6p8r0t2v"
    blobs.put(f"sessions/originals/{user}/beach day.png", png_bytes(), "image/png")

    assert lambda_handler(load_event("s3_direct_object_created.json"), None) == {"processed": 1}

    [record] = catalog.list(ListQuery(user_id=user)).images
    assert record.status == "ready" and record.ephemeral and record.expires_at
    assert objects(clients, settings, "sessions/derivatives/") == [
        f"sessions/derivatives/{user}/{record.image_id}/preview.webp",
        f"sessions/derivatives/{user}/{record.image_id}/thumb.webp"]
    item = clients.dynamodb.get_item(TableName=settings.table, Key={
        "user_id": {"S": user}, "image_id": {"S": record.image_id}})["Item"]
    assert int(item["ttl"]["N"]) > 0  # DynamoDB TTL removes the session workspace's record


def test_a_direct_s3_invocation_raises_when_a_key_fails(aws, lambda_handler):
    settings, blobs, catalog, clients = aws
    image_id = new_id()
    catalog.create(pending_record("alice", image_id))
    # An archived original cannot be read: a failure that is not the image's fault.
    clients.s3.put_object(Bucket=settings.bucket, Key=f"originals/alice/{image_id}", Body=jpeg_bytes(),
                          StorageClass="GLACIER")
    event = load_event("s3_direct_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = f"originals/alice/{image_id}"
    with pytest.raises(RuntimeError, match=image_id):
        lambda_handler(event, None)
    assert catalog.get("alice", image_id).status == "pending"  # released for the retry


@pytest.mark.parametrize("receive_count, final", [("1", False), (str(MAX_ATTEMPTS - 1), False),
                                                  (str(MAX_ATTEMPTS), True)])
def test_only_the_final_attempt_marks_the_record_failed(aws, lambda_handler, receive_count, final):
    settings, blobs, catalog, clients = aws
    catalog.create(pending_record("alice", APP_MESSAGE_IMAGE_ID))
    clients.s3.put_object(Bucket=settings.bucket, Key=f"originals/alice/{APP_MESSAGE_IMAGE_ID}",
                          Body=jpeg_bytes(), StorageClass="GLACIER")
    event = load_event("sqs_app_message.json")
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = receive_count

    response = lambda_handler(event, None)

    # Failed either way: SQS keeps the message, and after the last attempt moves it to the DLQ.
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    record = catalog.get("alice", APP_MESSAGE_IMAGE_ID)
    if final:
        assert record.status == "rejected"
        assert record.error["code"] == "processing_failed" and "InvalidObjectState" in record.error["message"]
        assert objects(clients, settings, "originals/") == []  # a rejected image keeps no original
    else:
        assert (record.status, record.error, record.attempts) == ("pending", None, 1)
