"""Every list query shape is an index range, never a sort or a walk of the owner's rows.

SQLite: each shape's ``EXPLAIN QUERY PLAN`` is printed and must neither sort (``USE TEMP
B-TREE``) nor ``SCAN`` a table or index. DynamoDB (moto server): the items a page reads
(``ScannedCount``) stay near the page size for the key-range shapes, however many records the
owner has.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from imageservice.adapters.local.catalog import SqliteCatalog, list_sql
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
    catalog = SqliteCatalog(tmp_path_factory.mktemp("plans") / "catalog.sqlite3")
    for i in range(3000):  # enough rows that ANALYZE-free plans are realistic
        catalog.create(_record(i, "alice" if i % 3 else "bob"))
    return catalog


@pytest.mark.parametrize("shape", SHAPES)
def test_each_sqlite_list_shape_is_an_index_range(sqlite_catalog, shape):
    sql, params = list_sql(SHAPES[shape])
    plan = [row[3] for row in sqlite_catalog.db.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    print(f"{shape}: {' | '.join(plan)}")
    assert not [step for step in plan if "TEMP B-TREE" in step], plan
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert all(step.startswith("SEARCH") for step in plan), plan
    # and it answers: the plan is the one list() runs
    sqlite_catalog.list(SHAPES[shape])


def test_dynamodb_pages_read_about_a_page(backend):
    """ScannedCount per page for the key-range shapes, with 250 records in the partition."""
    if backend.kind != "aws":
        pytest.skip("DynamoDB's read counts")
    catalog, client = backend.catalog, backend.clients.dynamodb
    records = [_record(i) for i in range(250)]
    for item in records:
        catalog.create(item)
    scanned: list[int] = []
    original = client.query

    def counting_query(**request):
        response = original(**request)
        scanned.append(response["ScannedCount"])
        return response

    client.query = counting_query
    try:
        newest = sorted(records, key=lambda r: r.image_id, reverse=True)
        shapes = {
            "first page": ListQuery("alice", limit=50),
            "cursor page": ListQuery("alice", limit=50, cursor=encode_cursor("alice", newest[100].image_id)),
            "since": ListQuery("alice", since=newest[30].created_at, limit=50),
            "until": ListQuery("alice", until=newest[150].created_at, limit=50),
            "since + until": ListQuery("alice", since=newest[120].created_at, until=newest[100].created_at, limit=50),
        }
        for name, query in shapes.items():
            scanned.clear()
            page = catalog.list(query)
            print(f"{name}: {len(page.images)} records, {sum(scanned)} items read in {len(scanned)} requests")
            assert page.images
            assert sum(scanned) <= 51 + 2 * 2, (name, scanned)  # a page + 1, and the key-range slack
    finally:
        client.query = original
