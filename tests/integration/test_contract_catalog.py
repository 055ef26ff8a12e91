"""The catalog contract: the catalog's use cases over each store (SQLite, DynamoDB on moto server,
and the dict-backed fake), so the rules of core hold the same on every backend."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from imageservice.core.errors import BadRequest, Conflict, NotFound, TooManyRequests
from imageservice.core.batches import Batch, BatchItem
from imageservice.core.ids import new_id
from imageservice.core.links import ShareLink, new_link_id
from imageservice.core.records import IdempotencyEntry, ImageRecord, ListQuery, OwnerLimits, Token, Usage
from imageservice.core.timeutil import to_iso
from imageservice.unit_of_work import (
    CounterRepository, IdempotencyRepository, ImageRepository, Store, TokenRepository, UnitOfWork, VersionConflict,
)

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def record(user_id="alice", minutes=0, **fields) -> ImageRecord:
    """A record made ``minutes`` after BASE; its id is made in that same instant, as the service does."""
    moment = BASE + timedelta(minutes=minutes)
    image_id = new_id(now_ms=int(moment.timestamp() * 1000))
    values = {
        "status": "pending", "filename": "photo.jpg", "content_type": "image/jpeg", "size": 1000,
        "created_at": to_iso(moment), "original_key": f"originals/{user_id}/{image_id}",
        "upload_expires_at": to_iso(moment + timedelta(minutes=10)),
    }
    values.update(fields)
    return ImageRecord(image_id=image_id, user_id=user_id, **values)


def iso(minutes: float) -> str:
    return to_iso(BASE + timedelta(minutes=minutes))


def test_the_store_implements_the_ports(backend):
    store = backend.catalog.store
    assert isinstance(store, Store)
    uow = store.unit_of_work()
    assert isinstance(uow, UnitOfWork)
    for repository, port in ((uow.images, ImageRepository), (uow.counters, CounterRepository),
                             (uow.idempotency, IdempotencyRepository), (uow.tokens, TokenRepository)):
        assert isinstance(repository, port), repository
    backend.catalog.ping()


def test_create_then_get_returns_an_equal_record(backend):
    rich = record(
        tags=["holiday", "sea"], description="Ünïcode ✓", exif={"Make": "Canon", "FNumber": 2.8, "ISOSpeedRatings": 200,
                                                                "UserComment": "", "Nested": [1, 2.5, None]},
        gps={"latitude": 48.8584, "longitude": -2.2945, "altitude": 35.5},
        derivatives={"thumb": {"width": 256, "height": 192, "format": "WEBP", "bytes": 5120}},
        animated=False, frames=1, error=None,
    )
    backend.catalog.create(rich)
    assert backend.catalog.get("alice", rich.image_id) == rich


def test_list_api_is_the_list_as_the_api_shows_it(backend):
    """list_api's JSON text is each listed record's to_api(), GPS included, with the same
    cursor: after creates, a put that changes tags and status, and a claim."""
    import json

    catalog = backend.catalog
    made = [record(minutes=i, tags=["sea"] if i % 2 else [], exif={"FNumber": 2.8, "Note": "Ünï ✓"},
                   gps={"latitude": 48.85, "longitude": 2.29}) for i in range(7)]
    for item in made:
        catalog.create(item)
    catalog.put(made[3].copy(tags=["sea", "late"], status="ready", width=640))
    catalog.claim("alice", made[5].image_id, now=iso(100), lease_until=iso(110))
    for query in (ListQuery("alice", limit=3), ListQuery("alice", tag="sea", limit=2), ListQuery("alice", limit=50),
                  ListQuery("alice", status="ready")):
        page, api = catalog.list(query), catalog.list_api(query)
        assert [json.loads(text) for text in api.images] == [r.to_api() for r in page.images], query
        assert api.next_cursor == page.next_cursor
    assert [json.loads(t)["width"] for t in catalog.list_api(ListQuery("alice", status="ready")).images] == [640]


def test_create_refuses_an_existing_id(backend):
    first = record()
    backend.catalog.create(first)
    with pytest.raises(Conflict):
        backend.catalog.create(first.copy(filename="other.jpg"))
    assert backend.catalog.get("alice", first.image_id).filename == "photo.jpg"


def test_an_owner_never_gets_another_owners_record(backend):
    mine = record("alice")
    backend.catalog.create(mine)
    assert backend.catalog.get("bob", mine.image_id) is None
    assert backend.catalog.get("alice", new_id()) is None


def test_put_replaces_and_respects_the_expected_status(backend):
    catalog = backend.catalog
    original = record(tags=["a"])
    catalog.create(original)
    assert catalog.put(original.copy(tags=["b"], description="changed")) is True
    assert catalog.get("alice", original.image_id).tags == ["b"]

    ready = original.copy(status="ready", width=10, height=20)
    assert catalog.put(ready, expect_status=["processing", "ready"]) is False
    assert catalog.get("alice", original.image_id).status == "pending"
    assert catalog.put(ready, expect_status=["pending"]) is True
    assert catalog.get("alice", original.image_id) == ready

    gone = record()
    assert catalog.put(gone) is False
    assert catalog.put(gone, expect_status=["pending"]) is False
    assert catalog.get("alice", gone.image_id) is None


def test_claim_is_exclusive_until_the_lease_lapses(backend):
    catalog = backend.catalog
    pending = record()
    catalog.create(pending)

    claimed = catalog.claim("alice", pending.image_id, now=iso(1), lease_until=iso(3))
    assert claimed is not None
    assert (claimed.status, claimed.lease_until, claimed.attempts) == ("processing", iso(3), 1)
    assert catalog.get("alice", pending.image_id) == claimed

    assert catalog.claim("alice", pending.image_id, now=iso(2), lease_until=iso(4)) is None  # held
    retaken = catalog.claim("alice", pending.image_id, now=iso(3.5), lease_until=iso(6))  # lease lapsed
    assert retaken is not None and (retaken.attempts, retaken.lease_until) == (2, iso(6))

    assert catalog.put(retaken.copy(status="ready", lease_until=None), expect_status=["processing"])
    assert catalog.claim("alice", pending.image_id, now=iso(60), lease_until=iso(62)) is None  # terminal
    assert catalog.get("alice", pending.image_id).attempts == 2
    assert catalog.claim("alice", new_id(), now=iso(1), lease_until=iso(2)) is None  # gone
    assert catalog.claim("bob", pending.image_id, now=iso(60), lease_until=iso(62)) is None  # not his


def test_claim_after_release_to_pending_counts_on(backend):
    catalog = backend.catalog
    pending = record()
    catalog.create(pending)
    claimed = catalog.claim("alice", pending.image_id, now=iso(1), lease_until=iso(2))
    assert catalog.put(claimed.copy(status="pending", lease_until=None), expect_status=["processing"])
    again = catalog.claim("alice", pending.image_id, now=iso(1), lease_until=iso(2))
    assert again is not None and again.attempts == 2


def _all_pages(catalog, **query) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = catalog.list(ListQuery(cursor=cursor, **query))
        pages.append([r.image_id for r in page.images])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


@pytest.fixture
def gallery(backend):
    """Twelve of alice's records a minute apart (tags and statuses mixed) and two of bob's."""
    records = []
    for minute in range(12):
        tags = ["even"] if minute % 2 == 0 else ["odd"]
        if minute % 3 == 0:
            tags.append("three")
        status = "ready" if minute % 4 else "rejected"
        records.append(record("alice", minute, tags=tags, status=status, size=100 + minute))
    for item in records + [record("bob", 1), record("bob", 2)]:
        backend.catalog.create(item)
    return records


def test_list_is_newest_first_and_pages_without_gaps_or_duplicates(backend, gallery):
    expected = [r.image_id for r in reversed(gallery)]
    pages = _all_pages(backend.catalog, user_id="alice", limit=5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for page in pages for i in page] == expected
    exact = _all_pages(backend.catalog, user_id="alice", limit=6)
    assert [len(p) for p in exact] == [6, 6]  # no empty trailing page when the last one is full
    whole = backend.catalog.list(ListQuery(user_id="alice", limit=100))
    assert [r.image_id for r in whole.images] == expected and whole.next_cursor is None


def test_list_filters_by_tag_status_and_time(backend, gallery):
    catalog = backend.catalog

    def ids(**query):
        return [i for page in _all_pages(catalog, user_id="alice", **query) for i in page]

    newest_first = list(reversed(gallery))
    assert ids(tag="three", limit=2) == [r.image_id for r in newest_first if "three" in r.tags]
    assert ids(status="rejected", limit=1) == [r.image_id for r in newest_first if r.status == "rejected"]
    assert ids(since=iso(3), until=iso(7), limit=2) == [r.image_id for r in newest_first[4:9]]
    assert ids(since=iso(2.5), limit=4) == [r.image_id for r in newest_first[:9]]
    assert ids(until=iso(0), limit=4) == [gallery[0].image_id]
    assert ids(tag="even", status="ready", since=iso(1), limit=1) == [
        r.image_id for r in newest_first if "even" in r.tags and r.status == "ready" and r.created_at >= iso(1)
    ]
    assert ids(tag="missing") == []
    assert ids(since=iso(100)) == []


def test_a_cursor_never_shows_another_owners_records(backend, gallery):
    page = backend.catalog.list(ListQuery(user_id="alice", limit=3))
    assert page.next_cursor
    with pytest.raises(BadRequest) as caught:  # one validator for both catalogs: the owner is in the cursor
        backend.catalog.list(ListQuery(user_id="bob", limit=3, cursor=page.next_cursor))
    assert caught.value.code == "invalid_cursor"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not-a-cursor!", _b64(b"[1]"), _b64(b'{"a":1}'), _b64(b"\xff\xfe garbage"), _b64(b"null"), _b64(b'"x"'),
    _b64(b'{"user_id":"alice","image_id":"../../etc"}'), _b64(b'{"user_id":"alice","image_id":5}'),
    _b64(b'{"user_id":["alice"],"image_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ"}'),
    _b64(b"[" * 100_000), "A" * 10_000, "\u00e9t\u00e9", "%%%",
])
def test_a_crafted_cursor_is_a_bad_request_on_both(backend, cursor):
    backend.catalog.create(record())
    with pytest.raises(BadRequest) as caught:
        backend.catalog.list(ListQuery(user_id="alice", cursor=cursor))
    assert caught.value.code == "invalid_cursor"


def test_delete_is_idempotent(backend):
    item = record()
    backend.catalog.create(item)
    assert backend.catalog.delete("alice", item.image_id) is True
    assert backend.catalog.delete("alice", item.image_id) is False  # only one delete removed it
    assert backend.catalog.get("alice", item.image_id) is None


def test_usage_counts_the_owners_images_and_bytes(backend, gallery):
    backend.catalog.save_token("f" * 64, Token(user_id="alice"))
    assert backend.catalog.usage("alice").images == 12
    assert backend.catalog.usage("alice").bytes == sum(100 + m for m in range(12))
    assert backend.catalog.usage("bob").images == 2
    assert backend.catalog.usage("carol").images == 0


def test_expired_and_abandoned_find_what_the_sweeper_removes(backend):
    catalog = backend.catalog
    session_old = record("anon-1", 0, expires_at=iso(60), ephemeral=True)
    session_new = record("anon-2", 0, expires_at=iso(600), ephemeral=True)
    pending_lapsed = record("alice", 0, upload_expires_at=iso(10))
    pending_fresh = record("alice", 0, upload_expires_at=iso(200))
    ready_lapsed = record("alice", 0, upload_expires_at=iso(10), status="ready")
    for item in (session_old, session_new, pending_lapsed, pending_fresh, ready_lapsed):
        catalog.create(item)
    catalog.save_token("e" * 64, Token(user_id="alice"))

    assert [r.image_id for r in catalog.expired(iso(120))] == [session_old.image_id]
    assert catalog.expired(iso(30)) == []
    abandoned = {r.image_id for r in catalog.abandoned(iso(120))}
    # session_old/new are pending too, with upload URLs that lapsed at minute 10
    assert abandoned == {pending_lapsed.image_id, session_old.image_id, session_new.image_id}
    assert len(catalog.abandoned(iso(120), limit=2)) == 2
    assert catalog.abandoned(iso(5)) == []


def test_tokens_are_found_by_hash(backend):
    catalog = backend.catalog
    catalog.save_token("a" * 64, Token(user_id="alice"))
    catalog.save_token("b" * 64, Token(user_id="root", admin=True))
    assert catalog.find_token("a" * 64) == Token(user_id="alice", admin=False)
    assert catalog.find_token("b" * 64) == Token(user_id="root", admin=True)
    assert catalog.find_token("c" * 64) is None
    assert catalog.list(ListQuery(user_id="alice")).images == []


def test_paging_goes_on_when_the_cursor_record_was_deleted(backend, gallery):
    first = backend.catalog.list(ListQuery(user_id="alice", limit=4))
    backend.catalog.delete("alice", first.images[-1].image_id)
    rest = backend.catalog.list(ListQuery(user_id="alice", limit=100, cursor=first.next_cursor))
    assert [r.image_id for r in rest.images] == [r.image_id for r in reversed(gallery)][4:]


def test_listing_by_tag_and_status_follows_puts_claims_and_deletes(backend):
    """Tags a put removes or adds, a status a claim or a put changes, a record deleted: every
    tag and status listing shows the record where it is now, and only there."""
    catalog = backend.catalog
    first, second = record(minutes=0, tags=["sea", "sky"]), record(minutes=1, tags=["sea"])
    for item in (first, second):
        catalog.create(item)

    def ids(**query):
        return [r.image_id for r in catalog.list(ListQuery(user_id="alice", **query)).images]

    assert ids(tag="sea") == [second.image_id, first.image_id]
    assert ids(status="pending") == [second.image_id, first.image_id]
    assert catalog.put(first.copy(tags=["sky", "land"], description="retagged"))
    assert ids(tag="sea") == [second.image_id]
    assert ids(tag="land") == [first.image_id] and ids(tag="sky") == [first.image_id]

    claimed = catalog.claim("alice", first.image_id, now=iso(1), lease_until=iso(3))
    assert ids(status="processing") == [first.image_id] and ids(status="pending") == [second.image_id]
    assert catalog.put(claimed.copy(status="ready", lease_until=None), expect_status=["processing"])
    assert ids(status="ready") == [first.image_id] and ids(status="processing") == []
    assert ids(tag="land", status="ready") == [first.image_id] and ids(tag="land", status="pending") == []
    assert catalog.put(first.copy(status="ready", tags=[]), expect_status=["rejected"]) is False  # refused: no change
    assert ids(tag="sky") == [first.image_id]

    catalog.delete("alice", first.image_id)
    assert ids(tag="land") == [] and ids(tag="sky") == [] and ids(status="ready") == []
    assert ids(tag="sea") == [second.image_id] and ids() == [second.image_id]


def test_a_tag_listing_pages_like_any_other(backend):
    catalog = backend.catalog
    tagged = [record(minutes=minute, tags=["sea"] if minute % 3 else ["land"]) for minute in range(12)]
    for item in tagged:
        catalog.create(item)
    expected = [r.image_id for r in reversed(tagged) if "sea" in r.tags]
    pages = _all_pages(catalog, user_id="alice", tag="sea", limit=3)
    assert [len(p) for p in pages] == [3, 3, 2] and [i for page in pages for i in page] == expected
    assert [i for page in _all_pages(catalog, user_id="alice", tag="sea", since=iso(2), until=iso(9), limit=2)
            for i in page] == [r.image_id for r in reversed(tagged[2:10]) if "sea" in r.tags]


def test_a_rare_match_is_found_behind_many_others(backend):
    """More records than one filtered read returns: the adapter keeps reading until the page
    is full or the owner's records end, and the cursor resumes right after the last match."""
    rare = {3, 240}
    for minute in range(250):
        backend.catalog.create(record("alice", minute, tags=["rare"] if minute in rare else ["common"]))
    first = backend.catalog.list(ListQuery(user_id="alice", tag="rare", limit=1))
    assert [r.created_at for r in first.images] == [iso(240)] and first.next_cursor
    second = backend.catalog.list(ListQuery(user_id="alice", tag="rare", limit=1, cursor=first.next_cursor))
    assert [r.created_at for r in second.images] == [iso(3)]
    assert second.next_cursor is None


