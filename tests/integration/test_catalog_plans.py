"""Every list query shape is an index range, never a sort or a walk of the owner's rows.

SQLite: each shape's ``EXPLAIN QUERY PLAN`` is printed and must neither sort (``USE TEMP
B-TREE``) nor ``SCAN`` a table or index. DynamoDB (moto server): the items a page reads
(``ScannedCount``) stay near the page size for the key-range shapes, however many records the
owner has.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from imageservice.adapters.sqlite.images import list_sql
from imageservice.adapters.sqlite.store import SqliteStore
from imageservice.catalog import Catalog
from imageservice.core.cursor import encode_cursor
from imageservice.core.ids import new_id
from imageservice.core.records import ImageRecord, ListQuery
from imageservice.core.timeutil import to_iso

BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
CURSOR = encode_cursor("alice", new_id())
SHAPES = {
    "first page": ListQuery("alice", limit=20),
    "cursor page": ListQuery("alice", limit=20, cursor=CURSOR),
    "tag": ListQuery("alice", tag="rare", limit=20),
    "tag + cursor": ListQuery("alice", tag="rare", limit=20, cursor=CURSOR),
    "since": ListQuery("alice", since="2024-03-01T00:00:00Z", limit=20),
    "until": ListQuery("alice", until="2024-01-10T00:00:00Z", limit=20),
    "since + until": ListQuery("alice", since="2024-02-01T00:00:00Z", until="2024-02-08T00:00:00Z", limit=20),
    "status": ListQuery("alice", status="rejected", limit=20),
    "status + since + cursor": ListQuery("alice", status="ready", since="2024-02-01T00:00:00Z", cursor=CURSOR),
    "tag + status + since + until": ListQuery("alice", tag="rare", status="ready", since="2024-02-01T00:00:00Z",
                                              until="2024-03-01T00:00:00Z"),
}


def _record(i: int, user_id: str = "alice") -> ImageRecord:
    moment = BASE + timedelta(minutes=30 * i)
    image_id = new_id(now_ms=int(moment.timestamp() * 1000))
    return ImageRecord(image_id=image_id, user_id=user_id, status="rejected" if i % 50 == 0 else "ready",
                       tags=["rare"] if i % 100 == 0 else ["common", f"t{i % 7}"], size=10,
                       created_at=to_iso(moment))


@pytest.fixture(scope="module")
def sqlite_catalog(tmp_path_factory):
    catalog = Catalog(SqliteStore(tmp_path_factory.mktemp("plans") / "catalog.sqlite3"))
    for i in range(3000):  # enough rows that ANALYZE-free plans are realistic
        catalog.create(_record(i, "alice" if i % 3 else "bob"))
    return catalog


@pytest.mark.parametrize("shape", SHAPES)
def test_each_sqlite_list_shape_is_an_index_range(sqlite_catalog, shape):
    sql, params = list_sql(SHAPES[shape])
    plan = [row[3] for row in sqlite_catalog.store.db.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    print(f"{shape}: {' | '.join(plan)}")
    assert not [step for step in plan if "TEMP B-TREE" in step], plan
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert all(step.startswith("SEARCH") for step in plan), plan
    # and it answers: the plan is the one list() runs
    sqlite_catalog.list(SHAPES[shape])


# moto copies the whole table for every item of a transaction, so seeding through the catalog
# grows with the square of the records: 400 take about 15 s and still dwarf a page.
DYNAMODB_RECORDS = 400
PAGE = 100
# The id range of since/until is a minute wider than created_at's; records 30 minutes apart
# put at most one extra record at each edge.
EDGE_SLACK = 2


def _dynamodb_record(i: int) -> ImageRecord:
    """1 % tagged "rare", every other one "common", 2 % rejected, 30 minutes apart."""
    moment = BASE + timedelta(minutes=30 * i)
    tags = ["rare"] if i % 100 == 0 else ["common"] if i % 2 else []
    return ImageRecord(image_id=new_id(now_ms=int(moment.timestamp() * 1000)), user_id="alice",
                       status="rejected" if i % 50 == 0 else "ready", tags=tags, size=10, created_at=to_iso(moment))


def _expected(records: list[ImageRecord], query: ListQuery) -> list[str]:
    """The ids the whole listing holds, newest first, computed without the catalog."""
    return [r.image_id for r in sorted(records, key=lambda r: r.image_id, reverse=True)
            if (query.tag is None or query.tag in r.tags) and (query.status is None or r.status == query.status)
            and (query.since is None or r.created_at >= query.since)
            and (query.until is None or r.created_at <= query.until)]


def test_dynamodb_pages_read_about_a_page(backend):
    """Items each page reads, for every list shape, with 400 records in the owner's partition:
    the index or tag items a Query reads (ScannedCount) and the records BatchGetItem fetches.
    Each stays within a page + 1 (+ the edges of a time range), or within the matches when
    fewer match: never the partition. Pages are checked against a listing computed here, and
    the cursor page must continue it without a gap or an overlap."""
    if backend.kind != "aws":
        pytest.skip("DynamoDB's read counts")
    catalog, client = backend.catalog, backend.clients.dynamodb
    records = [_dynamodb_record(i) for i in range(DYNAMODB_RECORDS)]
    for item in records:
        catalog.create(item)
    newest = sorted(records, key=lambda r: r.image_id, reverse=True)
    scanned: list[int] = []
    fetched: list[int] = []
    query_items, batch_get_item = client.query, client.batch_get_item

    def counting_query(**request):
        response = query_items(**request)
        scanned.append(response["ScannedCount"])
        return response

    def counting_batch_get_item(**request):
        fetched.append(sum(len(ask["Keys"]) for ask in request["RequestItems"].values()))
        return batch_get_item(**request)

    client.query, client.batch_get_item = counting_query, counting_batch_get_item
    shapes = {
        "first page": ListQuery("alice", limit=PAGE),
        "cursor page": ListQuery("alice", limit=PAGE, cursor=encode_cursor("alice", newest[150].image_id)),
        "tag": ListQuery("alice", tag="rare", limit=PAGE),
        "common tag": ListQuery("alice", tag="common", limit=PAGE),
        "status": ListQuery("alice", status="rejected", limit=PAGE),
        "common status": ListQuery("alice", status="ready", limit=PAGE),
        "since": ListQuery("alice", since=newest[120].created_at, limit=PAGE),
        "until": ListQuery("alice", until=newest[150].created_at, limit=PAGE),
        "since + until": ListQuery("alice", since=newest[300].created_at, until=newest[20].created_at, limit=PAGE),
    }
    try:
        for name, query in shapes.items():
            expected = _expected(records, query)
            if query.cursor:
                expected = expected[expected.index(newest[150].image_id) + 1:]
            listed: list[str] = []
            for number in (1, 2):
                scanned.clear()
                fetched.clear()
                page = catalog.list(query)
                listed += [r.image_id for r in page.images]
                print(f"{name} page {number}: {len(page.images)} records, {sum(scanned)} index/tag items read in "
                      f"{len(scanned)} queries, {sum(fetched)} records fetched")
                assert listed == expected[: len(listed)], name
                bound = min(PAGE, len(expected) - len(listed) + len(page.images)) + 1 + EDGE_SLACK
                assert sum(scanned) <= bound and sum(fetched) <= bound, (name, number, scanned, fetched)
                if page.next_cursor is None:
                    break
                query = dataclasses.replace(query, cursor=page.next_cursor)
            assert len(listed) == min(len(expected), 2 * PAGE), name
    finally:
        client.query, client.batch_get_item = query_items, batch_get_item
