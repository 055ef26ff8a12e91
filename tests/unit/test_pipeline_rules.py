"""The pipeline's rules on in-memory fakes of the ports: claims, idempotency, rejection, retries,
adoption. The same behaviour over SQLite and the real worker is in tests/integration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import imagefactory
from fakes import FakeBlobStore, FakeCatalog
from imageservice.adapters.imaging_pool import InlineImagingRunner
from imageservice.core import keys
from imageservice.core.errors import TransientError
from imageservice.core.ids import new_id
from imageservice.pipeline import READY_OUTCOME, REJECTED_OUTCOME, SKIPPED, Pipeline, PipelineConfig
from imageservice.core.records import PENDING, PROCESSING, READY, REJECTED, ImageRecord
from imageservice.core.timeutil import to_iso
from imageservice.settings import Settings

INLINE = InlineImagingRunner()  # imaging in this process: no budget needed for these rules

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, moment: datetime = NOW):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


class CountingBlobStore(FakeBlobStore):
    """Counts writes, and can fail them, to prove what the pipeline stores and when."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []
        self.fail_puts = False

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.fail_puts:
            raise TransientError("storage is down")
        self.puts.append(key)
        super().put(key, data, content_type)


@pytest.fixture
def blobs():
    return CountingBlobStore()


@pytest.fixture
def catalog():
    return FakeCatalog()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def pipeline(blobs, catalog, clock):
    return Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE)


def pending(catalog, blobs, data: bytes | None, user_id: str = "alice", **fields) -> ImageRecord:
    image_id = new_id()
    record = ImageRecord(image_id=image_id, user_id=user_id, status=PENDING, filename="photo.jpg",
                         size=len(data) if data else 100, created_at=to_iso(NOW),
                         original_key=keys.original_key(user_id, image_id, False), **fields)
    catalog.create(record)
    if data is not None:
        blobs.put(record.original_key, data, "image/jpeg")
    return record


def derivative_keys(record: ImageRecord) -> set[str]:
    return {keys.derivative_key(record.user_id, record.image_id, name, False) for name in ("thumb", "preview")}


def test_an_upload_becomes_ready_with_both_derivatives(pipeline, blobs, catalog):
    record = pending(catalog, blobs, imagefactory.jpeg_bytes(800, 600))
    assert pipeline.process_key(record.original_key) == READY_OUTCOME
    stored = catalog.get("alice", record.image_id)
    assert stored.status == READY and (stored.width, stored.height) == (800, 600)
    assert stored.format == "JPEG" and stored.content_type == "image/jpeg"
    assert stored.lease_until is None and stored.error is None
    assert set(stored.derivatives) == {"thumb", "preview"}
    assert derivative_keys(record) <= set(blobs.objects)
    assert max(stored.derivatives["thumb"]["width"], stored.derivatives["thumb"]["height"]) == 256


def test_a_repeated_message_does_nothing_the_second_time(pipeline, blobs, catalog):
    record = pending(catalog, blobs, imagefactory.png_bytes(300, 200))
    assert pipeline.process_key(record.original_key) == READY_OUTCOME
    writes = list(blobs.puts)
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert blobs.puts == writes  # never a second set of derivatives


def test_a_record_claimed_by_a_live_processor_is_left_alone(pipeline, blobs, catalog, clock):
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    catalog.put(record.copy(status=PROCESSING, lease_until=to_iso(clock() + timedelta(minutes=1))))
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert catalog.get("alice", record.image_id).status == PROCESSING
    assert blobs.puts == [record.original_key]


def test_a_lapsed_lease_is_taken_over(pipeline, blobs, catalog, clock):
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    catalog.put(record.copy(status=PROCESSING, lease_until=to_iso(clock() - timedelta(seconds=1)), attempts=1))
    assert pipeline.process_key(record.original_key) == READY_OUTCOME
    assert catalog.get("alice", record.image_id).attempts == 2


def test_a_non_image_is_rejected_and_its_original_removed(pipeline, blobs, catalog):
    record = pending(catalog, blobs, b"<html><script>alert(1)</script></html>")
    assert pipeline.process_key(record.original_key) == REJECTED_OUTCOME
    stored = catalog.get("alice", record.image_id)
    assert stored.status == REJECTED and stored.error["code"] == "not_an_image"
    assert stored.derivatives == {}
    assert blobs.objects == {}


def test_a_file_over_the_byte_limit_is_rejected_too_large(blobs, catalog, clock):
    small = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings(max_upload_bytes=1000)), clock=clock,
                     imaging=INLINE)
    record = pending(catalog, blobs, imagefactory.jpeg_bytes(400, 300))
    assert small.process_key(record.original_key) == REJECTED_OUTCOME
    assert catalog.get("alice", record.image_id).error["code"] == "too_large"