# -- usage, quota and rate counters --------------------------------------------------------------

ROOMY = OwnerLimits(images=100, bytes=10**9, per_minute=1000)


def test_usage_follows_create_put_add_bytes_and_delete(backend):
    catalog = backend.catalog
    first, second = record(size=1000), record(minutes=1, size=500)
    catalog.create(first, limits=ROOMY)
    catalog.create(second)
    assert catalog.usage("alice") == Usage(images=2, bytes=1500)
    assert catalog.put(first.copy(size=1200, status="ready"))  # the real size replaced the declared one
    assert catalog.usage("alice") == Usage(images=2, bytes=1700)
    assert catalog.add_bytes("alice", first.image_id, 300, limit=None) is True
    assert catalog.get("alice", first.image_id).extra_bytes == 300
    assert catalog.usage("alice") == Usage(images=2, bytes=2000)
    # a put of a copy read before add_bytes keeps the conversion's bytes
    assert catalog.put(first.copy(size=1200, status="ready", description="edited"))
    assert catalog.get("alice", first.image_id).extra_bytes == 300
    catalog.delete("alice", first.image_id)
    assert catalog.usage("alice") == Usage(images=1, bytes=500)
    catalog.delete("alice", first.image_id)  # again: nothing more released
    catalog.delete("bob", second.image_id)  # not his: nothing released
    assert catalog.usage("alice") == Usage(images=1, bytes=500)
    assert catalog.usage("carol") == Usage(images=0, bytes=0)


