"""DynamoDB Catalog: one table, partition key ``user_id``, sort key ``image_id``.

Item layout (docs/AWS.md explains the choices):

- ``body``: the whole ImageRecord as JSON (EXIF values of any shape, floats, nulls, without
  DynamoDB's number and empty-set rules getting in the way);
- top-level copies of what the table itself must see: ``status``, ``lease_until`` and
  ``attempts`` (conditions; ``claim`` updates only these three, so on reading they win over
  the body), ``created_at``, ``tags`` and ``size`` (filters and usage), ``expires_at`` and
  ``upload_expires_at`` (housekeeping scans) and ``ttl`` (epoch seconds, DynamoDB TTL) on
  session-workspace records and on pending uploads;
- ``extra_bytes`` (conversion outputs, add_bytes only) lives top-level and wins over the body;
  ``put`` never writes it, so a stale copy cannot undo a conversion's count;
- tokens are items of their own: ``user_id = "token#<sha256>"``, ``image_id = "token"``
  (user ids cannot contain ``#``, so they never meet an owner's partition); so are the
  owner's usage counters (``usage#<user>`` / ``usage``: ``images``, ``bytes``), fixed-window
  rate counters (``rate#<bucket>#<name>`` / ``<window start>``, with ``ttl``) and idempotency
  keys (``idem#<user>`` / ``<key>``, with ``ttl``).

Every write that must count or must not clobber is conditional, through one helper
(``_write``) whose conditions are built with boto3's condition builders. A record and its
owner's counters change together in one TransactWriteItems, so quotas hold under any
concurrency and cost one item, not a query of the owner's partition.

Image ids are time-sortable (ULIDs): newest first is a reverse query on the sort key, and a
created_at range narrows the query itself through ids.id_floor / ids.id_ceiling.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from boto3.dynamodb.conditions import Attr, ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from ...core import ids
from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import Conflict, TransientError
from ...core.records import (
    CREATE_RATE,
    CREATE_WINDOW_SECONDS,
    IN_FLIGHT,
    PENDING,
    PROCESSING,
    ApiPage,
    IdempotencyEntry,
    ImageRecord,
    ListQuery,
    OwnerLimits,
    Page,
    Token,
    Usage,
    fixed_window,
)
from ...core.timeutil import epoch_to_iso, iso_to_epoch
from .errors import error_code, transient_errors

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELLED = "TransactionCanceledException"
TOKEN_PREFIX = "token#"
TOKEN_SORT_KEY = "token"
USAGE_PREFIX, USAGE_SORT_KEY = "usage#", "usage"
RATE_PREFIX = "rate#"
IDEMPOTENCY_PREFIX = "idem#"
PING_KEY = {"user_id": {"S": "#ping"}, "image_id": {"S": "#ping"}}
FILTERED_READ_BUDGET = 200  # items read per request when filters may discard most of them
# Counter items of a session owner outlive its last record by this much, then TTL drops them.
COUNTER_TTL_SLACK = 24 * 3600
# How often a counted write is tried again when it lost a race it can win on a retry (the
# record changed between read and write, or the owner's usage item was just made).
WRITE_ATTEMPTS = 5
# Attribute names, all aliased: status, size and ttl are DynamoDB reserved words.
NAMES = {
    "#user": "user_id", "#image": "image_id", "#status": "status", "#lease": "lease_until",
    "#attempts": "attempts", "#created": "created_at", "#tags": "tags", "#size": "size",
    "#expires": "expires_at", "#upload_expires": "upload_expires_at", "#ttl": "ttl",
    "#images": "images", "#bytes": "bytes", "#extra": "extra_bytes", "#count": "count",
    "#state": "state", "#response": "response", "#result": "result_image_id",
}
# Attributes a record item may lack; put() removes them when the record has none.
OPTIONAL_ATTRIBUTES = ("created_at", "expires_at", "upload_expires_at", "lease_until", "ttl")
_SERIALIZER = TypeSerializer()


@dataclass(frozen=True)
class Refused:
    """A conditional write that did not happen: which of its items' conditions failed (one
    flag for a single write, one per item for a transaction)."""

    failed: tuple[bool, ...]


class DynamoCatalog:
    def __init__(self, dynamodb_client, table: str, *, abandoned_ttl: int = 24 * 3600,
                 clock: Callable[[], float] = time.time):
        """``abandoned_ttl``: seconds after its upload URL lapsed that DynamoDB TTL removes a
        record still pending (a persistent owner's upload that never came). ``clock``: epoch
        seconds, for rate windows and idempotency expiry."""
        self.db = dynamodb_client
        self.table = table
        self.abandoned_ttl = abandoned_ttl
        self.clock = clock

    # -- the one conditional write --------------------------------------------------------------

    def _write(self, operation: str, what: str, **request: Any) -> dict[str, Any] | Refused:
        """Run one write (put_item, update_item, delete_item, transact_write_items) and tell a
        failed condition apart: the response, or Refused naming the items whose condition
        failed. Raises TransientError on throttling, network failures and transaction
        conflicts (another transaction touched the same items: worth a retry)."""
        with transient_errors(what):
            try:
                return getattr(self.db, operation)(**request)
            except ClientError as exc:
                code = error_code(exc)
                if code == CONDITION_FAILED:
                    return Refused((True,))
                if code == TRANSACTION_CANCELLED:
                    codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                    if "ConditionalCheckFailed" in codes:
                        return Refused(tuple(c == "ConditionalCheckFailed" for c in codes))
                    raise TransientError(f"{what}: {exc}") from exc
                raise

    # -- images -------------------------------------------------------------------------------

    def create(self, record: ImageRecord, *, limits: OwnerLimits | None = None) -> None:
        """Insert a new record and count it, in one TransactWriteItems: the record (if its id
        is new), the owner's usage item (+1 image, +size; with ``limits``, only while there is
        room) and the owner's creation window (with ``limits``, only below ``per_minute``).

        Raises Conflict (``exists`` / ``quota_exceeded``), TooManyRequests (``rate_limited``),
        TransientError.
        """
        size = record.size or 0
        start, left = fixed_window(self.clock(), CREATE_WINDOW_SECONDS)
        if limits is not None:
            limits.check_room(Usage(0, 0), 1, size)  # a single record larger than the quota
        usage_condition = Attr("images").exists()
        rate_condition: ConditionBase | None = None
        if limits is not None:
            usage_condition &= Attr("images").lte(limits.images - 1) & Attr("bytes").lte(limits.bytes - size)
            rate_condition = Attr("count").not_exists() | Attr("count").lt(limits.per_minute)
        item = self._item(record)
        item["extra_bytes"] = {"N": str(record.extra_bytes)}
        for _ in range(WRITE_ATTEMPTS):
            result = self._write(
                "transact_write_items", "create record",
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": item,
                             **_condition(Attr("image_id").not_exists())}},
                    {"Update": self._usage_update(record.user_id, 1, size + record.extra_bytes, usage_condition,
                                                  expires_at=record.expires_at)},
                    {"Update": self._rate_update(record.user_id, CREATE_RATE, start, CREATE_WINDOW_SECONDS,
                                                 rate_condition)},
                ],
            )
            if not isinstance(result, Refused):
                return
            if result.failed[0]:
                raise Conflict(f"image {record.image_id} exists", code="exists")
            if result.failed[2] and limits is not None:
                raise limits.rate_limited(left)
            used = self._usage_item(record.user_id)
            if used is None:
                self._backfill_usage(record.user_id)
            elif limits is not None:
                limits.check_room(used, 1, size)  # raises; else the room came back meanwhile
        raise TransientError("create record: the owner's usage kept changing")

    def get(self, user_id: str, image_id: str) -> ImageRecord | None:
        """The owner's record (strongly consistent read), or None (also for another owner's id)."""
        with transient_errors("get record"):
            item = self.db.get_item(TableName=self.table, Key=_key(user_id, image_id), ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def put(self, record: ImageRecord, *, expect_status: Iterable[str] | None = None) -> bool:
        """Replace the record, only if it still exists (and, with ``expect_status``, only if its
        stored status is one of those): one conditional UpdateItem setting every attribute but
        ``extra_bytes``. False when not written. A change of ``size`` then moves the owner's
        byte usage by the difference (an ADD, so concurrent puts sum up exactly)."""
        condition = Attr("image_id").exists()
        if expect_status is not None:
            statuses = list(expect_status)
            if not statuses:
                return False
            condition &= Attr("status").is_in(statuses)
        item = self._item(record)
        for name in ("user_id", "image_id"):
            del item[name]
        values = {f":{name}": value for name, value in item.items()}
        update = "SET " + ", ".join(f"#{name} = :{name}" for name in item)
        removed = [name for name in OPTIONAL_ATTRIBUTES if name not in item]
        if removed:
            update += " REMOVE " + ", ".join(f"#{name}" for name in removed)
        result = self._write(
            "update_item", "put record",
            Key=_key(record.user_id, record.image_id), TableName=self.table, UpdateExpression=update,
            ReturnValues="ALL_OLD",  # UPDATED_OLD omits an unchanged size on some emulators
            **_condition(condition, names={f"#{n}": n for n in [*item, *removed]}, values=values),
        )
        if isinstance(result, Refused):
            return False
        old_size = int(result.get("Attributes", {}).get("size", {}).get("N", "0"))
        delta = (record.size or 0) - old_size
        if delta:
            # Absent usage (an owner from before counters) is left to the backfill, which counts sizes.
            self._write("update_item", "count bytes",
                        **self._usage_update(record.user_id, 0, delta, Attr("images").exists()))
        return True

    def claim(self, user_id: str, image_id: str, *, now: str, lease_until: str) -> ImageRecord | None:
        """pending, or processing with a lease before ``now`` -> processing with this lease,
        attempts + 1: one conditional UpdateItem, so two processors can never both win.

        Returns the claimed record; None when it is held, terminal or gone.
        """
        lapsed = Attr("status").eq(PROCESSING) & (Attr("lease_until").not_exists() | Attr("lease_until").lt(now))
        result = self._write(
            "update_item", "claim record",
            TableName=self.table,
            Key=_key(user_id, image_id),
            UpdateExpression="SET #status = :processing, #lease = :lease,"
                             " #attempts = if_not_exists(#attempts, :zero) + :one",
            ReturnValues="ALL_NEW",
            **_condition(
                Attr("image_id").exists() & (Attr("status").eq(PENDING) | lapsed),
                names=_names("#status", "#lease", "#attempts"),
                values={":processing": {"S": PROCESSING}, ":lease": {"S": lease_until},
                        ":zero": {"N": "0"}, ":one": {"N": "1"}},
            ),
        )
        return None if isinstance(result, Refused) else _record(result["Attributes"])

    def list(self, query: ListQuery) -> Page:
        """One page of the owner's records, newest first.

        The created_at range and the cursor become a sort-key condition (ids are
        time-sortable); status, tag and the exact created_at bounds are FilterExpressions
        (DynamoDB reads, then discards, what they drop). Reads go on until the page has one
        record more than asked (so ``next_cursor`` is None exactly on the last page).
        Raises BadRequest (``invalid_cursor``).
        """
        after = decode_cursor(query.cursor, query.user_id)
        key_condition, values = "#user = :user", {":user": {"S": query.user_id}}
        names = ["#user"]
        low, high = ids.id_range(query.since, query.until)
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
            # Time bounds drop only the key range's slack; tag and status may drop most items.
            "Limit": max(query.limit + 1, FILTERED_READ_BUDGET) if query.tag or query.status else query.limit + 1,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if after:
            request["ExclusiveStartKey"] = _key(query.user_id, after)
        items = list(islice(self._pages("query", request), query.limit + 1))
        records = [_record(item) for item in items[: query.limit]]
        more = len(items) > query.limit
        return Page(images=records, next_cursor=encode_cursor(query.user_id, records[-1].image_id) if more else None)

    def delete(self, user_id: str, image_id: str) -> None:
        """Remove the record and release its ``size + extra_bytes`` and image from the owner's
        usage in one transaction (conditional on the sizes just read, so a concurrent
        add_bytes is never lost). A missing record is not an error."""
        for _ in range(WRITE_ATTEMPTS):
            with transient_errors("read record"):
                item = self.db.get_item(
                    TableName=self.table, Key=_key(user_id, image_id), ConsistentRead=True,
                    ProjectionExpression="#size, #extra", ExpressionAttributeNames=_names("#size", "#extra"),
                ).get("Item")
            if item is None:
                return
            size = int(item.get("size", {}).get("N", "0"))
            extra = int(item.get("extra_bytes", {}).get("N", "0"))
            unchanged = Attr("size").eq(size) & (Attr("extra_bytes").eq(extra) if "extra_bytes" in item
                                                 else Attr("extra_bytes").not_exists())
            result = self._write(
                "transact_write_items", "delete record",
                TransactItems=[
                    {"Delete": {"TableName": self.table, "Key": _key(user_id, image_id), **_condition(unchanged)}},
                    {"Update": self._usage_update(user_id, -1, -(size + extra), Attr("images").exists())},
                ],
            )
            if not isinstance(result, Refused):
                return
            if result.failed[1]:
                self._backfill_usage(user_id)
        raise TransientError("delete record: the record kept changing")

    def usage(self, user_id: str) -> Usage:
        """The owner's counters: one GetItem (the first time for an owner from before the
        counters, one query of its records to make them)."""
        return self._usage_item(user_id) or self._backfill_usage(user_id)

    def add_bytes(self, user_id: str, image_id: str, delta: int, *, limit: int | None) -> bool:
        """Count ``delta`` bytes on the image and in the owner's usage, in one transaction;
        False (nothing counted) past ``limit`` or when the image is gone."""
        room = Attr("images").exists()
        if limit is not None and delta > 0:
            room &= Attr("bytes").lte(limit - delta)
        for _ in range(WRITE_ATTEMPTS):
            result = self._write(
                "transact_write_items", "count conversion bytes",
                TransactItems=[
                    {"Update": {"TableName": self.table, "Key": _key(user_id, image_id),
                                "UpdateExpression": "ADD #extra :delta",
                                **_condition(Attr("image_id").exists(), names=_names("#extra"),
                                             values={":delta": {"N": str(delta)}})}},
                    {"Update": self._usage_update(user_id, 0, delta, room)},
                ],
            )
            if not isinstance(result, Refused):
                return True
            if result.failed[0] or self._usage_item(user_id) is not None:
                return False
            self._backfill_usage(user_id)
        return False

    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        """A fixed-window counter: one conditional ADD of ``cost`` on the window's own item (TTL
        removes old windows). None when the count stays within ``limit`` (and is counted), else
        the seconds until the window ends (nothing counted)."""
        start, left = fixed_window(self.clock(), window_seconds)
        if cost > limit:
            return left
        result = self._write(
            "update_item", "count rate",
            **self._rate_update(user_id_or_bucket, name, start, window_seconds,
                                Attr("count").not_exists() | Attr("count").lte(limit - cost), cost),
        )
        return left if isinstance(result, Refused) else None

    def _usage_update(self, user_id: str, images: int, size: int, condition: ConditionBase,
                      expires_at: str | None = None) -> dict[str, Any]:
        """An Update of the owner's usage item (for update_item or a transaction); a session
        owner's item gets a ttl a day past its workspace's end."""
        update, values = "ADD #images :images, #bytes :bytes", {":images": {"N": str(images)}, ":bytes": {"N": str(size)}}
        names = ["#images", "#bytes"]
        if expires_at:
            update += " SET #ttl = :ttl"
            values[":ttl"] = {"N": str(iso_to_epoch(expires_at) + COUNTER_TTL_SLACK)}
            names.append("#ttl")
        return {"TableName": self.table, "Key": _key(USAGE_PREFIX + user_id, USAGE_SORT_KEY), "UpdateExpression": update,
                **_condition(condition, names=_names(*names), values=values)}

    def _rate_update(self, bucket: str, name: str, start: int, window: int,
                     condition: ConditionBase | None, cost: int = 1) -> dict[str, Any]:
        """An Update adding ``cost`` to the counter item of ``bucket``'s window starting at ``start``."""
        request = {
            "TableName": self.table, "Key": _key(f"{RATE_PREFIX}{bucket}#{name}", str(start)),
            "UpdateExpression": "ADD #count :cost SET #ttl = :ttl",
        }
        names, values = _names("#count", "#ttl"), {":cost": {"N": str(cost)}, ":ttl": {"N": str(start + window + 3600)}}
        if condition is None:
            return {**request, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        return {**request, **_condition(condition, names=names, values=values)}

    def _usage_item(self, user_id: str) -> Usage | None:
        with transient_errors("read usage"):
            item = self.db.get_item(
                TableName=self.table, Key=_key(USAGE_PREFIX + user_id, USAGE_SORT_KEY), ConsistentRead=True
            ).get("Item")
        if item is None or "images" not in item:
            return None
        return Usage(images=int(item["images"]["N"]), bytes=int(item.get("bytes", {"N": "0"})["N"]))

    def _backfill_usage(self, user_id: str) -> Usage:
        """Make the usage item of an owner who has none (new, or from before the counters)
        from a count of its records. Counted writes require the item, so none slips past
        the count; when another process made it first, theirs stands."""
        request = {
            "TableName": self.table,
            "KeyConditionExpression": "#user = :user",
            "ProjectionExpression": "#size, #extra",
            "ExpressionAttributeNames": _names("#user", "#size", "#extra"),
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "ConsistentRead": True,
        }
        images = total = 0
        for item in self._pages("query", request):
            images += 1
            total += int(item.get("size", {}).get("N", "0")) + int(item.get("extra_bytes", {}).get("N", "0"))
        counted = Usage(images=images, bytes=total)
        result = self._write(
            "put_item", "make usage",
            TableName=self.table,
            Item={**_key(USAGE_PREFIX + user_id, USAGE_SORT_KEY), "images": {"N": str(images)}, "bytes": {"N": str(total)}},
            **_condition(Attr("images").not_exists()),
        )
        return self._usage_item(user_id) or counted if isinstance(result, Refused) else counted

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """Records whose ``expires_at`` is before ``now``: a filtered Scan, for the ``sweep``
        command. In AWS, DynamoDB TTL (``ttl``) and the bucket's lifecycle rule do this job."""
        return self._scan("attribute_exists(#expires) AND #expires < :now AND attribute_exists(#status)",
                          ["#expires", "#status"], now, limit)

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

    # -- idempotency keys ---------------------------------------------------------------------

    def idempotency_begin(self, user_id: str, key: str, fingerprint: str, expires_at: str) -> IdempotencyEntry | None:
        """A conditional PutItem of an in-flight entry (when there is none, or only an expired
        one: TTL deletes lazily). None: the caller owns the key; else the live entry."""
        now = epoch_to_iso(self.clock())
        item = {
            **_key(IDEMPOTENCY_PREFIX + user_id, key), "fingerprint": {"S": fingerprint}, "state": {"S": IN_FLIGHT},
            "expires_at": {"S": expires_at}, "ttl": {"N": str(iso_to_epoch(expires_at))},
        }
        for _ in range(WRITE_ATTEMPTS):
            result = self._write("put_item", "take idempotency key", TableName=self.table, Item=item,
                                 **_condition(Attr("image_id").not_exists() | Attr("expires_at").lte(now)))
            if not isinstance(result, Refused):
                return None
            with transient_errors("read idempotency key"):
                held = self.db.get_item(
                    TableName=self.table, Key=_key(IDEMPOTENCY_PREFIX + user_id, key), ConsistentRead=True
                ).get("Item")
            if held is not None:
                return IdempotencyEntry(
                    fingerprint=held["fingerprint"]["S"], state=held["state"]["S"],
                    response=json.loads(held["response"]["S"]) if "response" in held else None,
                    image_id=held["result_image_id"]["S"] if "result_image_id" in held else None,
                )
        raise TransientError("take idempotency key: the key kept changing")

    def idempotency_finish(self, user_id: str, key: str, image_id: str, response: dict[str, Any]) -> None:
        """Store the answer of the request that owns ``key`` (only on an entry that exists)."""
        self._write(
            "update_item", "finish idempotency key",
            TableName=self.table, Key=_key(IDEMPOTENCY_PREFIX + user_id, key),
            UpdateExpression="SET #state = :done, #response = :response, #result = :image",
            **_condition(Attr("image_id").exists(), names=_names("#state", "#response", "#result"), values={
                ":done": {"S": "done"}, ":response": {"S": json.dumps(response, separators=(",", ":"))},
                ":image": {"S": image_id},
            }),
        )

    def idempotency_abandon(self, user_id: str, key: str) -> None:
        """Free an in-flight key whose owner failed (a finished one stays)."""
        self._write("delete_item", "free idempotency key", TableName=self.table,
                    Key=_key(IDEMPOTENCY_PREFIX + user_id, key), **_condition(Attr("state").eq(IN_FLIGHT)))

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

    def ping(self) -> None:
        """Raise when the table cannot be read (one GetItem, so no extra IAM permission)."""
        self.db.get_item(TableName=self.table, Key=PING_KEY)

    def list_api(self, query: ListQuery) -> ApiPage:
        """``list``'s page rendered for the API (the items keep no API text of their own)."""
        return ApiPage.of(self.list(query))

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


def _condition(condition: ConditionBase, names: dict[str, str] | None = None,
               values: dict[str, Any] | None = None) -> dict[str, Any]:
    """ConditionExpression and its placeholders for a low-level client call, built with boto3's
    condition builder and merged with the update's own ``names``/``values`` (aliases like
    ``#status`` never meet the builder's ``#n0``)."""
    built = ConditionExpressionBuilder().build_expression(condition)
    request: dict[str, Any] = {
        "ConditionExpression": built.condition_expression,
        "ExpressionAttributeNames": {**(names or {}), **built.attribute_name_placeholders},
    }
    merged = {**(values or {}), **{k: _SERIALIZER.serialize(v) for k, v in built.attribute_value_placeholders.items()}}
    if merged:
        request["ExpressionAttributeValues"] = merged
    return request


def _key(user_id: str, image_id: str) -> dict[str, Any]:
    return {"user_id": {"S": user_id}, "image_id": {"S": image_id}}


def _names(*aliases: str) -> dict[str, str]:
    return {alias: NAMES[alias] for alias in dict.fromkeys(aliases)}


def _record(item: dict[str, Any]) -> ImageRecord:
    data = json.loads(item["body"]["S"])
    data["status"] = item["status"]["S"]
    data["lease_until"] = item["lease_until"]["S"] if "lease_until" in item else None
    data["attempts"] = int(item["attempts"]["N"]) if "attempts" in item else 0
    data["extra_bytes"] = int(item["extra_bytes"]["N"]) if "extra_bytes" in item else 0
    return ImageRecord.from_dict(data)