def test_a_transient_failure_releases_the_claim_for_a_retry(pipeline, blobs, catalog):
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    blobs.fail_puts = True
    with pytest.raises(TransientError):
        pipeline.process_key(record.original_key)
    assert catalog.get("alice", record.image_id).status == PENDING
    blobs.fail_puts = False
    assert pipeline.process_key(record.original_key) == READY_OUTCOME


def test_the_final_attempt_marks_the_record_processing_failed(pipeline, blobs, catalog):
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    blobs.fail_puts = True
    with pytest.raises(TransientError):
        pipeline.process_key(record.original_key, final_attempt=True)
    stored = catalog.get("alice", record.image_id)
    assert stored.status == REJECTED and stored.error["code"] == "processing_failed"


def test_complete_before_the_bytes_arrived_waits_for_the_upload(pipeline, blobs, catalog):
    record = pending(catalog, blobs, None)
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert catalog.get("alice", record.image_id).status == PENDING


def test_an_upload_whose_record_is_gone_is_removed(pipeline, blobs, catalog):
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    catalog.delete("alice", record.image_id)
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert blobs.objects == {}


class MeddlingCatalog(FakeCatalog):
    """Lets the owner act between the pipeline's claim and its final write."""

    def __init__(self, meddle):
        super().__init__()
        self.meddle = meddle

    def claim(self, *args, **kwargs):
        claimed = super().claim(*args, **kwargs)
        if claimed is not None:
            self.meddle(self, claimed)
        return claimed


def test_a_record_deleted_while_processing_leaves_nothing_behind(blobs, clock):
    catalog = MeddlingCatalog(lambda catalog, claimed: catalog.delete(claimed.user_id, claimed.image_id))
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE)
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert blobs.objects == {}


def test_a_slow_run_overtaken_by_a_takeover_leaves_the_finished_image_intact(blobs, clock):
    """Our lease lapsed mid-run and another processor finished the image: our final write fails,
    and the ready image's original and derivatives must survive it."""
    def finish_elsewhere(catalog, claimed):
        catalog.put(claimed.copy(status=READY, lease_until=None))

    catalog = MeddlingCatalog(finish_elsewhere)
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE)
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert catalog.get("alice", record.image_id).status == READY
    assert {record.original_key} | derivative_keys(record) <= set(blobs.objects)


def test_a_rejection_after_a_takeover_finished_the_image_removes_nothing(blobs, clock):
    catalog = MeddlingCatalog(lambda catalog, claimed: catalog.put(claimed.copy(status=READY, lease_until=None)))
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE)
    record = pending(catalog, blobs, b"not an image at all")
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert catalog.get("alice", record.image_id).status == READY
    assert record.original_key in blobs.objects


def test_tags_edited_while_processing_survive(blobs, clock):
    catalog = MeddlingCatalog(lambda catalog, claimed: catalog.put(claimed.copy(tags=["edited"])))
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE)
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    assert pipeline.process_key(record.original_key) == READY_OUTCOME
    assert catalog.get("alice", record.image_id).tags == ["edited"]


def test_keys_that_are_not_originals_are_ignored(pipeline, blobs):
    assert pipeline.process_key("derivatives/alice/01ARZ3NDEKTSV4RRFFQ69G5FAV/thumb.webp") == SKIPPED
    assert pipeline.process_key("../etc/passwd") == SKIPPED
    assert blobs.puts == []


def test_an_object_dropped_into_the_bucket_is_adopted_under_a_new_id(pipeline, blobs, catalog):
    blobs.put("originals/alice/holiday.jpg", imagefactory.jpeg_bytes(320, 240), "image/jpeg")
    assert pipeline.process_key("originals/alice/holiday.jpg") == READY_OUTCOME
    [adopted] = [r for (owner, _), (r, _) in catalog.store.records.items() if owner == "alice"]
    assert adopted.status == READY and adopted.filename == "holiday.jpg"
    assert adopted.original_key == keys.original_key("alice", adopted.image_id, False)
    assert "originals/alice/holiday.jpg" not in blobs.objects
    assert pipeline.process_key("originals/alice/holiday.jpg") == SKIPPED  # a repeated event


# -- the byte quota against the real size ----------------------------------------


def quota_pipeline(blobs, catalog, clock, quota_bytes: int) -> Pipeline:
    return Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings(quota_bytes=quota_bytes)), clock=clock,
                    imaging=INLINE)


