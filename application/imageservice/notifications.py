"""``image.ready`` / ``image.rejected`` events, delivered at least once from the job queue.

Two halves:

- **announce** (the pipeline's hook, ``EventPublisher.announce``): just *before* a record's
  final write, one ``notify`` job per configured target (the webhook, the SNS topic) goes on
  the job queue carrying the event. Enqueued before the write, so a crash between the two
  cannot lose an event; a failed enqueue fails the processing run, which is retried.
- **deliver** (a ``notify`` job, in the local worker or the Lambda): first checks the catalog
  that the record really reached the event's state (the write may not have happened: then the
  job is retried while the record is still in flight, and dropped when it never will), then
  POSTs the signed event to the webhook or publishes it to SNS. Any failure raises, and the
  queue retries with backoff; after ``job_max_attempts`` the job goes to the dead letters
  (local queue, or SQS's redrive policy) and the log says so.

The event's ``id`` is made once, at announce time, and travels in the job: every retry sends
the same id, so a receiver de-duplicates by it.

Webhook requests are signed like Stripe's: ``Imageservice-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<raw body>">`` with ``IMAGESERVICE_WEBHOOK_SECRET``; ``verify_signature``
is what a receiver runs (README "Notifications").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Callable, Protocol

from .core.errors import TransientError
from .core.ids import new_id
from .core.records import NOTIFY_JOB, PENDING, PROCESSING, READY, REJECTED, ImageRecord, Job
from .core.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)

EVENT_TYPES = {READY: "image.ready", REJECTED: "image.rejected"}
SIGNATURE_HEADER = "Imageservice-Signature"
WEBHOOK, SNS = "webhook", "sns"
# Backoff of a failed delivery: base x 2^(attempt - 1), at most this (local queue; SQS spaces
# retries by the queue's visibility timeout).
MAX_RETRY_DELAY = 3600
SIGNATURE_TOLERANCE = 300  # seconds a receiver accepts between t= and its clock


class EventTopic(Protocol):
    def publish(self, event: dict[str, Any]) -> None:
        """Publish one event; raises TransientError when the topic cannot be reached."""


class EventQueue(Protocol):
    def send(self, job: Job) -> None:
        """Enqueue a job (JobQueue.send)."""


class DeliveryFailed(TransientError):
    """The target did not take the event (non-2xx, timeout, unreachable): retry later."""


def image_event(record: ImageRecord, now: datetime) -> dict[str, Any]:
    """The event for a settled record: its image as ``GET /api/images/{id}`` shows it to its owner."""
    return {
        "id": "evt_" + new_id().lower(),
        "type": EVENT_TYPES[record.status],
        "occurred_at": to_iso(now),
        "image": record.to_api(include_gps=True),
    }


def event_body(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, body: bytes, header: str, *, now: float | None = None,
                     tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within ``tolerance``."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature_header(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(base: int, attempts: int) -> int:
    """Seconds before delivery attempt ``attempts + 1``: exponential, capped."""
    return int(min(MAX_RETRY_DELAY, base * 2 ** max(0, attempts - 1)))


class EventPublisher:
    """The pipeline's hook: announce a record about to settle to every configured target."""

    def __init__(self, queue: EventQueue, targets: tuple[str, ...], clock: Callable[[], datetime] = utcnow):
        self.queue = queue
        self.targets = targets
        self.clock = clock

    def announce(self, record: ImageRecord) -> None:
        """Enqueue one notify job per target for ``record`` (ready or rejected) before it is
        written. Raises what the queue raises (the processing run is then retried)."""
        if not self.targets or record.status not in EVENT_TYPES:
            return
        event = image_event(record, self.clock())
        for target in self.targets:
            self.queue.send(Job(event["id"], source="pipeline", request_id=record.request_id,
                                kind=NOTIFY_JOB, payload={"target": target, "event": event}))


class WebhookSender:
    def __init__(self, url: str, secret: str, timeout: float, clock: Callable[[], float] = time.time):
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.clock = clock
        # A redirect is an answer, not a delivery: POSTs are never re-sent elsewhere.
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, event: dict[str, Any]) -> None:
        """POST the signed event; raises DeliveryFailed unless the receiver answers 2xx."""
        body = event_body(event)
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": "imageservice-webhooks/1",
            SIGNATURE_HEADER: signature_header(self.secret, body, int(self.clock())),
        })
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"the webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeout
            raise DeliveryFailed(f"the webhook could not be reached: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the webhook answered {status}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class NotificationDelivery:
    """What a ``notify`` job does."""

    def __init__(self, catalog, webhook: WebhookSender | None = None, topic: EventTopic | None = None):
        self.catalog = catalog
        self.webhook = webhook
        self.topic = topic

    def deliver(self, payload: dict[str, Any]) -> str:
        """Deliver ``payload["event"]`` to ``payload["target"]``; returns "delivered" or
        "dropped". Raises DeliveryFailed / TransientError when the job should be retried."""
        target, event = payload.get("target"), payload.get("event") or {}
        image = event.get("image") or {}
        record = self.catalog.get(image.get("user_id", ""), image.get("image_id", ""))
        if record is not None and record.status in (PENDING, PROCESSING):
            raise TransientError(f"event {event.get('id')}: the record is not written yet")
        if record is None or record.status != image.get("status") or record.processed_at != image.get("processed_at"):
            log.info("event %s dropped: its record never reached that state", event.get("id"))
            return "dropped"
        if target == WEBHOOK and self.webhook is not None:
            self.webhook.send(event)
        elif target == SNS and self.topic is not None:
            self.topic.publish(event)
        else:
            log.warning("event %s dropped: %s is not configured any more", event.get("id"), target)
            return "dropped"
        log.info("event %s (%s) delivered to %s", event.get("id"), event.get("type"), target)
        return "delivered"


def notification_targets(settings) -> tuple[str, ...]:
    return tuple(t for t, on in ((WEBHOOK, settings.webhook_url), (SNS, settings.topic_arn)) if on)


def build_webhook(settings) -> WebhookSender | None:
    if not settings.webhook_url:
        return None
    return WebhookSender(settings.webhook_url, settings.webhook_secret, settings.webhook_timeout)
