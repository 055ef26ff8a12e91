"""The Catalog contract (ports.Catalog), once against SQLite and once against DynamoDB (moto server)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from imageservice.core.errors import BadRequest, Conflict
from imageservice.core.ids import new_id
from imageservice.core.records import ImageRecord, ListQuery, Token
from imageservice.core.timeutil import to_iso
from imageservice.ports import Catalog

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


def test_the_adapter_implements_the_protocol(backend):
    assert isinstance(backend.catalog, Catalog)
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
    if backend.kind == "aws":  # the cursor is a table key: one naming another owner is refused
        with pytest.raises(BadRequest) as caught:
            backend.catalog.list(ListQuery(user_id="bob", limit=3, cursor=page.next_cursor))
        assert caught.value.code == "invalid_cursor"
    else:  # the cursor is a position in the id order, applied inside bob's own records
        shown = backend.catalog.list(ListQuery(user_id="bob", limit=3, cursor=page.next_cursor)).images
        assert {r.user_id for r in shown} <= {"bob"}
    with pytest.raises(BadRequest):
        backend.catalog.list(ListQuery(user_id="alice", cursor="not-a-cursor!"))


def test_delete_is_idempotent(backend):
    item = record()
    backend.catalog.create(item)
    backend.catalog.delete("alice", item.image_id)
    backend.catalog.delete("alice", item.image_id)
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
