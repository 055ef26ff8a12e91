"""Conversions: convert and resize a ready image (optionally watermark it), cached per
parameters and counted in the owner's bytes."""

from __future__ import annotations

import json
import time
from typing import Any

from .. import conversion_cache
from ..auth import Principal
from ..commands import Conversion
from ..core import keys
from ..core.conversions import ConversionRequest
from ..core.errors import Conflict, NotFound, TooManyRequests
from ..core.filenames import with_extension
from ..core.ids import is_id
from ..core.records import READY, ImageRecord
from ..pipeline import imaging_limits
from ..ports import BlobNotFound
from .base import ServiceBase, _bytes_quota, _image_gone

CONVERSION_RATE = "conversions"  # Catalog.hit_rate counter of new conversion outputs per owner


class Conversions(ServiceBase):
    def convert(self, principal: Principal, image_id: str, request: ConversionRequest,
                user_id: str | None = None) -> Conversion:
        """Convert (and watermark) a ready image, or answer the stored output of an equal request.

        Each new output costs the owner one of ``conversions_per_minute`` (429 with Retry-After),
        counts in their byte usage and quota (409 quota_exceeded) and may not exceed
        ``max_upload_bytes`` (422 output_too_large). A watermark ``image_id`` must name another
        ready image of the same owner (404 otherwise); its original is the logo.
        """
        s = self.settings
        record = self._ready(principal, image_id, user_id)
        digest = request.cache_key()  # normalised: requests that make equal outputs share one file
        meta_key = conversion_cache.meta_key(record, digest)
        meta = conversion_cache.cached_conversion(self.blobs, meta_key)
        if meta is None:
            logo = self._logo(principal, request, record.user_id)
            wait = self.catalog.hit_rate(record.user_id, CONVERSION_RATE, s.conversions_per_minute)
            if wait is not None:
                raise TooManyRequests(f"At most {s.conversions_per_minute} new conversions a minute; "
                                      f"try again in {wait} s.", code="rate_limited", retry_after=wait)
            if self.catalog.usage(record.user_id).bytes >= s.quota_bytes:  # before spending the work
                raise _bytes_quota(s.quota_bytes)
            meta = self._make_conversion(record, request, digest, logo)
            self.blobs.put(meta_key, json.dumps(meta).encode(), "application/json")
            if self.catalog.get(record.user_id, record.image_id) is None:
                # Deleted while it was converted: the delete may have run before these files
                # were written, so they go now, and the caller hears what a later call would.
                for written in (meta["key"], meta_key):
                    self.blobs.delete(written)
                raise _image_gone()
        filename = with_extension(record.filename, meta["extension"], f"-{meta['width']}x{meta['height']}")
        url = self.blobs.presign_download(
            meta["key"], expires_in=s.download_url_ttl, filename=filename,
            content_type=meta["content_type"], attachment=True,
        )
        return Conversion(url.url, url.expires_at, meta["format"], meta["width"], meta["height"], meta["bytes"])

    def _make_conversion(self, record: ImageRecord, request: ConversionRequest, digest: str,
                         logo: bytes | None) -> dict[str, Any]:
        s = self.settings
        try:
            original = self.blobs.get(record.original_key, max_bytes=s.max_upload_bytes)
        except BlobNotFound:  # deleted since it was read as ready
            raise _image_gone() from None
        started = time.perf_counter()
        encoded = self.imaging.convert(original, request, imaging_limits(s), logo=logo,
                                       max_output_bytes=s.max_upload_bytes)
        self.metrics.timing("conversion_time", (time.perf_counter() - started) * 1000, format=encoded.format)
        self.metrics.increment("conversion_bytes", len(encoded.data), format=encoded.format)
        # Counted before it is stored, atomically against the quota: two racing conversions
        # cannot both squeeze under it. (Two racing equal requests may each count their copy
        # of one file until the image is deleted; the rate limit bounds how often.)
        if not self.catalog.add_bytes(record.user_id, record.image_id, len(encoded.data), limit=s.quota_bytes):
            # Refused for one of two reasons: the quota, or the image was deleted meanwhile
            # (and its bytes released), which is a 404 like any later call would get.
            if self.catalog.get(record.user_id, record.image_id) is None:
                raise _image_gone()
            raise _bytes_quota(s.quota_bytes)
        key = keys.conversion_key(record.user_id, record.image_id, digest, encoded.extension, record.ephemeral)
        self.blobs.put(key, encoded.data, encoded.content_type)
        return {
            "key": key, "format": encoded.format, "content_type": encoded.content_type,
            "extension": encoded.extension, "width": encoded.width, "height": encoded.height,
            "bytes": len(encoded.data),
        }

    def _logo(self, principal: Principal, request: ConversionRequest, owner: str) -> bytes | None:
        """The original bytes of the watermark's logo image: the same owner's, and ready."""
        mark = request.watermark
        if mark is None or mark.image_id is None:
            return None
        if not is_id(mark.image_id):
            raise NotFound("No such watermark image.", code="image_not_found")
        logo = self.catalog.get(owner, mark.image_id)
        if logo is None:
            raise NotFound("No such watermark image.", code="image_not_found")
        if logo.status != READY:
            raise Conflict(f"The watermark image is {logo.status}, not ready.", code="not_ready")
        return self.blobs.get(logo.original_key, max_bytes=self.settings.max_upload_bytes)
