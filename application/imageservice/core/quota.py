"""The owner's quota: what creating, growing and removing a record does to the owner's usage.

The rules of docs/DESIGN.md "Rules and where they live": a record counts one image and its
``size + extra_bytes`` bytes; a refusal counts nothing; a release never takes usage below zero.
The counter is stored as a plain mapping by whatever unit of work holds it.
"""

from __future__ import annotations

from typing import Mapping

from .records import ImageRecord, OwnerLimits, Usage

USAGE_PREFIX = "usage#"
# How long a session workspace owner's usage counter outlives the workspace (seconds): kept a
# while so a late delete still finds it, then dropped by the store's expiry.
COUNTER_SLACK_SECONDS = 24 * 3600


def usage_key(user_id: str) -> str:
    """The counter that holds ``user_id``'s usage."""
    return USAGE_PREFIX + user_id


def usage_of(counter: Mapping[str, int] | None, tally: Usage | None = None) -> Usage:
    """The usage a stored counter says. An owner without one (new, or from before counters)
    holds what ``tally``, a count of its records, says."""
    if counter is None:
        return tally or Usage(images=0, bytes=0)
    return Usage(images=int(counter.get("images", 0)), bytes=int(counter.get("bytes", 0)))


def as_counter(usage: Usage) -> dict[str, int]:
    return {"images": usage.images, "bytes": usage.bytes}


def charge(usage: Usage, record: ImageRecord, limits: OwnerLimits | None) -> Usage:
    """The usage once ``record`` is created. Raises Conflict (``quota_exceeded``) when it would
    take the owner past ``limits``: a new record's own bytes are checked, the conversions it
    already carries (extra_bytes) are counted without a check, as they were when made."""
    size = record.size or 0
    if limits is not None:
        limits.check_room(usage, 1, size)
    return Usage(images=usage.images + 1, bytes=usage.bytes + size + record.extra_bytes)


def resize(usage: Usage, old: ImageRecord, new: ImageRecord) -> Usage:
    """The usage once ``old`` is replaced by ``new``: moved by the difference of their sizes
    (the processor learns the real size; it is never refused, the upload already happened)."""
    return Usage(images=usage.images, bytes=max(0, usage.bytes + (new.size or 0) - (old.size or 0)))


def grow(usage: Usage, delta: int, limit: int | None) -> Usage | None:
    """The usage once ``delta`` more bytes (a kept conversion output) are counted, or None
    when that would take the owner past ``limit`` bytes (nothing is counted then)."""
    if limit is not None and delta > 0 and usage.bytes + delta > limit:
        return None
    return Usage(images=usage.images, bytes=max(0, usage.bytes + delta))


def release(usage: Usage, record: ImageRecord) -> Usage:
    """The usage once ``record`` is removed: its image and all its bytes given back."""
    return Usage(images=max(0, usage.images - 1),
                 bytes=max(0, usage.bytes - (record.size or 0) - record.extra_bytes))


def counter_expiry(record: ImageRecord) -> str | None:
    """When an owner's usage counter may be dropped (ISO 8601): a session workspace's owner
    ends with its workspace; a persistent owner's counter stays."""
    return record.expires_at