def test_add_bytes_refuses_past_the_limit_and_for_a_missing_image(backend):
    catalog = backend.catalog
    item = record(size=1000)
    catalog.create(item)
    assert catalog.add_bytes("alice", item.image_id, 600, limit=1500) is False
    assert catalog.usage("alice").bytes == 1000
    assert catalog.add_bytes("alice", item.image_id, 500, limit=1500) is True
    assert catalog.usage("alice").bytes == 1500
    assert catalog.add_bytes("alice", new_id(), 1, limit=None) is False
    assert catalog.add_bytes("bob", item.image_id, 1, limit=None) is False
    assert catalog.usage("alice").bytes == 1500


def test_create_refuses_past_the_image_and_byte_quota(backend):
    catalog = backend.catalog
    limits = OwnerLimits(images=2, bytes=2500, per_minute=100)
    catalog.create(record(size=1000), limits=limits)
    with pytest.raises(Conflict) as caught:
        catalog.create(record(minutes=1, size=1501), limits=limits)
    assert caught.value.code == "quota_exceeded" and "bytes" in caught.value.message
    catalog.create(record(minutes=1, size=1500), limits=limits)
    with pytest.raises(Conflict) as caught:
        catalog.create(record(minutes=2, size=0), limits=limits)
    assert caught.value.code == "quota_exceeded" and "images" in caught.value.message
    assert catalog.usage("alice") == Usage(images=2, bytes=2500)
    catalog.create(record("bob", size=1000), limits=limits)  # per owner


