"""The batch job (docs/DESIGN.md "Batches"): a batch's images packed as one ZIP, streamed into
storage, of the originals or of a conversion of each made under the imaging budget.

Run on the local queue or through SQS and the Lambda, never in a request. A run starts the
archive from scratch, so a job delivered again after a crash rewrites it whole (the storage
sink publishes an archive only when it is complete) and no image is in it twice.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Iterator

from . import conversion_cache
from .catalog import Catalog
from .core import batches, keys
from .core.archive import ZIP_CONTENT_TYPE, ArchiveEntry, write_zip
from .core.batches import Batch, BatchItem
from .core.conversions import conversion_request_from
from .core.errors import PayloadTooLarge, ServiceError, TransientError
from .core.records import READY, ImageRecord
from .pipeline import imaging_limits
from .ports import BlobNotFound, BlobStore, ImagingRunner, Metrics
from .settings import Settings

log = logging.getLogger(__name__)


def archive_key(batch: Batch) -> str:
    """Beside the owner's conversions, so it expires with them."""
    return keys.batch_archive_key(batch.user_id, batch.batch_id, keys.is_session_user(batch.user_id))


class BatchRunner:
    def __init__(self, blobs: BlobStore, catalog: Catalog, imaging: ImagingRunner, settings: Settings,
                 metrics: Metrics):
        self.blobs, self.catalog, self.imaging, self.settings, self.metrics = blobs, catalog, imaging, settings, metrics

    def run(self, user_id: str, batch_id: str) -> str:
        """Pack the batch; its outcome (``ready``, ``failed``, or ``skipped`` when there is
        nothing to do). Raises TransientError to have the job delivered again."""
        batch = self.catalog.get_batch(user_id, batch_id)
        if batch is None or batch.status in batches.FINISHED:
            return "skipped"
        # From scratch, whatever an earlier run (one a crash cut short) got to.
        batch = dataclasses.replace(batch, status=batches.RUNNING, items=[BatchItem(item.image_id) for item in batch.items])
        if not self.catalog.save_batch(batch):
            return "skipped"  # cancelled meanwhile
        records = {item.image_id: self._ready_record(batch, item) for item in batch.items}
        key = archive_key(batch)
        try:
            with self.blobs.open_writer(key, ZIP_CONTENT_TYPE) as sink:
                write_zip(sink, self._entries(batch, records), max_bytes=self.settings.batch_max_bytes)
        except PayloadTooLarge:
            return self._fail(batch, "batch_too_large",
                              f"The archive would pass the {self.settings.batch_max_bytes} bytes a batch may make.")
        size = self.blobs.size(key) or 0
        if not self.catalog.finish_batch(batch, size, limit=self.settings.quota_bytes):
            self.blobs.delete(key)
            current = self.catalog.get_batch(user_id, batch_id)
            if current is None or current.status == batches.CANCELLED:
                return "skipped"
            return self._fail(batch, "quota_exceeded", f"The quota of {self.settings.quota_bytes} bytes is used up.")
        log.info("batch %s ready: %d items, %d bytes", batch_id, batch.total, size,
                 extra={"user_id": user_id, "batch_id": batch_id})
        return READY

    def _ready_record(self, batch: Batch, item: BatchItem) -> ImageRecord | None:
        """The owner's ready record of an item, or None with the item skipped and why."""
        record = self.catalog.get(batch.user_id, item.image_id)
        if record is None:
            item.status, item.error = batches.ITEM_SKIPPED, {"code": "image_not_found", "message": "No such image."}
        elif record.status != READY:
            item.status = batches.ITEM_SKIPPED
            item.error = {"code": "not_ready", "message": f"The image is {record.status}, not ready."}
        return record if item.status == batches.ITEM_PENDING else None

    def _entries(self, batch: Batch, records: dict[str, ImageRecord | None]) -> Iterator[ArchiveEntry]:
        """Each packable item's entry, in the batch's order; a conversion that failed is reported
        on its item and left out. Up to ``imaging_max_jobs`` items are fetched (and converted)
        ahead of the one being written, never more: memory holds that many files whatever the
        batch's size."""
        items = [item for item in batch.items if item.status == batches.ITEM_PENDING]
        ahead = max(1, self.settings.imaging_max_jobs)
        with ThreadPoolExecutor(max_workers=ahead) as pool:
            pending: deque = deque()
            upcoming = iter(items)
            for item in islice(upcoming, ahead):
                pending.append((item, pool.submit(self._bytes_of, batch, records[item.image_id])))
            while pending:
                item, future = pending.popleft()
                following = next(upcoming, None)
                if following is not None:
                    pending.append((following, pool.submit(self._bytes_of, batch, records[following.image_id])))
                try:
                    data, content_type = future.result()
                except TransientError:
                    raise
                except (ServiceError, BlobNotFound) as exc:
                    item.status = batches.ITEM_FAILED
                    item.error = {"code": getattr(exc, "code", "image_not_found"), "message": str(exc)}
                    continue
                record = records[item.image_id]
                item.status = batches.ITEM_DONE
                yield ArchiveEntry(record.filename or item.image_id, content_type, [data], size=len(data))  # type: ignore[union-attr]
                del data

    def _bytes_of(self, batch: Batch, record: ImageRecord) -> tuple[bytes, str]:
        limit = self.settings.max_upload_bytes
        if batch.action == "zip":
            return self.blobs.get(record.original_key, max_bytes=limit), record.content_type or "application/octet-stream"
        request = conversion_request_from(batch.convert or {})
        kept = conversion_cache.cached_conversion(self.blobs, conversion_cache.meta_key(record, request.cache_key()))
        if kept is not None:  # an equal convert call made it already: no imaging work
            return self.blobs.get(kept["key"], max_bytes=limit), kept["content_type"]
        original = self.blobs.get(record.original_key, max_bytes=limit)
        encoded = self.imaging.convert(original, request, imaging_limits(self.settings),
                                       max_output_bytes=self.settings.max_upload_bytes)
        return encoded.data, encoded.content_type

    def _fail(self, batch: Batch, code: str, message: str) -> str:
        failed = Batch.from_dict({**batch.to_dict(), "status": batches.FAILED})
        for item in failed.items:  # no archive: none of them is delivered
            if item.status in (batches.ITEM_PENDING, batches.ITEM_DONE):
                item.status, item.error = batches.ITEM_FAILED, {"code": code, "message": message}
        self.catalog.save_batch(failed)
        self.blobs.delete(archive_key(batch))
        return batches.FAILED
