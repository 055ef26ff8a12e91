"""Image events: a real HTTP receiver (http.server in a thread) gets signed webhooks from the
job queue, retried with the same id until it answers 2xx, given up after the last attempt;
SNS -> SQS on the moto server with the `type` attribute filtering."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import imagefactory
from support import ApiClient, make_settings
from imageservice.bootstrap import build_components
from imageservice.core.errors import TransientError
from imageservice.core.records import NOTIFY_JOB
from imageservice.notifications import SIGNATURE_HEADER, verify_signature
from imageservice.web import create_app
from imageservice.entrypoints.worker import Worker

SECRET = "whsec-test"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next scripted status
    (then 200), after ``delay`` seconds when the script says ("slow", status)."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                step = receiver.script.pop(0) if receiver.script else 200
                if isinstance(step, tuple):
                    time.sleep(step[0])
                    step = step[1]
                self.send_response(step)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/images"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(*script):
        made.append(Receiver(script))
        return made[-1]

    yield make
    for r in made:
        r.close()


def service_for(tmp_path, receiver_url, **overrides):
    values = {"webhook_url": receiver_url, "webhook_secret": SECRET, "notify_retry_delay": 0,
              "webhook_timeout": 0.5, "job_max_attempts": 3, **overrides}
    components = build_components(make_settings(tmp_path, **values))
    app = create_app(components=components)
    worker = Worker(components)
    return ApiClient(app.test_client(), components.service.create_token("alice"), worker), components


def drain_until(worker, done, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        worker.drain()
        time.sleep(0.02)
    assert done()


def test_a_ready_image_sends_a_signed_event(tmp_path, receiver):
    hook = receiver()
    api, _ = service_for(tmp_path, hook.url)
    image_id = api.upload(imagefactory.jpeg_bytes(64, 48), tags="sea")
    drain_until(api.worker, lambda: hook.requests)
    headers, body = hook.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    assert not verify_signature("another-secret", body, headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET, body + b" ", headers[SIGNATURE_HEADER])
    t = int(headers[SIGNATURE_HEADER].split(",")[0][2:])
    assert abs(t - time.time()) < 30
    assert not verify_signature(SECRET, body, headers[SIGNATURE_HEADER], now=t + 301)  # replay window
    event = json.loads(body)
    assert set(event) == {"id", "type", "occurred_at", "image"}
    assert event["type"] == "image.ready" and event["id"].startswith("evt_")
    assert event["image"] == api.image(image_id)  # the record as GET /api/images/{id} returns it
    assert len(hook.requests) == 1


def test_a_rejected_image_sends_image_rejected(tmp_path, receiver):
    hook = receiver()
    api, _ = service_for(tmp_path, hook.url)
    image_id = api.upload(b"this is not an image at all", content_type="image/png", filename="x.png")
    drain_until(api.worker, lambda: hook.requests)
    event = hook.events()[0]
    assert event["type"] == "image.rejected"
    assert event["image"]["image_id"] == image_id and event["image"]["error"]["code"] == "not_an_image"


def test_5xx_and_timeouts_are_retried_with_the_same_id(tmp_path, receiver):
    hook = receiver(500, (1.0, 200), 200)  # a server error, then a reply slower than the timeout
    api, components = service_for(tmp_path, hook.url, job_max_attempts=5)
    api.upload(imagefactory.png_bytes(32, 32), content_type="image/png", filename="a.png")
    drain_until(api.worker, lambda: len(hook.requests) >= 3)
    time.sleep(0.2)
    api.worker.drain()
    ids = {event["id"] for event in hook.events()}
    assert len(hook.requests) == 3 and len(ids) == 1  # a receiver de-duplicates by id
    assert components.queue.dead_letters() == []


def test_delivery_gives_up_after_the_last_attempt_and_says_so(tmp_path, receiver, caplog):
    hook = receiver(*[503] * 10)
    api, components = service_for(tmp_path, hook.url, job_max_attempts=3)
    api.upload(imagefactory.png_bytes(32, 32), content_type="image/png", filename="a.png")
    with caplog.at_level(logging.ERROR, logger="imageservice.entrypoints.worker"):
        drain_until(api.worker, lambda: components.queue.dead_letters())
    assert len(hook.requests) == 3  # IMAGESERVICE_JOB_MAX_ATTEMPTS
    [(job, reason)] = components.queue.dead_letters()
    assert job.kind == NOTIFY_JOB and job.payload["event"]["id"] == hook.events()[0]["id"]
    assert "503" in reason
    assert any("gave up delivering event" in r.getMessage() for r in caplog.records)


def test_without_a_webhook_no_event_is_queued(tmp_path):
    components = build_components(make_settings(tmp_path))
    api = ApiClient(create_app(components=components).test_client(), components.service.create_token("alice"),
                    Worker(components))
    api.upload(imagefactory.png_bytes(16, 16), content_type="image/png", filename="a.png")
    assert components.queue.depth() == 0


def test_an_event_waits_for_its_record_and_drops_when_it_never_settles(tmp_path, receiver):
    hook = receiver()
    api, components = service_for(tmp_path, hook.url)
    ticket = api.ticket(content_type="image/png", size=10)
    record = components.catalog.get("alice", ticket["image_id"])
    event = {"id": "evt_x", "type": "image.ready", "image": {**record.to_api(), "status": "ready",
                                                             "processed_at": "2026-01-01T00:00:00Z"}}
    with pytest.raises(TransientError):  # still pending: the write may come
        components.notifications.deliver({"target": "webhook", "event": event})
    api.call("DELETE", f"/api/images/{ticket['image_id']}")
    assert components.notifications.deliver({"target": "webhook", "event": event}) == "dropped"
    assert hook.requests == []


def test_settings_need_a_secret_with_a_webhook(tmp_path):
    from imageservice.settings import SettingsError

    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        make_settings(tmp_path, webhook_url="http://127.0.0.1:9/hook")


# ---- aws mode: SNS -> SQS on the moto server ---------------------------------------------------


def test_sns_delivers_to_an_sqs_subscription_filtered_by_type(moto_server, aws_names, tmp_path):
    from imageservice.adapters.aws.setup import setup_resources
    from imageservice.entrypoints.sqs_worker import build_sqs_worker
    from imageservice.commands import UploadCommand
    from imageservice.service import Principal

    topic_arn = f"arn:aws:sns:us-east-1:123456789012:events-{aws_names.bucket}"
    settings = make_settings(tmp_path, **aws_names.settings_values(moto_server.endpoint), topic_arn=topic_arn,
                             worker_poll_seconds=1)
    lines = list(setup_resources(settings))
    assert any(line.startswith(f"topic events-{aws_names.bucket}: ready") for line in lines), lines
    components = build_components(settings)
    sqs, sns = moto_server.client("sqs"), moto_server.client("sns")
    inboxes = {}
    for wanted in ("image.ready", "image.rejected"):
        url = sqs.create_queue(QueueName=f"inbox-{wanted.split('.')[1]}-{aws_names.bucket}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                      Attributes={"FilterPolicy": json.dumps({"type": [wanted]})})
        inboxes[wanted] = url

    principal = Principal("alice")
    tickets = {}
    for name, data in (("good", imagefactory.png_bytes(24, 24)), ("bad", b"not an image, not at all")):
        ticket = components.service.create_upload(principal, UploadCommand(content_type="image/png", size=len(data)))
        record = components.catalog.get("alice", ticket.image_id)
        components.blobs.put(record.original_key, data, "image/png")
        components.service.complete(principal, ticket.image_id, None)
        tickets[name] = ticket.image_id

    worker = build_sqs_worker(components)
    received: dict[str, list] = {"image.ready": [], "image.rejected": []}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not all(received.values()):
        worker.run_once()
        for wanted, url in inboxes.items():
            for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0,
                                               MaxNumberOfMessages=10).get("Messages", []):
                received[wanted].append(json.loads(message["Body"]))
    assert all(received.values()), received
    for wanted, image_key in (("image.ready", "good"), ("image.rejected", "bad")):
        [notification] = received[wanted]  # the filter let only its own type through
        assert notification["MessageAttributes"]["type"]["Value"] == wanted
        event = json.loads(notification["Message"])
        assert event["type"] == wanted and event["image"]["image_id"] == tickets[image_key]
