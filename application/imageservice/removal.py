"""Removing an image's objects: one routine for the pipeline (rejections, deletions met while
processing) and for the service (delete, sweep)."""

from __future__ import annotations

from .core import keys
from .core.records import ImageRecord
from .ports import BlobStore


def remove_image_objects(blobs: BlobStore, record: ImageRecord) -> None:
    """The one removal routine (pipeline and delete): the original, derivatives and conversions.

    Idempotent: removing what is already gone is not an error, so a failed run can be repeated.
    Quarantined files are not touched: they stay for review until their expiry.
    """
    blobs.delete(record.original_key)
    for prefix in keys.image_prefixes(record.user_id, record.image_id, record.ephemeral):
        blobs.delete_prefix(prefix)
