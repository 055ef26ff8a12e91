"""Giving records written before the status index and the tag items what listing needs."""

from __future__ import annotations

from functools import reduce
from itertools import islice
from operator import and_
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from ...core.errors import TransientError
from ..aws.errors import error_code, transient_errors
from .items import condition, key, owner_status, stored_tags, stored_ttl, tag_item, tag_partition
from .reads import RecordReader, names

BACKFILL_CHUNK = 100
WRITE_ATTEMPTS = 5
_DESERIALIZER = TypeDeserializer()


def backfill_list_keys(dynamodb_client, table: str) -> int:
    """Give records written before the status index and the tag items ``owner_status`` and
    one item per tag. One Scan of the table; each record that lacks either (or whose tag items
    carry another ttl) gets both in one transaction, conditional on the record as scanned (a
    record that changed meanwhile is read again). Idempotent: a second run writes nothing.
    ``imageservice setup`` runs it after adding the index. Returns how many records it
    completed."""
    reader = RecordReader(dynamodb_client, table)
    records = reader.pages("scan", {"TableName": table, "FilterExpression": "attribute_exists(#status)",
                                    "ExpressionAttributeNames": names("#status"), "ConsistentRead": True})
    completed = 0
    while chunk := list(islice(records, BACKFILL_CHUNK)):
        tag_items = reader.batch_get([
            key(tag_partition(item["user_id"]["S"], tag), item["image_id"]["S"])
            for item in chunk for tag in stored_tags(item)
        ])
        for item in chunk:
            if not _has_list_keys(item, tag_items) and _complete(reader, item):
                completed += 1
    return completed


def _complete(reader: RecordReader, item: dict[str, Any]) -> bool:
    """Write ``owner_status`` and the tag items of the record ``item`` (as scanned); False
    when the record is gone."""
    user_id, image_id = item["user_id"]["S"], item["image_id"]["S"]
    for _ in range(WRITE_ATTEMPTS):
        unchanged = condition(_as_stored(item, "status", "tags", "ttl"))
        unchanged["ExpressionAttributeNames"]["#owner_status"] = "owner_status"
        unchanged.setdefault("ExpressionAttributeValues", {})[":owner_status"] = {
            "S": owner_status(user_id, item["status"]["S"])}
        try:
            with transient_errors("backfill list keys"):
                reader.db.transact_write_items(TransactItems=[
                    {"Update": {"TableName": reader.table, "Key": key(user_id, image_id),
                                "UpdateExpression": "SET #owner_status = :owner_status", **unchanged}},
                    *({"Put": {"TableName": reader.table, "Item": tag_item(user_id, image_id, tag, stored_ttl(item))}}
                      for tag in stored_tags(item)),
                ])
            return True
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
        item = reader.get_item(key(user_id, image_id), "read record")
        if item is None:
            return False
    raise TransientError("backfill list keys: the record kept changing")



def _has_list_keys(item: dict[str, Any], tag_items: dict[tuple[str, str], dict[str, Any]]) -> bool:
    """Whether the record ``item`` has its ``owner_status`` and, among ``tag_items``, an item
    for each tag carrying the record's ttl."""
    user_id, image_id = item["user_id"]["S"], item["image_id"]["S"]
    if item.get("owner_status", {}).get("S") != owner_status(user_id, item["status"]["S"]):
        return False
    listed = [tag_items.get((tag_partition(user_id, tag), image_id)) for tag in stored_tags(item)]
    return all(tag_item is not None and stored_ttl(tag_item) == stored_ttl(item) for tag_item in listed)


def _as_stored(item: dict[str, Any], *attributes: str) -> ConditionBase:
    """True while each of ``attributes`` is as in ``item`` (one it lacks is still absent)."""
    return reduce(and_, [Attr(name).eq(_DESERIALIZER.deserialize(item[name])) if name in item
                         else Attr(name).not_exists() for name in attributes])
