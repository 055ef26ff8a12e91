"""Conversion outputs kept per (image, normalised request): what a convert call stored, found
again by the next equal request, whether it comes from the API or a batch job."""

from __future__ import annotations

import json
from typing import Any

from .core import keys
from .core.records import ImageRecord
from .ports import BlobNotFound, BlobStore


def meta_key(record: ImageRecord, digest: str) -> str:
    """Where the description of the output of the request ``digest`` (its cache key) is kept."""
    return keys.conversion_key(record.user_id, record.image_id, digest, "json", record.ephemeral)


def cached_conversion(blobs: BlobStore, key: str) -> dict[str, Any] | None:
    """The stored output's description at ``key`` (``meta_key``), or None when there is none,
    or its file is missing or not the size described."""
    try:
        meta = json.loads(blobs.get(key, max_bytes=64 * 1024))
    except (BlobNotFound, ValueError):
        return None
    return meta if blobs.size(meta["key"]) == meta["bytes"] else None
