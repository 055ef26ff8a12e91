"""DynamoDB Catalog: one table, partition key ``user_id``, sort key ``image_id``.

Item layout (docs/AWS.md explains the choices):

- ``body``: the whole ImageRecord as JSON (EXIF values of any shape, floats, nulls, without
  DynamoDB's number and empty-set rules getting in the way);
- top-level copies of what the table itself must see: ``status``, ``lease_until`` and
  ``attempts`` (conditions; ``claim`` updates only these three, so on reading they win over
  the body), ``created_at``, ``tags`` and ``size`` (filters and usage), ``expires_at`` and
  ``upload_expires_at`` (housekeeping scans) and ``ttl`` (epoch seconds, DynamoDB TTL) on
  session-workspace records and on pending uploads;
- tokens are items of their own: ``user_id = "token#<sha256>"``, ``image_id = "token"``
  (user ids cannot contain ``#``, so they never meet an owner's partition).

Image ids are time-sortable (ULIDs): newest first is a reverse query on the sort key, and a
created_at range narrows the query itself through ids.id_floor / ids.id_ceiling.
"""

from __future__ import annotations

import json
import math
import time
from itertools import islice
from typing import Any, Iterable, Iterator

from botocore.exceptions import ClientError

from ...core import ids
from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import BadRequest, Conflict
from ...core.records import PENDING, PROCESSING, ImageRecord, ListQuery, Page, Token, Usage
from ...core.timeutil import from_iso, iso_to_epoch
from .errors import error_code, transient_errors

CONDITION_FAILED = "ConditionalCheckFailedException"
TOKEN_PREFIX = "token#"
TOKEN_SORT_KEY = "token"
PING_KEY = {"user_id": {"S": "#ping"}, "image_id": {"S": "#ping"}}
# Ids are made in the same instant as created_at; the key range is widened by this much so a
# millisecond between the two can never hide a record, and a filter on created_at keeps the
# answer exact.
KEY_RANGE_SLACK_MS = 60_000
FILTERED_READ_BUDGET = 200  # items read per request when filters may discard most of them
# Attribute names, all aliased: status, size and ttl are DynamoDB reserved words.
NAMES = {
    "#user": "user_id", "#image": "image_id", "#status": "status", "#lease": "lease_until",
    "#attempts": "attempts", "#created": "created_at", "#tags": "tags", "#size": "size",
    "#expires": "expires_at", "#upload_expires": "upload_expires_at", "#ttl": "ttl",
}