def test_the_creation_rate_window_is_not_reset_by_deletions(backend):
    catalog = backend.catalog
    limits = OwnerLimits(images=100, bytes=10**9, per_minute=3)
    made = [record(minutes=i) for i in range(3)]
    for item in made:
        catalog.create(item, limits=limits)
    for item in made:
        catalog.delete("alice", item.image_id)
    assert catalog.usage("alice") == Usage(images=0, bytes=0)
    with pytest.raises(TooManyRequests) as caught:
        catalog.create(record(minutes=5), limits=limits)
    assert caught.value.code == "rate_limited" and 1 <= caught.value.retry_after <= 60
    assert catalog.usage("alice").images == 0  # the refused one was not counted
    catalog.create(record("bob"), limits=limits)  # per owner


def test_hit_rate_is_a_fixed_window_counter(backend):
    catalog = backend.catalog
    assert [catalog.hit_rate("10.0.0.1", "workspaces", 2, 3600) for _ in range(2)] == [None, None]
    wait = catalog.hit_rate("10.0.0.1", "workspaces", 2, 3600)
    assert wait is not None and 1 <= wait <= 3600
    assert catalog.hit_rate("10.0.0.1", "conversions", 2, 3600) is None  # another name
    assert catalog.hit_rate("10.0.0.2", "workspaces", 2, 3600) is None  # another bucket