def declared_small(catalog, blobs, data: bytes) -> ImageRecord:
    """A pending record that declared 10 bytes whose object is really ``data``."""
    record = pending(catalog, blobs, data).copy(size=10)
    catalog.put(record)
    return record


def test_an_object_larger_than_declared_is_rejected_past_the_byte_quota(blobs, catalog, clock):
    data = imagefactory.png_bytes(300, 200)
    catalog.put(pending(catalog, blobs, None).copy(status=READY))  # the owner already holds 100 bytes
    record = declared_small(catalog, blobs, data)
    pipeline = quota_pipeline(blobs, catalog, clock, quota_bytes=100 + len(data) - 1)
    assert pipeline.process_key(record.original_key) == REJECTED_OUTCOME
    stored = catalog.get("alice", record.image_id)
    assert stored.error["code"] == "quota_exceeded" and str(len(data)) in stored.error["message"]
    assert record.original_key not in blobs.objects and not derivative_keys(record) & set(blobs.objects)


def test_the_real_size_exactly_at_the_quota_is_accepted(blobs, catalog, clock):
    data = imagefactory.png_bytes(300, 200)
    catalog.put(pending(catalog, blobs, None).copy(status=READY))
    record = declared_small(catalog, blobs, data)
    assert quota_pipeline(blobs, catalog, clock, 100 + len(data)).process_key(record.original_key) == READY_OUTCOME


def test_an_adopted_object_counts_against_the_byte_quota(blobs, catalog, clock):
    data = imagefactory.jpeg_bytes(320, 240)
    blobs.put("originals/alice/holiday.jpg", data, "image/jpeg")
    assert quota_pipeline(blobs, catalog, clock, len(data) - 1).process_key("originals/alice/holiday.jpg") \
        == REJECTED_OUTCOME
    [(adopted, _)] = catalog.store.records.values()
    assert adopted.error["code"] == "quota_exceeded" and blobs.objects == {}


def test_a_replayed_upload_for_a_rejected_record_is_removed(pipeline, blobs, catalog):
    record = pending(catalog, blobs, b"not an image")
    assert pipeline.process_key(record.original_key) == REJECTED_OUTCOME
    blobs.put(record.original_key, imagefactory.png_bytes(8, 8), "image/png")  # the URL used again
    assert pipeline.process_key(record.original_key) == SKIPPED
    assert blobs.objects == {} and catalog.get("alice", record.image_id).error["code"] == "not_an_image"


# -- scanning: after sniffing, before any derivative --------------------------------


class DenyingScanner:
    def __init__(self, verdict=None, error: Exception | None = None):
        from imageservice.ports import ScanVerdict

        self.verdict = verdict or ScanVerdict(False, "malware", "The file matches the malware signature Test.Sig.")
        self.error = error
        self.scanned: list[bytes] = []

    def scan(self, data: bytes):
        self.scanned.append(data)
        if self.error:
            raise self.error
        return self.verdict


def test_a_denied_file_is_quarantined_before_any_derivative_is_written(blobs, catalog, clock):
    scanner = DenyingScanner()
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE,
                        scanner=scanner)
    data = imagefactory.png_bytes(64, 48)
    record = pending(catalog, blobs, data)
    assert pipeline.process_key(record.original_key) == REJECTED_OUTCOME
    assert scanner.scanned == [data]
    assert blobs.puts == [record.original_key, keys.quarantine_key(record.original_key)]  # no derivative
    assert set(blobs.objects) == {keys.quarantine_key(record.original_key)}
    stored = catalog.get("alice", record.image_id)
    assert stored.error["code"] == "malware" and "Test.Sig" in stored.error["message"]


def test_a_non_image_is_rejected_by_sniffing_without_a_scan(blobs, catalog, clock):
    scanner = DenyingScanner()
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE,
                        scanner=scanner)
    record = pending(catalog, blobs, b"<html></html>")
    assert pipeline.process_key(record.original_key) == REJECTED_OUTCOME
    assert scanner.scanned == [] and catalog.get("alice", record.image_id).error["code"] == "not_an_image"


def test_a_scanner_that_is_down_releases_the_claim_for_a_retry(blobs, catalog, clock):
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(Settings()), clock=clock, imaging=INLINE,
                        scanner=DenyingScanner(error=TransientError("clamd is down")))
    record = pending(catalog, blobs, imagefactory.png_bytes(64, 48))
    with pytest.raises(TransientError):
        pipeline.process_key(record.original_key)
    assert catalog.get("alice", record.image_id).status == PENDING
    assert blobs.puts == [record.original_key]  # nothing published unscanned
