"""ImageService's business rules on in-memory fakes of the ports: ownership, upload admission,
readiness, conversions' cache, deletion and housekeeping. The HTTP view of the same rules is in
tests/integration; these run in milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import imagefactory
from fakes import FakeBlobStore, FakeCatalog, FakeJobQueue
from imageservice.adapters.imaging_pool import InlineImagingRunner
from imageservice.auth import Principal
from imageservice.commands import ListCommand, UpdateCommand, UploadCommand
from imageservice.core import keys
from imageservice.core.conversions import ConversionRequest
from imageservice.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from imageservice.core.records import READY
from imageservice.core.timeutil import to_iso
from imageservice.service import ImageService
from imageservice.settings import Settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", admin=True)


class Clock:
    def __init__(self) -> None:
        self.moment = NOW

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fakes():
    return FakeBlobStore(), FakeCatalog(), FakeJobQueue()


def service_with(fakes, clock, **settings) -> ImageService:
    blobs, catalog, queue = fakes
    return ImageService(blobs, catalog, queue, Settings(**settings), clock=clock, imaging=InlineImagingRunner())


@pytest.fixture
def service(fakes, clock):
    return service_with(fakes, clock)


def upload(service, principal=ALICE, size=1000, **fields):
    return service.create_upload(principal, UploadCommand(size=size, **fields))


def ready_image(service, principal=ALICE, data: bytes | None = None) -> str:
    """An image that went through upload and processing (the record written as the pipeline does)."""
    data = data or imagefactory.png_bytes(64, 48)
    ticket = upload(service, principal, size=len(data), content_type="image/png", filename="pic.png")
    record = service.catalog.get(principal.user_id, ticket.image_id)
    service.blobs.put(record.original_key, data, "image/png")
    service.catalog.put(record.copy(status=READY, content_type="image/png", width=64, height=48, format="PNG"))
    return ticket.image_id


# -- ownership ---------------------------------------------------------------------------------

def test_another_owners_image_is_indistinguishable_from_a_missing_one(service):
    image_id = ready_image(service)
    for call in (lambda: service.get(BOB, image_id), lambda: service.download(BOB, image_id),
                 lambda: service.delete(BOB, image_id), lambda: service.complete(BOB, image_id)):
        with pytest.raises(NotFound):
            call()
    assert service.get(ALICE, image_id).image_id == image_id


def test_only_an_admin_acts_for_another_user(service):
    with pytest.raises(Forbidden):
        upload(service, BOB, user_id="alice")
    ticket = upload(service, ADMIN, user_id="alice")
    assert service.get(ALICE, ticket.image_id).user_id == "alice"
    with pytest.raises(BadRequest):
        upload(service, ADMIN, user_id="../etc")


# -- uploads -----------------------------------------------------------------------------------

def test_an_upload_ticket_makes_a_pending_record_signed_for_its_size(service):
    ticket = upload(service, size=1234, content_type="image/jpeg; charset=x", filename="../../a\u202egnp.jpg",
                    tags=" Holiday ,sea,holiday")
    record = service.get(ALICE, ticket.image_id)
    assert ticket.status == "pending" and ticket.upload_method == "PUT"
    assert record.size == 1234 and record.content_type == "image/jpeg"
    assert record.tags == ["holiday", "sea"]
    assert "/" not in record.filename and "\u202e" not in record.filename
    assert record.original_key == keys.original_key("alice", ticket.image_id, False)
    assert ticket.upload_headers["Content-Type"] == "image/jpeg"


def test_a_declared_type_that_is_no_image_is_refused(service):
    with pytest.raises(UnsupportedMediaType):
        upload(service, content_type="text/html")


def test_a_declared_size_over_the_limit_is_refused(fakes, clock):
    service = service_with(fakes, clock, max_upload_bytes=5000)
    with pytest.raises(PayloadTooLarge):
        upload(service, size=5001)
    assert upload(service, size=5000).status == "pending"


def test_the_image_quota_is_enforced(fakes, clock):
    service = service_with(fakes, clock, quota_images=2)
    upload(service)
    upload(service)
    with pytest.raises(Conflict) as refused:
        upload(service)
    assert refused.value.code == "quota_exceeded"
    upload(service, BOB)  # another owner's quota is their own


def test_the_byte_quota_counts_the_declared_size(fakes, clock):
    service = service_with(fakes, clock, quota_bytes=3000)
    upload(service, size=2000)
    with pytest.raises(Conflict) as refused:
        upload(service, size=1001)
    assert refused.value.code == "quota_exceeded"
    upload(service, size=1000)


def test_uploads_per_minute_are_limited_with_a_retry_after(fakes, clock):
    service = service_with(fakes, clock, uploads_per_minute=3)
    for _ in range(3):
        upload(service)
    with pytest.raises(TooManyRequests) as refused:
        upload(service)
    assert refused.value.retry_after >= 1


def test_complete_needs_the_bytes_then_queues_processing_once(service):
    ticket = upload(service)
    with pytest.raises(Conflict) as early:
        service.complete(ALICE, ticket.image_id)
    assert early.value.code == "upload_missing"
    record = service.catalog.get("alice", ticket.image_id)
    service.blobs.put(record.original_key, b"x" * 1000, "image/png")
    assert service.complete(ALICE, ticket.image_id).status == "pending"
    [received] = service.queue.receive(max_jobs=10)
    assert received.job.key == record.original_key


# -- reading and editing -----------------------------------------------------------------------

def test_a_page_larger_than_the_maximum_is_refused(service):
    with pytest.raises(BadRequest):
        service.list(ALICE, ListCommand(limit=101))


def test_list_filters_by_a_normalised_tag(service):
    upload(service, tags=["Sea"])
    upload(service, tags=["mountain"])
    page = service.list(ALICE, ListCommand(tag=" SEA "))
    assert [r.tags for r in page.images] == [["sea"]]


def test_update_normalises_tags_and_keeps_the_rest(service):
    ticket = upload(service, description="first")
    updated = service.update(ALICE, ticket.image_id, UpdateCommand(tags=["A", "a", " b "]))
    assert updated.tags == ["a", "b"] and updated.description == "first"


def test_too_many_tags_are_refused(fakes, clock):
    service = service_with(fakes, clock, max_tags=2)
    with pytest.raises(BadRequest):
        upload(service, tags=["a", "b", "c"])


# -- downloads and conversions -----------------------------------------------------------------

def test_nothing_is_downloadable_before_it_is_ready(service):
    ticket = upload(service)
    with pytest.raises(Conflict) as refused:
        service.download(ALICE, ticket.image_id)
    assert refused.value.code == "not_ready"


def test_originals_download_as_attachments_of_the_detected_type(service):
    image_id = ready_image(service)
    link = service.download(ALICE, image_id, "original")
    assert "attachment" in link.download_url and "type=image/png" in link.download_url
    preview = service.download(ALICE, image_id, "preview")
    assert "inline" in preview.download_url and "type=image/webp" in preview.download_url


def test_equal_conversions_are_made_once(service):
    image_id = ready_image(service)
    first = service.convert(ALICE, image_id, ConversionRequest("bmp", width=32, quality=1))
    objects = dict(service.blobs.objects)
    again = service.convert(ALICE, image_id, ConversionRequest("bmp", width=32, quality=90))
    assert service.blobs.objects == objects  # quality means nothing to BMP: the same file serves
    assert (first.width, first.height, first.bytes) == (again.width, again.height, again.bytes) == (32, 24, first.bytes)


class DeletedMidConversion:
    """The delete of a conversion's image lands at one step of the conversion: before its bytes
    are counted, or right after."""

    def __init__(self, service: ImageService, image_id: str, when: str):
        self.service, self.image_id, self.when = service, image_id, when
        real = service.catalog.add_bytes

        def add_bytes(*args, **kwargs):
            if self.when == "before_count":
                service.delete(ALICE, image_id)
            counted = real(*args, **kwargs)
            if self.when == "after_count":
                service.delete(ALICE, image_id)
            return counted

        service.catalog.add_bytes = add_bytes


@pytest.mark.parametrize("when", ["before_count", "after_count"])
def test_a_conversion_racing_the_delete_of_its_image_answers_404_and_leaves_no_file(service, when):
    image_id = ready_image(service)
    DeletedMidConversion(service, image_id, when)
    with pytest.raises(NotFound) as gone:  # never 409 quota_exceeded: nothing is near the quota
        service.convert(ALICE, image_id, ConversionRequest("png", width=16))
    assert gone.value.code == "image_not_found"
    assert not [key for key in service.blobs.objects if image_id in key]
    assert service.catalog.usage("alice").bytes == 0


def test_a_conversion_whose_original_vanished_answers_404(service):
    image_id = ready_image(service)
    service.blobs.delete(keys.original_key("alice", image_id, False))
    with pytest.raises(NotFound):
        service.convert(ALICE, image_id, ConversionRequest("png", width=16))


# -- deletion and housekeeping -----------------------------------------------------------------

def test_delete_removes_the_original_derivatives_conversions_and_record(service):
    image_id = ready_image(service)
    service.blobs.put(keys.derivative_key("alice", image_id, "thumb", False), b"t", "image/webp")
    service.convert(ALICE, image_id, ConversionRequest("png", width=16))
    other = ready_image(service, BOB)
    service.delete(ALICE, image_id)
    assert all(other in key for key in service.blobs.objects)
    with pytest.raises(NotFound):
        service.get(ALICE, image_id)


def test_sweep_removes_expired_workspaces_and_abandoned_uploads(fakes, clock):
    service = service_with(fakes, clock, upload_url_ttl=600, pending_grace=300)
    session = Principal("anon-01HZZZZZZZZZZZZZZZZZZZZZZZ", expires_at=to_iso(NOW + timedelta(hours=1)))
    expiring = upload(service, session)
    abandoned = upload(service)
    kept = ready_image(service, BOB)
    clock.moment = NOW + timedelta(hours=2)
    assert service.sweep() == {"expired": 1, "abandoned": 1, "quarantined": 0, "batches": 0}
    assert service.catalog.get(session.user_id, expiring.image_id) is None
    assert service.catalog.get("alice", abandoned.image_id) is None
    assert service.get(BOB, kept).status == READY


# -- tokens ------------------------------------------------------------------------------------

def test_tokens_authenticate_their_user_and_are_stored_hashed(service):
    token = service.create_token("carol", admin=True)
    assert service.authenticate_token(token) == Principal("carol", admin=True)
    assert token not in service.catalog.store.tokens
    assert service.authenticate_token(token + "x") is None


def test_no_token_is_made_for_a_session_or_malformed_user(service):
    for user_id in ("anon-someone", "", "a/b"):
        with pytest.raises(BadRequest):
            service.create_token(user_id)


def test_sweep_expires_quarantined_files_after_the_quarantine_days(fakes, clock):
    blobs = FakeBlobStore(clock=lambda: clock().timestamp())
    service = service_with((blobs, fakes[1], fakes[2]), clock, quarantine_days=30)
    blobs.put(keys.quarantine_key("originals/alice/old"), b"eicar", "application/octet-stream")
    clock.moment = NOW + timedelta(days=20)
    blobs.put(keys.quarantine_key("originals/alice/new"), b"eicar", "application/octet-stream")
    clock.moment = NOW + timedelta(days=30, seconds=1)
    assert service.sweep()["quarantined"] == 1
    assert list(blobs.objects) == [keys.quarantine_key("originals/alice/new")]


class CountingCatalog(FakeCatalog):
    def __init__(self) -> None:
        super().__init__()
        self.token_reads = 0

    def find_token(self, token_hash):
        self.token_reads += 1
        return super().find_token(token_hash)


def test_a_known_token_is_read_from_the_catalog_once_a_minute_and_an_unknown_one_every_time(clock):
    catalog = CountingCatalog()
    service = service_with((FakeBlobStore(), catalog, FakeJobQueue()), clock)
    token = service.create_token("alice", admin=True)
    for _ in range(5):
        assert service.authenticate_token(token) == Principal("alice", admin=True)
    assert catalog.token_reads == 1
    clock.moment += timedelta(seconds=61)
    assert service.authenticate_token(token) == Principal("alice", admin=True)
    assert catalog.token_reads == 2
    for _ in range(3):  # made-up tokens are never remembered: they cannot push real ones out
        assert service.authenticate_token("isv_made-up") is None
    assert catalog.token_reads == 5


def test_the_token_cache_keeps_at_most_its_size(clock, monkeypatch):
    import imageservice.service.tokens as service_module

    monkeypatch.setattr(service_module, "TOKEN_CACHE_SIZE", 3)
    catalog = CountingCatalog()
    service = service_with((FakeBlobStore(), catalog, FakeJobQueue()), clock)
    tokens = [service.create_token(f"user{i}") for i in range(5)]
    for token in tokens:
        service.authenticate_token(token)
    assert len(service._known_tokens) == 3
    reads = catalog.token_reads
    service.authenticate_token(tokens[-1])  # the newest are kept
    service.authenticate_token(tokens[0])  # the oldest went
    assert catalog.token_reads == reads + 1
