"""The pipeline: one uploaded object in, a validated record and its derivatives out.

The same function runs in the local worker and in the Lambda. It is idempotent: a record is
*claimed* (pending -> processing, with a lease) before any work, so a repeated or concurrent
message for the same object finds it claimed or finished and does nothing; derivative keys are
deterministic, so a retried run overwrites rather than adds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from .removal import remove_image_objects
from .catalog import Catalog
from .ports import NO_METRICS, Scanner, BlobNotFound, BlobStore, BlobTooLarge, ImagingRunner, Metrics
from .core import correlation
from .core import imaging, keys
from .core.conversions import WatermarkSpec
from .core.errors import ImageRejected, TooExpensive, TransientError
from .core.ids import new_id
from .core.filenames import sanitize_filename
from .core.records import PENDING, PROCESSING, READY, REJECTED, ImageRecord
from .core.timeutil import epoch_to_iso, iso_in, to_iso, utcnow

log = logging.getLogger(__name__)

DERIVATIVE_CONTENT_TYPE = "image/webp"


@dataclass(frozen=True)
class PipelineConfig:
    max_upload_bytes: int
    thumb_edge: int
    preview_edge: int
    derivative_quality: int
    lease_seconds: int
    limits: imaging.ImagingLimits
    session_ttl: int
    quota_bytes: int | None = None  # None: no byte quota to re-check (unit tests' default)
    preview_watermark_text: str = ""  # a text mark on every preview; empty: none

    @classmethod
    def from_settings(cls, settings) -> "PipelineConfig":
        return settings.section(cls, lease_seconds=settings.job_visibility_timeout, limits=imaging_limits(settings))

    def derivative_specs(self) -> list[imaging.DerivativeSpec]:
        # Largest first: the imaging package makes each one from the previous (cascade).
        return [
            imaging.DerivativeSpec("preview", self.preview_edge, self.derivative_quality,
                                   watermark=WatermarkSpec(text=self.preview_watermark_text)
                                   if self.preview_watermark_text else None),
            imaging.DerivativeSpec("thumb", self.thumb_edge, self.derivative_quality),
        ]


def imaging_limits(settings) -> imaging.ImagingLimits:
    return settings.section(imaging.ImagingLimits)


# A claim's lease ends this long before its job can be delivered again.
LEASE_MARGIN_SECONDS = 1.0


def lease_before_redelivery(visible_again_at: float) -> str:
    """The lease for a job the queue hands out again at ``visible_again_at`` (epoch seconds).

    A redelivery after the processor died must find the lease lapsed; otherwise it would see
    the record claimed, skip it, and the image would stay ``processing`` for good.
    """
    return epoch_to_iso(visible_again_at - LEASE_MARGIN_SECONDS)


# What process_key reports; the callers only log it.
READY_OUTCOME, REJECTED_OUTCOME, SKIPPED = "ready", "rejected", "skipped"


class Pipeline:
    def __init__(self, blobs: BlobStore, catalog: Catalog, config: PipelineConfig,
                 clock: Callable[[], datetime] = utcnow, metrics: Metrics = NO_METRICS, *,
                 imaging: ImagingRunner, announce: Callable[[ImageRecord], None] = lambda record: None,
                 scanner: Scanner | None = None,
                 refund_charge: Callable[[ImageRecord], None] = lambda record: None):
        # scanner: None when none is configured; otherwise every original is scanned before
        # any derivative is written.
        self.scanner = scanner
        # announce(record): called just before a ready/rejected record is written, to queue its
        # image.ready / image.rejected event (notifications.EventPublisher.announce).
        self.announce = announce
        # refund_charge(record): gives back the anonymous bytes a rejected upload's declared
        # size was charged (admission.AnonymousAdmission.refund_upload).
        self.refund_charge = refund_charge
        self.blobs = blobs
        self.imaging = imaging
        self.catalog = catalog
        self.config = config
        self.clock = clock
        self.metrics = metrics

    def process_key(self, key: str, *, final_attempt: bool = False, lease_until: str | None = None,
                    request_id: str | None = None) -> str:
        """Process the original stored at ``key``.

        ``lease_until`` (ISO) bounds this run's claim; the caller passes a moment before its
        job becomes visible again, so a redelivery after a crash always finds the lease lapsed.
        By default the lease lasts ``lease_seconds``.

        Returns READY_OUTCOME, REJECTED_OUTCOME or SKIPPED (not an original, already done,
        claimed by another processor, or its record is gone). Raises TransientError (or any
        unexpected error) when the job should be retried; on the ``final_attempt`` the record
        is first marked rejected with ``processing_failed`` so the failure is visible.
        """
        parsed = keys.parse_original_key(key)
        if parsed is None:
            log.info("ignoring non-original key %s", key)
            return SKIPPED
        if parsed.image_id is None:
            adopted = self._adopt(parsed)
            if adopted is None:
                return SKIPPED
            parsed = adopted
        now = self.clock()
        # The claim is one conditional write: it fails for records held, finished or gone.
        claimed = self.catalog.claim(
            parsed.user_id, parsed.image_id, now=to_iso(now),  # type: ignore[arg-type]
            lease_until=lease_until or iso_in(self.config.lease_seconds, now),
        )
        if claimed is None:
            current = self.catalog.get(parsed.user_id, parsed.image_id)  # type: ignore[arg-type]
            if current is None or current.status == REJECTED:
                # The record went (deleted or swept) before its upload arrived, or a rejected
                # record's upload URL was replayed after its original was removed: a rejected
                # record keeps no original, so nothing may remain.
                self.blobs.delete(key)
            return SKIPPED
        # Log lines about this image carry the id of the request that created its upload.
        with correlation.bound(claimed.request_id or request_id or correlation.current_request_id()):
            started = time.perf_counter()
            outcome = self._process_or_reject(claimed, key, final_attempt)
            if outcome != SKIPPED:
                elapsed = (time.perf_counter() - started) * 1000
                self.metrics.timing("processing_time", elapsed)
                log.info("%s/%s %s in %.0f ms", claimed.user_id, claimed.image_id, outcome, elapsed,
                         extra={"image_id": claimed.image_id, "user_id": claimed.user_id, "outcome": outcome,
                                "milliseconds": round(elapsed, 1)})
            return outcome

    def _process_or_reject(self, claimed: ImageRecord, key: str, final_attempt: bool) -> str:
        try:
            return self._process_claimed(claimed)
        except ImageRejected as rejection:
            return self._reject(claimed, rejection)
        except BlobNotFound:
            # Announced (complete) before the bytes arrived; the upload's own event comes later.
            self._release(claimed)
            return SKIPPED
        except Exception as exc:  # the job runner's boundary: anything else is retried
            if final_attempt:
                log.exception("giving up on %s", key)
                self._reject(claimed, ImageRejected("processing_failed", f"Processing failed: {exc}"))
            else:
                self._release(claimed)
            raise

    def _process_claimed(self, record: ImageRecord) -> str:
        try:
            data = self.blobs.get(record.original_key, max_bytes=self.config.max_upload_bytes)
        except BlobTooLarge as exc:
            raise ImageRejected(
                "too_large", f"The file has more than the {self.config.max_upload_bytes} bytes allowed."
            ) from exc
        self._check_byte_quota(record, len(data))
        self._scan(record, data)
        try:
            result = self.imaging.process(data, self.config.derivative_specs(), self.config.limits)
        except TooExpensive as exc:  # over its memory or time budget: a retry would fail alike
            raise ImageRejected("too_expensive", exc.message) from exc
        derivatives = {}
        for name, encoded in result.derivatives.items():
            self.blobs.put(
                keys.derivative_key(record.user_id, record.image_id, name, record.ephemeral),
                encoded.data,
                DERIVATIVE_CONTENT_TYPE,
            )
            derivatives[name] = {
                "width": encoded.width, "height": encoded.height, "format": encoded.format, "bytes": len(encoded.data),
            }
        info = result.info
        now = to_iso(self.clock())
        # Tags and description may have been edited while we worked: build on the stored record.
        current = self.catalog.get(record.user_id, record.image_id)
        if current is None:
            self._remove_objects(record)  # deleted while we worked: leave nothing behind
            return SKIPPED
        ready = current.copy(
            status=READY,
            content_type=info.content_type,
            size=len(data),
            uploaded_at=record.uploaded_at or now,
            processed_at=now,
            width=info.width,
            height=info.height,
            format=info.format,
            mode=info.mode,
            frames=info.frames,
            animated=info.animated,
            sha256=hashlib.sha256(data).hexdigest(),
            exif=info.exif,
            gps=info.gps,
            derivatives=derivatives,
            blurhash=info.blurhash,
            error=None,
            lease_until=None,
        )
        self.announce(ready)
        if not self.catalog.put(ready, expect_status=[PROCESSING]):
            return self._lost_final_write(record)
        self.metrics.increment("images_processed")
        return READY_OUTCOME

    def _scan(self, record: ImageRecord, data: bytes) -> None:
        """Sniff, then ask the scanner; a denied file is copied to quarantine and rejected.

        Raises ImageRejected (``not_an_image``/``unsupported_format`` from sniffing, or the
        scanner's ``malware``/``moderation``); a TransientError from the scanner propagates, so
        the job is retried and the file is never published unscanned.
        """
        if self.scanner is None:
            return
        imaging.sniff(data)  # not an image at all: rejected as such, nothing worth a scan
        verdict = self.scanner.scan(data)
        if verdict.allowed:
            return
        # Kept for review under a key no download URL names; _reject then removes the original.
        self.blobs.put(keys.quarantine_key(record.original_key), data, "application/octet-stream")
        raise ImageRejected(verdict.code or "malware", verdict.reason or "A scanner denied the file.")

    def _check_byte_quota(self, record: ImageRecord, real_size: int) -> None:
        """The owner's bytes counted with the object's real size, not the declared one.

        The upload request checked the quota against ``size``; an object dropped straight into
        the bucket (adopted) or one whose size was not what was declared is only known here.
        Raises ImageRejected("quota_exceeded").
        """
        if self.config.quota_bytes is None:
            return
        others = self.catalog.usage(record.user_id).bytes - (record.size or 0)
        if others + real_size > self.config.quota_bytes:
            raise ImageRejected(
                "quota_exceeded",
                f"The file's {real_size} bytes would take its owner past the quota of "
                f"{self.config.quota_bytes} bytes.",
            )

    def _reject(self, record: ImageRecord, rejection: ImageRejected) -> str:
        log.info("rejected %s/%s: %s", record.user_id, record.image_id, rejection.code,
                 extra={"image_id": record.image_id, "code": rejection.code})
        current = self.catalog.get(record.user_id, record.image_id)
        if current is not None and current.status != PROCESSING:
            return SKIPPED  # another processor finished it after our lease lapsed: its result stands
        self.metrics.increment("images_rejected", code=rejection.code)
        self._remove_objects(record)
        rejected = record.copy(
            status=REJECTED,
            processed_at=to_iso(self.clock()),
            error=rejection.to_dict(),
            derivatives={},
            lease_until=None,
        )
        self.announce(rejected)
        if self.catalog.put(rejected, expect_status=[PROCESSING]):
            self.refund_charge(rejected)  # this write alone made it rejected: one refund
        return REJECTED_OUTCOME

    def _release(self, record: ImageRecord) -> None:
        try:
            self.catalog.put(record.copy(status=PENDING, lease_until=None), expect_status=[PROCESSING])
        except TransientError:
            log.warning("could not release %s; its lease will lapse", record.image_id)

    def _lost_final_write(self, record: ImageRecord) -> str:
        """Our conditional write found the record no longer ``processing``.

        Deleted while we worked: leave nothing behind. Finished by another processor that took
        over after our lease lapsed (a slow run outlived its job's visibility): its record and
        objects stand, and ours went to the same deterministic keys, so nothing is extra.
        """
        if self.catalog.get(record.user_id, record.image_id) is None:
            self._remove_objects(record)
        return SKIPPED

    def _remove_objects(self, record: ImageRecord) -> None:
        remove_image_objects(self.blobs, record)

    def _adopt(self, parsed: keys.OriginalKey) -> keys.OriginalKey | None:
        """Give an object dropped straight into the bucket an id and a record.

        The object moves to its canonical key, so a repeated notification for the dropped key
        finds nothing and does nothing.
        """
        try:
            data = self.blobs.get(parsed.key, max_bytes=self.config.max_upload_bytes)
            too_large = False
        except BlobNotFound:
            return None
        except BlobTooLarge:
            data, too_large = b"", True
        now = self.clock()
        image_id = new_id()
        canonical = keys.original_key(parsed.user_id, image_id, parsed.ephemeral)
        record = ImageRecord(
            image_id=image_id,
            user_id=parsed.user_id,
            status=PENDING,
            filename=sanitize_filename(parsed.name),
            size=len(data),
            created_at=to_iso(now),
            uploaded_at=to_iso(now),
            expires_at=iso_in(self.config.session_ttl, now) if parsed.ephemeral else None,
            original_key=canonical,
            ephemeral=parsed.ephemeral,
        )
        if too_large:
            record.status, record.error = REJECTED, {
                "code": "too_large", "message": "The file is larger than the upload limit."}
            self.catalog.create(record)
            self.blobs.delete(parsed.key)
            return None
        # The record first: the canonical key's own ObjectCreated event may reach another
        # processor at once, and an object without a record is removed as an orphan.
        self.catalog.create(record)
        self.blobs.put(canonical, data, "application/octet-stream")
        self.blobs.delete(parsed.key)
        return keys.OriginalKey(canonical, parsed.user_id, parsed.ephemeral, image_id, image_id)