# -- idempotency keys ----------------------------------------------------------------------------

def test_idempotency_key_lifecycle(backend):
    catalog = backend.catalog
    later = to_iso(datetime.now(timezone.utc) + timedelta(hours=24))
    assert catalog.idempotency_begin("alice", "key-1", "fp-a", later) is None  # ours now
    held = catalog.idempotency_begin("alice", "key-1", "fp-b", later)
    assert held == IdempotencyEntry(fingerprint="fp-a", state="in_flight", response=None, image_id=None)
    assert catalog.idempotency_begin("bob", "key-1", "fp-b", later) is None  # keys are per owner

    answer = {"image_id": "01J00000000000000000000000", "status": "pending", "upload_headers": {"a": "b"}}
    catalog.idempotency_finish("alice", "key-1", answer["image_id"], answer)
    done = catalog.idempotency_begin("alice", "key-1", "fp-a", later)
    assert done == IdempotencyEntry(fingerprint="fp-a", state="done", response=answer, image_id=answer["image_id"])
    catalog.idempotency_abandon("alice", "key-1")  # a finished key is not freed
    assert catalog.idempotency_begin("alice", "key-1", "fp-a", later).state == "done"

    assert catalog.idempotency_begin("alice", "key-2", "fp", later) is None
    catalog.idempotency_abandon("alice", "key-2")  # the owner failed: the next request takes it
    assert catalog.idempotency_begin("alice", "key-2", "fp", later) is None


