"""The table's items: keys, the record item, the version conditions every write names.

Item layout (docs/AWS.md explains the choices): one table, partition key ``user_id``, sort key
``image_id``.

- A record: ``body`` (the whole ImageRecord as JSON) and top-level copies of what the table
  itself must see: ``status``, ``lease_until``, ``attempts``, ``created_at`` (the exact time
  filter), ``tags``, ``size``, ``extra_bytes``, ``expires_at`` and ``upload_expires_at``
  (housekeeping scans), ``ttl`` (DynamoDB TTL: a session workspace's end, or a day after a
  pending upload's URL lapsed), ``owner_status`` = ``<user_id>#<status>`` (the partition key
  of the ``by_owner_status`` index) and ``version``.
- A record's tags are items of their own, ``user_id = "tag#<owner>#<tag>"``, ``image_id`` the
  record's (a GSI cannot index the elements of a list), carrying the record's ``ttl``; they
  change in the same transaction as the record.
- Counters (``<key>`` / ``counter``: ``value`` as JSON, ``version``, ``ttl``), idempotency keys
  (``idem#<user>`` / ``<key>``), tokens (``token#<sha256>`` / ``token``) and documents (share
  links, batches: ``doc#<kind>#<key>`` / ``doc``, with an index item ``docs#<kind>#<parent>`` /
  ``<key>`` when filed under a parent). User ids cannot contain ``#``, so none of these meets an
  owner's partition.

Items written before versions have none: they read as version 0, and the first write names
that by the attribute's absence.
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.types import TypeSerializer

from ...core.errors import BadRequest
from ...core.records import PENDING, TAG_LIMIT, ImageRecord
from ...core.timeutil import iso_to_epoch

TOKEN_PREFIX, TOKEN_SORT_KEY = "token#", "token"
IDEMPOTENCY_PREFIX = "idem#"
TAG_PREFIX = "tag#"
COUNTER_SORT_KEY = "counter"
DOCUMENT_PREFIX, DOCUMENT_SORT_KEY = "doc#", "doc"
DOCUMENT_INDEX_PREFIX = "docs#"
PING_KEY = {"user_id": {"S": "#ping"}, "image_id": {"S": "#ping"}}
STATUS_INDEX = "by_owner_status"
STATUS_INDEX_KEYS = (("owner_status", "HASH"), ("image_id", "RANGE"))
_SERIALIZER = TypeSerializer()


def key(user_id: str, image_id: str) -> dict[str, Any]:
    return {"user_id": {"S": user_id}, "image_id": {"S": image_id}}


def version_of(item: dict[str, Any]) -> int:
    return int(item["version"]["N"]) if "version" in item else 0


def as_read(version: int | None) -> ConditionBase:
    """True while the item is as read at ``version`` (None: there was none)."""
    if version is None:
        return Attr("user_id").not_exists()
    if version == 0:
        return Attr("user_id").exists() & Attr("version").not_exists()
    return Attr("version").eq(version)


def next_version(version: int | None) -> dict[str, str]:
    return {"N": str((version or 0) + 1)}


def condition(built_from: ConditionBase) -> dict[str, Any]:
    """ConditionExpression and its placeholders for a low-level client call, built with
    boto3's condition builder."""
    built = ConditionExpressionBuilder().build_expression(built_from)
    request: dict[str, Any] = {
        "ConditionExpression": built.condition_expression,
        "ExpressionAttributeNames": dict(built.attribute_name_placeholders),
    }
    if built.attribute_value_placeholders:
        request["ExpressionAttributeValues"] = {
            k: _SERIALIZER.serialize(v) for k, v in built.attribute_value_placeholders.items()
        }
    return request


def owner_status(user_id: str, status: str) -> str:
    return f"{user_id}#{status}"


def tag_partition(user_id: str, tag: str) -> str:
    # User ids hold no "#", so the owner ends at the second one whatever the tag holds.
    return f"{TAG_PREFIX}{user_id}#{tag}"


def tags_of(record: ImageRecord) -> list[str]:
    """The record's tags, each once: one tag item each."""
    tags = list(dict.fromkeys(record.tags))
    if len(tags) > TAG_LIMIT:
        raise BadRequest(f"At most {TAG_LIMIT} tags.", code="invalid_parameter")
    return tags


def stored_tags(item: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(tag["S"] for tag in item.get("tags", {}).get("L", [])))


def stored_ttl(item: dict[str, Any]) -> int | None:
    return int(item["ttl"]["N"]) if "ttl" in item else None


def record_ttl(record: ImageRecord, abandoned_ttl: int) -> int | None:
    """When DynamoDB may drop the record: a session workspace's end, or ``abandoned_ttl``
    seconds after a pending upload's URL lapsed. Persistent records past pending never expire."""
    if record.expires_at:
        return iso_to_epoch(record.expires_at)
    if record.status == PENDING and record.upload_expires_at:
        return iso_to_epoch(record.upload_expires_at) + abandoned_ttl
    return None


def record_item(record: ImageRecord, ttl: int | None, version: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        **key(record.user_id, record.image_id),
        "status": {"S": record.status},
        "owner_status": {"S": owner_status(record.user_id, record.status)},
        "attempts": {"N": str(record.attempts)},
        "tags": {"L": [{"S": tag} for tag in tags_of(record)]},
        "size": {"N": str(record.size or 0)},
        "extra_bytes": {"N": str(record.extra_bytes)},
        "body": {"S": json.dumps(record.to_dict(), separators=(",", ":"))},
        "version": next_version(version),
    }
    for name in ("created_at", "expires_at", "upload_expires_at", "lease_until"):
        value = getattr(record, name)
        if value:
            item[name] = {"S": value}
    if ttl is not None:
        item["ttl"] = {"N": str(ttl)}
    return item


def record_of(item: dict[str, Any]) -> ImageRecord:
    """The record an item holds; the top-level copies win over the body (items from before
    versions were claimed by updating those alone)."""
    data = json.loads(item["body"]["S"])
    data["status"] = item["status"]["S"]
    data["lease_until"] = item["lease_until"]["S"] if "lease_until" in item else None
    data["attempts"] = int(item["attempts"]["N"]) if "attempts" in item else 0
    data["extra_bytes"] = int(item["extra_bytes"]["N"]) if "extra_bytes" in item else 0
    return ImageRecord.from_dict(data)


def tag_item(user_id: str, image_id: str, tag: str, ttl: int | None) -> dict[str, Any]:
    """The item that lists ``image_id`` under ``tag``; it expires with the record."""
    item = key(tag_partition(user_id, tag), image_id)
    if ttl is not None:
        item["ttl"] = {"N": str(ttl)}
    return item
