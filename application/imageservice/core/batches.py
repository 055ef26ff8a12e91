"""Batches: many images at once, packed as one ZIP of their originals or of a conversion of
each (docs/DESIGN.md "Batches"). The value a batch is, and the rules of its life: which
statuses follow which, what an item's result is, and the limits a new batch meets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import PayloadTooLarge

QUEUED, RUNNING, READY, FAILED, CANCELLED = "queued", "running", "ready", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, READY, FAILED, CANCELLED)
FINISHED = (READY, FAILED, CANCELLED)
ACTIONS = ("zip", "convert")
ITEM_PENDING, ITEM_DONE, ITEM_SKIPPED, ITEM_FAILED = "pending", "done", "skipped", "failed"
# How long past its end a batch is kept in the store: the sweep gives back what an ended batch
# held (its archive's bytes) within that time, before the store's expiry drops the record.
KEEP_AFTER_END_SECONDS = 7 * 24 * 3600
# The fixed window BATCHES_PER_HOUR counts in (core/ratewindow.py).
BATCH_RATE, BATCH_WINDOW_SECONDS = "batches", 3600


@dataclass
class BatchItem:
    image_id: str
    status: str = ITEM_PENDING
    error: dict[str, str] | None = None

    def to_api(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "status": self.status, "error": self.error}


@dataclass
class Batch:
    batch_id: str
    user_id: str
    action: str
    created_at: str
    expires_at: str
    items: list[BatchItem] = field(default_factory=list)
    status: str = QUEUED
    convert: dict[str, Any] | None = None  # the convert body, for action "convert"
    archive_key: str | None = None
    bytes: int = 0  # the archive's, counted in the owner's usage once ready

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def done(self) -> int:
        return sum(item.status != ITEM_PENDING for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Batch":
        return cls(**{**data, "items": [BatchItem(**item) for item in data.get("items", [])]})

    def to_api(self, download_url: str | None = None) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id, "action": self.action, "status": self.status, "total": self.total,
            "done": self.done, "items": [item.to_api() for item in self.items],
            "download_url": download_url if self.status == READY else None,
            "expires_at": self.expires_at, "bytes": self.bytes,
        }


def check_size(image_ids: list[str], limit: int) -> list[str]:
    """The batch's ids, each once, in order. Raises PayloadTooLarge (``batch_too_large``)
    past ``limit`` ids."""
    unique = list(dict.fromkeys(image_ids))
    if len(unique) > limit:
        raise PayloadTooLarge(f"A batch holds at most {limit} images.", code="batch_too_large")
    return unique


def ended(batch: Batch, now: str) -> bool:
    """Whether the batch is past its end and still holds something (queued, running, or ready
    with its archive counted): the sweep cancels it."""
    return batch.expires_at <= now and batch.status not in (CANCELLED, FAILED)


def cancellable(batch: Batch) -> bool:
    return batch.status != CANCELLED


def counted_bytes(batch: Batch) -> int:
    """The bytes of the batch held in its owner's usage: its archive, once ready."""
    return batch.bytes if batch.status == READY else 0