def test_an_expired_idempotency_key_is_free_again(backend):
    catalog = backend.catalog
    past = to_iso(datetime.now(timezone.utc) - timedelta(seconds=1))
    assert catalog.idempotency_begin("alice", "old", "fp-a", past) is None
    assert catalog.idempotency_begin("alice", "old", "fp-b", to_iso(datetime.now(timezone.utc) + timedelta(hours=1))) is None


# -- share links -------------------------------------------------------------------------------

def _link(image: ImageRecord, minutes: float = 60, **fields) -> ShareLink:
    now = datetime.now(timezone.utc)
    return ShareLink(link_id=new_link_id(), user_id=image.user_id, image_id=image.image_id, created_at=to_iso(now),
                     expires_at=to_iso(now + timedelta(minutes=minutes)), **fields)


def _ready(catalog) -> ImageRecord:
    image = record()
    catalog.create(image)
    assert catalog.put(image.copy(status="ready"))
    return image


def test_a_share_link_is_made_listed_opened_counted_and_revoked(backend):
    catalog = backend.catalog
    image = _ready(catalog)
    first = catalog.create_link(_link(image), limit=3)
    second = catalog.create_link(_link(image, original=True), limit=3)
    assert catalog.open_link(first.link_id) == first
    catalog.count_view(first)
    catalog.count_view(first)
    listed = catalog.links_of("alice", image.image_id)
    assert {(link.link_id, views) for link, views in listed} == {(first.link_id, 2), (second.link_id, 0)}
    assert catalog.links_of("bob", image.image_id) == []
    assert catalog.revoke_link("bob", first.link_id) is None  # another owner's link: as if unknown
    assert catalog.revoke_link("alice", first.link_id) == first
    assert catalog.open_link(first.link_id) is None and catalog.revoke_link("alice", first.link_id) is None
    assert [link.link_id for link, _ in catalog.links_of("alice", image.image_id)] == [second.link_id]


def test_a_link_needs_a_ready_image_and_room_and_ends_with_its_expiry(backend):
    catalog = backend.catalog
    pending = record()
    catalog.create(pending)
    with pytest.raises(Conflict, match="ready"):
        catalog.create_link(_link(pending), limit=3)
    with pytest.raises(NotFound):
        catalog.create_link(_link(record()), limit=3)
    image = _ready(catalog)
    expired = catalog.create_link(_link(image, minutes=-1), limit=2)
    assert catalog.open_link(expired.link_id) is None  # an expired link opens like an unknown one
    catalog.create_link(_link(image), limit=2)
    catalog.create_link(_link(image), limit=2)  # the expired one takes no room
    with pytest.raises(Conflict, match="at most 2"):
        catalog.create_link(_link(image), limit=2)


def test_deleting_the_image_removes_its_links(backend):
    catalog = backend.catalog
    image = _ready(catalog)
    links = [catalog.create_link(_link(image), limit=5) for _ in range(3)]
    assert catalog.delete("alice", image.image_id)
    assert all(catalog.open_link(link.link_id) is None for link in links)
    assert catalog.links_of("alice", image.image_id) == []


# -- the unit of work itself -----------------------------------------------------------------

def test_documents_are_versioned_filed_under_their_parent_and_removed_whole(backend):
    store = backend.catalog.store
    with store.unit_of_work() as uow:
        uow.batches.put("b1", {"n": 1}, None, parent="alice")
        uow.batches.put("b2", {"n": 2}, None, parent="alice")
        uow.batches.put("b3", {"n": 3}, None)
        uow.commit()
    reader = store.unit_of_work()
    assert [(key, stored.value) for key, stored in reader.batches.under("alice")] == [("b1", {"n": 1}), ("b2", {"n": 2})]
    assert reader.links.get("b1").value is None  # kinds never meet
    with store.unit_of_work() as uow:
        first = uow.batches.get("b1")
        uow.batches.put("b1", {"n": 10}, first.version, parent="alice")
        uow.batches.remove("b2", uow.batches.get("b2").version)
        uow.commit()
    assert [(key, stored.value) for key, stored in reader.batches.under("alice")] == [("b1", {"n": 10})]
    assert reader.batches.get("b1").version != first.version


