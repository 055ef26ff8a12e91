"""Idempotency keys: one request per (owner, key) runs, the others get its answer
(docs/DESIGN.md "Rules and where they live").

``begin`` either takes the key (an in-flight entry to store) or hands back the live entry;
an expired entry counts as absent. ``finish`` stores the answer; ``abandon`` frees an
in-flight key whose request failed (a finished one stays until it expires).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .records import DONE, IN_FLIGHT, IdempotencyEntry


@dataclass(frozen=True)
class Begun:
    """``take``: the entry to store when the caller now owns the key, else ``held``: the live
    entry someone stored before."""

    take: IdempotencyEntry | None
    held: IdempotencyEntry | None


def begin(current: IdempotencyEntry | None, now: str, fingerprint: str, expires_at: str) -> Begun:
    if current is not None and not expired(current, now):
        return Begun(take=None, held=current)
    return Begun(take=IdempotencyEntry(fingerprint=fingerprint, state=IN_FLIGHT, expires_at=expires_at), held=None)


def finish(current: IdempotencyEntry | None, image_id: str, response: dict[str, Any]) -> IdempotencyEntry | None:
    """The finished entry, or None when there is no entry to finish (it expired and went)."""
    if current is None:
        return None
    return dataclasses.replace(current, state=DONE, response=response, image_id=image_id)


def abandonable(current: IdempotencyEntry | None) -> bool:
    return current is not None and current.state == IN_FLIGHT


def expired(entry: IdempotencyEntry, now: str) -> bool:
    return entry.expires_at is not None and entry.expires_at <= now
