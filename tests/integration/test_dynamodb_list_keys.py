"""The DynamoDB catalog's list keys on a moto server: the status index's ``owner_status`` and the
tag items (adapters/dynamodb/). What the catalog contract cannot see: the tag items'
ttl, a tag item outliving its record, keys BatchGetItem leaves unprocessed, and the backfill
that ``imageservice setup`` runs on a table from before the index."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from imageservice.adapters.dynamodb.items import STATUS_INDEX
from imageservice.adapters.dynamodb.store import DynamoStore
from imageservice.catalog import Catalog
from imageservice.adapters.aws.setup import setup_resources
from imageservice.core.ids import new_id
from imageservice.core.records import ImageRecord, ListQuery
from imageservice.core.timeutil import iso_to_epoch, to_iso
from imageservice.settings import Settings

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def record(minutes: int = 0, **fields) -> ImageRecord:
    moment = BASE + timedelta(minutes=minutes)
    values = {"status": "pending", "size": 100, "created_at": to_iso(moment),
              "upload_expires_at": to_iso(moment + timedelta(minutes=10))}
    values.update(fields)
    return ImageRecord(image_id=new_id(now_ms=int(moment.timestamp() * 1000)), user_id="alice", **values)


@pytest.fixture
def aws(moto_server, aws_names):
    settings = Settings.from_env(aws_names.env(moto_server.endpoint))
    client = moto_server.client("dynamodb")
    return settings, client


def tag_item(client, table: str, tag: str, image_id: str) -> dict | None:
    return client.get_item(TableName=table, Key={"user_id": {"S": f"tag#alice#{tag}"},
                                                  "image_id": {"S": image_id}}).get("Item")


def ids(catalog: Catalog, **query) -> list[str]:
    return [r.image_id for r in catalog.list(ListQuery(user_id="alice", **query)).images]


def test_tag_items_expire_with_their_record(aws):
    settings, client = aws
    list(setup_resources(settings))
    catalog = Catalog(DynamoStore(client, settings.table))
    pending = record(tags=["sea"])
    catalog.create(pending)
    stored_ttl = client.get_item(TableName=settings.table, Key={"user_id": {"S": "alice"},
                                                                "image_id": {"S": pending.image_id}})["Item"]["ttl"]
    assert tag_item(client, settings.table, "sea", pending.image_id)["ttl"] == stored_ttl  # an abandoned upload
    assert catalog.put(pending.copy(status="ready"))  # persistent and no longer pending: never expires
    assert "ttl" not in tag_item(client, settings.table, "sea", pending.image_id)
    workspace = record(minutes=1, tags=["sea"], expires_at=to_iso(BASE + timedelta(days=1)))
    catalog.create(workspace)
    assert tag_item(client, settings.table, "sea", workspace.image_id)["ttl"] == {
        "N": str(iso_to_epoch(workspace.expires_at))}
    assert ids(catalog, tag="sea") == [workspace.image_id, pending.image_id]


def test_a_tag_item_whose_record_is_gone_is_skipped_and_the_page_still_fills(aws):
    settings, client = aws
    list(setup_resources(settings))
    catalog = Catalog(DynamoStore(client, settings.table))
    made = [record(minutes=m, tags=["sea"]) for m in range(6)]
    for item in made:
        catalog.create(item)
    newest = [r.image_id for r in reversed(made)]
    # Only the record goes (as DynamoDB TTL might take it before its tag item).
    client.delete_item(TableName=settings.table, Key={"user_id": {"S": "alice"}, "image_id": {"S": newest[1]}})
    first = catalog.list(ListQuery(user_id="alice", tag="sea", limit=3))
    assert [r.image_id for r in first.images] == [newest[0], newest[2], newest[3]] and first.next_cursor
    rest = catalog.list(ListQuery(user_id="alice", tag="sea", limit=3, cursor=first.next_cursor))
    assert [r.image_id for r in rest.images] == newest[4:] and rest.next_cursor is None


def test_keys_batch_get_item_leaves_unprocessed_are_asked_for_again(aws):
    settings, client = aws
    list(setup_resources(settings))
    made = [record(minutes=m, tags=["sea"]) for m in range(5)]
    catalog = Catalog(DynamoStore(client, settings.table))
    for item in made:
        catalog.create(item)
    answered = client.batch_get_item
    asked: list[int] = []

    def throttled(**request):
        """The first answer holds only the first key; the rest come back unprocessed."""
        keys = request["RequestItems"][settings.table]["Keys"]
        asked.append(len(keys))
        if len(asked) > 1:
            return answered(**request)
        response = answered(RequestItems={settings.table: {**request["RequestItems"][settings.table],
                                                           "Keys": keys[:1]}})
        return {**response, "UnprocessedKeys": {settings.table: {"Keys": keys[1:], "ConsistentRead": True}}}

    client.batch_get_item = throttled
    try:
        assert ids(catalog, tag="sea") == [r.image_id for r in reversed(made)]
    finally:
        client.batch_get_item = answered
    assert asked == [5, 4]


def test_setup_adds_the_status_index_and_backfills_records_from_before_it(aws):
    """A table made before the index, holding records without ``owner_status`` and tag items:
    setup adds the index and completes them; a second setup writes nothing."""
    settings, client = aws
    client.create_table(
        TableName=settings.table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("user_id", "image_id")],
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "image_id", "KeyType": "RANGE"}],
    )
    catalog = Catalog(DynamoStore(client, settings.table))
    made = [record(minutes=m, tags=["sea", f"t{m}"] if m % 2 else [], status="ready" if m % 3 else "pending")
            for m in range(6)]
    for item in made:
        catalog.create(item)
    for item in made:  # as the catalog wrote them before the index: no owner_status, no tag items
        client.update_item(TableName=settings.table, UpdateExpression="REMOVE owner_status",
                           Key={"user_id": {"S": "alice"}, "image_id": {"S": item.image_id}})
        for tag in item.tags:
            client.delete_item(TableName=settings.table, Key={"user_id": {"S": f"tag#alice#{tag}"},
                                                               "image_id": {"S": item.image_id}})
    # A claim writes the whole record, its owner_status and (its ttl changed: no longer
    # pending) every tag item: that record is complete already, the others are not.
    assert catalog.claim("alice", made[3].image_id, now=to_iso(BASE), lease_until=to_iso(BASE + timedelta(minutes=2)))
    assert ids(catalog, tag="sea") == [made[3].image_id]

    lines = list(setup_resources(settings))
    assert f"table {settings.table}: exists, index {STATUS_INDEX} added" in lines
    assert f"table {settings.table}: list keys (status index, tag items) written for 5 earlier records" in lines
    (index,) = client.describe_table(TableName=settings.table)["Table"]["GlobalSecondaryIndexes"]
    assert (index["IndexName"], index["IndexStatus"]) == (STATUS_INDEX, "ACTIVE")
    newest = list(reversed(made))
    assert ids(catalog, tag="sea") == [r.image_id for r in newest if "sea" in r.tags]
    assert ids(catalog, tag="t3") == [made[3].image_id]
    assert ids(catalog, status="ready") == [r.image_id for r in newest if r.status == "ready"]
    assert ids(catalog, status="processing") == [made[3].image_id]
    assert ids(catalog, status="pending") == [made[0].image_id]

    again = list(setup_resources(settings))
    assert f"table {settings.table}: exists" in again
    assert f"table {settings.table}: list keys (status index, tag items) written for 0 earlier records" in again


def test_a_new_table_has_the_status_index(aws):
    settings, client = aws
    lines = list(setup_resources(settings))
    assert f"table {settings.table}: created with index {STATUS_INDEX}" in lines
    table = client.describe_table(TableName=settings.table)["Table"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["owner_status", "image_id"]
    assert index["Projection"]["ProjectionType"] == "ALL"
    assert {d["AttributeName"] for d in table["AttributeDefinitions"]} == {"user_id", "image_id", "owner_status"}