class DynamoCatalog:
    def __init__(self, dynamodb_client, table: str, *, abandoned_ttl: int = 24 * 3600):
        """``abandoned_ttl``: seconds after its upload URL lapsed that DynamoDB TTL removes a
        record still pending (a persistent owner's upload that never came)."""
        self.db = dynamodb_client
        self.table = table
        self.abandoned_ttl = abandoned_ttl

    # -- images -------------------------------------------------------------------------------

    def create(self, record: ImageRecord) -> None:
        """Insert a new record. Raises Conflict (``exists``) when the id exists, TransientError
        on throttling or network failures."""
        with transient_errors("create record"):
            try:
                self.db.put_item(
                    TableName=self.table,
                    Item=self._item(record),
                    ConditionExpression="attribute_not_exists(#image)",
                    ExpressionAttributeNames=_names("#image"),
                )
            except ClientError as exc:
                if error_code(exc) == CONDITION_FAILED:
                    raise Conflict(f"image {record.image_id} exists", code="exists") from None
                raise

    def get(self, user_id: str, image_id: str) -> ImageRecord | None:
        """The owner's record (strongly consistent read), or None (also for another owner's id)."""
        with transient_errors("get record"):
            item = self.db.get_item(TableName=self.table, Key=_key(user_id, image_id), ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def put(self, record: ImageRecord, *, expect_status: Iterable[str] | None = None) -> bool:
        """Replace the whole record, only if it still exists (and, with ``expect_status``, only
        if its stored status is one of those: one conditional PutItem). False when not written."""
        condition = "attribute_exists(#image)"
        values: dict[str, Any] = {}
        names = ["#image"]
        if expect_status is not None:
            statuses = list(expect_status)
            if not statuses:
                return False
            placeholders = [f":s{i}" for i in range(len(statuses))]
            condition += f" AND #status IN ({', '.join(placeholders)})"
            values = {p: {"S": s} for p, s in zip(placeholders, statuses)}
            names.append("#status")
        kwargs: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        with transient_errors("put record"):
            try:
                self.db.put_item(
                    TableName=self.table,
                    Item=self._item(record),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(*names),
                    **kwargs,
                )
            except ClientError as exc:
                if error_code(exc) == CONDITION_FAILED:
                    return False
                raise
        return True

    def claim(self, user_id: str, image_id: str, *, now: str, lease_until: str) -> ImageRecord | None:
        """pending, or processing with a lease before ``now`` -> processing with this lease,
        attempts + 1: one conditional UpdateItem, so two processors can never both win.

        Returns the claimed record; None when it is held, terminal or gone.
        """
        with transient_errors("claim record"):
            try:
                response = self.db.update_item(
                    TableName=self.table,
                    Key=_key(user_id, image_id),
                    UpdateExpression="SET #status = :processing, #lease = :lease,"
                                     " #attempts = if_not_exists(#attempts, :zero) + :one",
                    ConditionExpression="attribute_exists(#image) AND (#status = :pending OR (#status = :processing"
                                        " AND (attribute_not_exists(#lease) OR #lease < :now)))",
                    ExpressionAttributeNames=_names("#status", "#lease", "#attempts", "#image"),
                    ExpressionAttributeValues={
                        ":processing": {"S": PROCESSING}, ":pending": {"S": PENDING}, ":lease": {"S": lease_until},
                        ":now": {"S": now}, ":zero": {"N": "0"}, ":one": {"N": "1"},
                    },
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if error_code(exc) == CONDITION_FAILED:
                    return None
                raise
        return _record(response["Attributes"])

    def list(self, query: ListQuery) -> Page:
        """One page of the owner's records, newest first.

        The created_at range becomes a sort-key condition; status, tag and the exact
        created_at bounds are FilterExpressions (DynamoDB reads, then discards, what they
        drop). Reads go on until the page has one record more than asked (so ``next_cursor``
        is None exactly on the last page). The cursor is the key of the page's last record,
        the next query's ExclusiveStartKey; one naming another owner is refused.
        Raises BadRequest (``invalid_cursor``).
        """
        start = self._start_key(query)
        key_condition, values = "#user = :user", {":user": {"S": query.user_id}}
        names = ["#user"]
        low, high = _id_range(query.since, query.until)
        if low and high:
            key_condition += " AND #image BETWEEN :low AND :high"
        elif low:
            key_condition += " AND #image >= :low"
        elif high:
            key_condition += " AND #image <= :high"
        if low or high:
            names.append("#image")
            values.update({k: {"S": v} for k, v in ((":low", low), (":high", high)) if v})
        filters = []
        if query.since:
            filters.append("#created >= :since")
            values[":since"] = {"S": query.since}
        if query.until:
            filters.append("#created <= :until")
            values[":until"] = {"S": query.until}
        if query.since or query.until:
            names.append("#created")
        if query.status:
            filters.append("#status = :status")
            values[":status"] = {"S": query.status}
            names.append("#status")
        if query.tag:
            filters.append("contains(#tags, :tag)")
            values[":tag"] = {"S": query.tag}
            names.append("#tags")
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeNames": _names(*names),
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": query.limit + 1 if not filters else max(query.limit + 1, FILTERED_READ_BUDGET),
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if start:
            request["ExclusiveStartKey"] = start
        items = list(islice(self._pages("query", request), query.limit + 1))
        records = [_record(item) for item in items[: query.limit]]
        more = len(items) > query.limit
        cursor = encode_cursor({"user_id": query.user_id, "image_id": records[-1].image_id}) if more else None
        return Page(images=records, next_cursor=cursor)

    def _start_key(self, query: ListQuery) -> dict[str, Any] | None:
        position = decode_cursor(query.cursor)
        if position is None:
            return None
        if (
            not isinstance(position, dict)
            or set(position) != {"user_id", "image_id"}
            or position["user_id"] != query.user_id
            or not ids.is_id(position["image_id"])
        ):
            raise BadRequest("The cursor is not one this service issued.", code="invalid_cursor")
        return _key(query.user_id, position["image_id"])

    def delete(self, user_id: str, image_id: str) -> None:
        """Remove the record; a missing one is not an error."""
        with transient_errors("delete record"):
            self.db.delete_item(TableName=self.table, Key=_key(user_id, image_id))

    def usage(self, user_id: str) -> Usage:
        """Count and total size of every record the owner holds, from a query that projects
        ``size`` only (exact and never drifting; its cost grows with the owner's images,
        which the quota bounds)."""
        request = {
            "TableName": self.table,
            "KeyConditionExpression": "#user = :user",
            "ProjectionExpression": "#size",
            "ExpressionAttributeNames": _names("#user", "#size"),
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "ConsistentRead": True,
        }
        images = total = 0
        for item in self._pages("query", request):
            images += 1
            total += int(item.get("size", {}).get("N", "0"))
        return Usage(images=images, bytes=total)

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """Records whose ``expires_at`` is before ``now``: a filtered Scan, for the ``sweep``
        command. In AWS, DynamoDB TTL (``ttl``) and the bucket's lifecycle rule do this job."""
        return self._scan("attribute_exists(#expires) AND #expires < :now", ["#expires"], now, limit)

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """``pending`` records whose upload URL lapsed before ``now``: a filtered Scan, for the
        ``sweep`` command. In AWS their ``ttl`` lets DynamoDB remove them a day later."""
        return self._scan(
            "#status = :pending AND #upload_expires < :now", ["#status", "#upload_expires"], now, limit,
            {":pending": {"S": PENDING}},
        )

    def _scan(self, condition: str, names: list[str], now: str, limit: int,
              values: dict[str, Any] | None = None) -> list[ImageRecord]:
        request = {
            "TableName": self.table,
            "FilterExpression": condition,
            "ExpressionAttributeNames": _names(*names),
            "ExpressionAttributeValues": {":now": {"S": now}, **(values or {})},
            "ConsistentRead": True,
        }
        return [_record(item) for item in islice(self._pages("scan", request), limit)]

    def _pages(self, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a query or scan, page after page (each page one request)."""
        request = dict(request)
        call = getattr(self.db, operation)
        while True:
            with transient_errors(f"{operation} records"):
                response = call(**request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- tokens -------------------------------------------------------------------------------

    def save_token(self, token_hash: str, token: Token) -> None:
        """Store an API token under the hash of its secret (overwrites; idempotent)."""
        with transient_errors("save token"):
            self.db.put_item(
                TableName=self.table,
                Item={
                    **_key(TOKEN_PREFIX + token_hash, TOKEN_SORT_KEY),
                    "token_user_id": {"S": token.user_id},
                    "admin": {"BOOL": bool(token.admin)},
                },
            )

    def find_token(self, token_hash: str) -> Token | None:
        """The token stored under this hash, or None."""
        with transient_errors("find token"):
            item = self.db.get_item(
                TableName=self.table, Key=_key(TOKEN_PREFIX + token_hash, TOKEN_SORT_KEY), ConsistentRead=True
            ).get("Item")
        if not item:
            return None
        return Token(user_id=item["token_user_id"]["S"], admin=item.get("admin", {}).get("BOOL", False))

    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        """Fixed-window counter: one conditional ADD on an item per window (removed by TTL after
        it); None when ``cost`` fit within ``limit`` (and was counted), else the seconds until
        the window ends. Raises TransientError on throttling or network failures."""
        now = time.time()
        start = int(now // window_seconds) * window_seconds
        wait = max(1, math.ceil(start + window_seconds - now))
        if cost > limit:
            return wait
        with transient_errors("count rate"):
            try:
                self.db.update_item(
                    TableName=self.table,
                    Key=_key(f"{RATE_PREFIX}{user_id_or_bucket}", f"{name}#{start}"),
                    UpdateExpression="ADD #count :cost SET #ttl = :ttl",
                    ConditionExpression="attribute_not_exists(#count) OR #count <= :most",
                    ExpressionAttributeNames={"#count": "count", "#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":cost": {"N": str(cost)}, ":most": {"N": str(limit - cost)},
                        ":ttl": {"N": str(start + window_seconds + 60)},
                    },
                )
            except ClientError as exc:
                if error_code(exc) == CONDITION_FAILED:
                    return wait
                raise
        return None

    def ping(self) -> None:
        """Raise when the table cannot be read (one GetItem, so no extra IAM permission)."""
        self.db.get_item(TableName=self.table, Key=PING_KEY)

    # -- items --------------------------------------------------------------------------------

    def _item(self, record: ImageRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_key(record.user_id, record.image_id),
            "status": {"S": record.status},
            "attempts": {"N": str(record.attempts)},
            "tags": {"L": [{"S": tag} for tag in record.tags]},
            "size": {"N": str(record.size or 0)},
            "body": {"S": json.dumps(record.to_dict(), separators=(",", ":"))},
        }
        for name in ("created_at", "expires_at", "upload_expires_at", "lease_until"):
            value = getattr(record, name)
            if value:
                item[name] = {"S": value}
        ttl = self._ttl(record)
        if ttl is not None:
            item["ttl"] = {"N": str(ttl)}
        return item

    def _ttl(self, record: ImageRecord) -> int | None:
        """When DynamoDB may drop the record: a session workspace's end, or a day after a
        pending upload's URL lapsed. Persistent records that left pending never expire."""
        if record.expires_at:
            return iso_to_epoch(record.expires_at)
        if record.status == PENDING and record.upload_expires_at:
            return iso_to_epoch(record.upload_expires_at) + self.abandoned_ttl
        return None


RATE_PREFIX = "rate#"  # counter items' partition keys: never a user id (those have no '#')


def _key(user_id: str, image_id: str) -> dict[str, Any]:
    return {"user_id": {"S": user_id}, "image_id": {"S": image_id}}


def _names(*aliases: str) -> dict[str, str]:
    return {alias: NAMES[alias] for alias in dict.fromkeys(aliases)}


def _record(item: dict[str, Any]) -> ImageRecord:
    data = json.loads(item["body"]["S"])
    data["status"] = item["status"]["S"]
    data["lease_until"] = item["lease_until"]["S"] if "lease_until" in item else None
    data["attempts"] = int(item["attempts"]["N"]) if "attempts" in item else 0
    return ImageRecord.from_dict(data)


def _id_range(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    low = ids.id_floor(max(0, _ms(since) - KEY_RANGE_SLACK_MS)) if since else None
    high = ids.id_ceiling(_ms(until) + KEY_RANGE_SLACK_MS) if until else None
    return low, high


def _ms(moment: str) -> int:
    return int(from_iso(moment).timestamp() * 1000)