def test_a_commit_over_a_changed_value_raises_version_conflict_and_writes_nothing(backend):
    store = backend.catalog.store
    with store.unit_of_work() as uow:
        uow.counters.put("c", {"n": 1}, None)
        uow.commit()
    stale = store.unit_of_work().counters.get("c")
    with store.unit_of_work() as uow:
        uow.counters.put("c", {"n": 2}, stale.version)
        uow.commit()
    with pytest.raises(VersionConflict):
        with store.unit_of_work() as uow:
            uow.counters.put("other", {"n": 1}, None)
            uow.counters.put("c", {"n": 3}, stale.version)
            uow.commit()
    reader = store.unit_of_work()
    assert reader.counters.get("c").value == {"n": 2} and reader.counters.get("other").value is None


# -- batches -------------------------------------------------------------------------------------

def _batch(user_id: str = "alice", **fields) -> Batch:
    now = datetime.now(timezone.utc)
    values = {"batch_id": new_id(), "user_id": user_id, "action": "zip", "created_at": to_iso(now),
              "expires_at": to_iso(now + timedelta(hours=1)),
              "items": [BatchItem(new_id()), BatchItem(new_id())]}
    return Batch(**{**values, **fields})


def test_a_batch_is_made_within_its_hourly_window_and_read_by_its_owner_only(backend):
    catalog = backend.catalog
    first = catalog.create_batch(_batch(), per_hour=2)
    catalog.create_batch(_batch(), per_hour=2)
    with pytest.raises(TooManyRequests) as refused:
        catalog.create_batch(_batch(), per_hour=2)
    assert refused.value.retry_after >= 1
    catalog.create_batch(_batch("bob"), per_hour=2)  # another owner's window
    assert catalog.get_batch("alice", first.batch_id) == first
    assert catalog.get_batch("bob", first.batch_id) is None


def test_a_batch_finishes_counted_in_the_owners_bytes_and_a_cancel_gives_them_back(backend):
    catalog = backend.catalog
    batch = catalog.create_batch(_batch(), per_hour=10)
    running = Batch.from_dict({**batch.to_dict(), "status": "running"})
    assert catalog.save_batch(running)
    assert not catalog.finish_batch(running, 5000, limit=4999)  # past the byte quota: nothing counted
    assert catalog.usage("alice") == Usage(images=0, bytes=0)
    assert catalog.finish_batch(running, 4000, limit=4999)
    ready = catalog.get_batch("alice", batch.batch_id)
    assert (ready.status, ready.bytes) == ("ready", 4000) and catalog.usage("alice") == Usage(images=0, bytes=4000)
    assert catalog.cancel_batch("bob", batch.batch_id) is None
    assert catalog.cancel_batch("alice", batch.batch_id).status == "ready"
    assert catalog.get_batch("alice", batch.batch_id).status == "cancelled"
    assert catalog.usage("alice") == Usage(images=0, bytes=0)
    assert not catalog.save_batch(running)  # a cancelled batch's job writes nothing more
    assert not catalog.finish_batch(running, 10, limit=None)


def test_the_sweep_finds_batches_past_their_end_that_still_hold_bytes(backend):
    catalog = backend.catalog
    past = to_iso(datetime.now(timezone.utc) - timedelta(minutes=5))
    ended = catalog.create_batch(_batch(expires_at=past), per_hour=10)
    live = catalog.create_batch(_batch(), per_hour=10)
    for batch in (ended, live):
        running = Batch.from_dict({**batch.to_dict(), "status": "running"})
        assert catalog.save_batch(running) and catalog.finish_batch(running, 100, limit=None)
    now = to_iso(datetime.now(timezone.utc))
    assert [b.batch_id for b in catalog.ended_batches(now)] == [ended.batch_id]
    catalog.cancel_batch("alice", ended.batch_id)
    assert catalog.ended_batches(now) == [] and catalog.usage("alice") == Usage(images=0, bytes=100)
