"""Many images at once: a batch packs the caller's images (originals, or a conversion of each)
into one ZIP by a job; a bulk delete removes many in one call (docs/DESIGN.md "Batches")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..auth import Principal
from ..batching import archive_key
from ..core import batches
from ..core.batches import Batch, BatchItem
from ..core.conversions import conversion_request_from
from ..core.correlation import current_request_id
from ..core.errors import NotFound, Unprocessable
from ..core.ids import is_id, new_id
from ..core.records import BATCH_JOB, READY, Job
from ..core.timeutil import from_iso, to_iso
from .base import ServiceBase


def _no_batch() -> NotFound:
    return NotFound("No such batch.", code="batch_not_found")


class Batches(ServiceBase):
    def create_batch(self, principal: Principal, action: str, image_ids: list[str],
                     convert: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue a batch of the caller's images. Ids it does not own, unknown ids and images not
        ready are reported per item and skipped. Raises PayloadTooLarge past
        ``batch_max_images``, TooManyRequests past ``batches_per_hour``, Unprocessable when the
        originals alone would pass ``batch_max_bytes``."""
        s = self.settings
        ids = batches.check_size(image_ids, s.batch_max_images)
        if action == "convert":
            conversion_request_from(convert or {})  # a bad body is refused now, not by the job
        owner = principal.user_id
        items, held = [], 0
        for image_id in ids:
            record = self.catalog.get(owner, image_id) if is_id(image_id) else None
            item = BatchItem(image_id)
            if record is None:
                item.status, item.error = batches.ITEM_SKIPPED, {"code": "image_not_found", "message": "No such image."}
            elif record.status != READY:
                item.status = batches.ITEM_SKIPPED
                item.error = {"code": "not_ready", "message": f"The image is {record.status}, not ready."}
            else:
                held += record.size or 0
            items.append(item)
        if action == "zip" and held > s.batch_max_bytes:
            raise Unprocessable(f"These originals hold {held} bytes; a batch makes at most {s.batch_max_bytes}.",
                                code="batch_too_large")
        now = self.clock()
        ends = now + timedelta(seconds=s.session_ttl)
        if principal.expires_at:
            ends = min(ends, from_iso(principal.expires_at))
        batch = Batch(batch_id=new_id(), user_id=owner, action=action, created_at=to_iso(now), expires_at=to_iso(ends),
                      items=items, convert=dict(convert) if action == "convert" else None)
        self.catalog.create_batch(batch, per_hour=s.batches_per_hour)
        self.queue.send(Job(batch.batch_id, request_id=current_request_id(), kind=BATCH_JOB, payload={"user_id": owner}))
        return batch.to_api()

    def get_batch(self, principal: Principal, batch_id: str) -> dict[str, Any]:
        batch = self.catalog.get_batch(principal.user_id, batch_id) if is_id(batch_id) else None
        if batch is None:
            raise _no_batch()
        url = None
        if batch.status == batches.READY:
            name = "images-" + from_iso(batch.created_at).strftime("%Y%m%d-%H%M") + ".zip"
            url = self.blobs.presign_download(archive_key(batch), expires_in=self.settings.download_url_ttl,
                                              filename=name, content_type="application/zip", attachment=True).url
        return batch.to_api(url)

    def cancel_batch(self, principal: Principal, batch_id: str) -> None:
        """Cancel the caller's batch and remove its archive (its bytes are given back)."""
        batch = self.catalog.cancel_batch(principal.user_id, batch_id) if is_id(batch_id) else None
        if batch is None:
            raise _no_batch()
        self.blobs.delete(archive_key(batch))

    def delete_images(self, principal: Principal, image_ids: list[str]) -> dict[str, list[str]]:
        """Delete each of the caller's images named; the others are reported not found."""
        ids = batches.check_size(image_ids, self.settings.batch_max_images)
        deleted, missing = [], []
        for image_id in ids:
            record = self.catalog.get(principal.user_id, image_id) if is_id(image_id) else None
            if record is not None and self.remove(record):
                deleted.append(image_id)
            else:
                missing.append(image_id)
        return {"deleted": deleted, "not_found": missing}
