"""DynamoDB Catalog: one table, partition key ``user_id``, sort key ``image_id``.

Item layout (docs/AWS.md explains the choices):

- ``body``: the whole ImageRecord as JSON (EXIF values of any shape, floats, nulls, without
  DynamoDB's number and empty-set rules getting in the way);
- top-level copies of what the table itself must see: ``status``, ``lease_until`` and
  ``attempts`` (conditions; ``claim`` updates only these three, so on reading they win over
  the body), ``created_at`` (the exact time filter), ``tags`` (conditions: the record's tag
  items are those of its stored tags) and ``size`` (usage), ``expires_at`` and
  ``upload_expires_at`` (housekeeping scans) and ``ttl`` (epoch seconds, DynamoDB TTL) on
  session-workspace records and on pending uploads;
- ``owner_status`` = ``<user_id>#<status>``: the partition key of the ``by_owner_status``
  index (sort key ``image_id``, every attribute projected), set by every write that sets
  ``status``, so a status listing is a key range of that index;
- a record's tags are items of their own, ``user_id = "tag#<owner>#<tag>"``, ``image_id`` the
  record's (a GSI cannot index the elements of a list), carrying the record's ``ttl``; they
  are written and removed in the same TransactWriteItems as the record, so a tag listing is
  a key range of that partition followed by a BatchGetItem of the records;
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
created_at range and a cursor narrow the query itself through ids.id_range / ids.id_before.
Every list shape (first page, cursor, since/until, status, tag) reads about a page of items.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import reduce
from itertools import islice
from operator import and_
from typing import Any, Callable, Iterable, Iterator

from boto3.dynamodb.conditions import Attr, ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ...core import ids
from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import BadRequest, Conflict, TransientError
from ...core.records import (
    CREATE_RATE,
    CREATE_WINDOW_SECONDS,
    IN_FLIGHT,
    PENDING,
    PROCESSING,
    TAG_LIMIT,
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
TAG_PREFIX = "tag#"
PING_KEY = {"user_id": {"S": "#ping"}, "image_id": {"S": "#ping"}}
# The table's one global secondary index (infrastructure/data.yaml declares the same; setup.py
# makes it): a status listing is a key range of it.
STATUS_INDEX = "by_owner_status"
STATUS_INDEX_KEYS = (("owner_status", "HASH"), ("image_id", "RANGE"))
# Tag items read per request when the page's records are filtered further (by status) after
# they are read, so that a rare combination is not found one small read at a time.
FILTERED_READ_BUDGET = 200
BATCH_GET_MAX = 100  # keys in one BatchGetItem request (DynamoDB's limit)
# How often keys DynamoDB left unprocessed (throttling) are asked for again, the first pause
# (doubling after) and how many records the backfill checks at a time.
BATCH_GET_ATTEMPTS = 5
BATCH_GET_PAUSE = 0.05
BACKFILL_CHUNK = 100
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
    "#owner_status": "owner_status",
}
# Attributes a record item may lack; put() removes them when the record has none.
OPTIONAL_ATTRIBUTES = ("created_at", "expires_at", "upload_expires_at", "lease_until", "ttl")
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


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
        is new), its tag items, the owner's usage item (+1 image, +size; with ``limits``, only
        while there is room) and the owner's creation window (with ``limits``, only below
        ``per_minute``). At most 3 + TAG_LIMIT items, well within a transaction's 100.

        Raises Conflict (``exists`` / ``quota_exceeded``), TooManyRequests (``rate_limited``),
        BadRequest (more than TAG_LIMIT tags), TransientError.
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
        ttl = self._ttl(record)
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
                    *({"Put": self._tag_item(record.user_id, record.image_id, tag, ttl)} for tag in _tags(record)),
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
        stored status is one of those), setting every attribute but ``extra_bytes``. False when
        not written. A change of ``size`` then moves the owner's byte usage by the difference
        (an ADD, so concurrent puts sum up exactly).

        Most puts change neither the tags nor the ttl (which the tag items carry): one
        conditional UpdateItem that holds only while the stored ones are the same. Otherwise
        the stored record is read and one TransactWriteItems writes it with the tag items it
        gains (all of them when the ttl changed) and removes those it loses, conditional on
        what was read (read again when it changed meanwhile): at most 1 + 2 x TAG_LIMIT items.
        Raises BadRequest (more than TAG_LIMIT tags), TransientError.
        """
        condition = Attr("image_id").exists()
        statuses = None
        if expect_status is not None:
            statuses = list(expect_status)
            if not statuses:
                return False
            condition &= Attr("status").is_in(statuses)
        item, tags, ttl = self._item(record), _tags(record), self._ttl(record)
        result = self._write(
            "update_item", "put record",
            ReturnValues="ALL_OLD",  # UPDATED_OLD omits an unchanged size on some emulators
            **self._record_update(item, condition & _tag_items_made_by(record.tags, ttl)),
        )
        if not isinstance(result, Refused):
            self._count_size_change(record, result.get("Attributes", {}))
            return True
        for _ in range(WRITE_ATTEMPTS):
            stored = self._stored(record.user_id, record.image_id, "#status", "#tags", "#ttl", "#size")
            if stored is None or (statuses is not None and stored["status"]["S"] not in statuses):
                return False
            old_tags, old_ttl = _stored_tags(stored), _stored_ttl(stored)
            result = self._write(
                "transact_write_items", "put record and its tag items",
                TransactItems=[
                    {"Update": self._record_update(item, condition & _as_stored(stored, "tags", "ttl", "size"))},
                    *({"Put": self._tag_item(record.user_id, record.image_id, tag, ttl)}
                      for tag in tags if tag not in old_tags or ttl != old_ttl),
                    *({"Delete": self._tag_key(record.user_id, record.image_id, tag)}
                      for tag in old_tags if tag not in tags),
                ],
            )
            if not isinstance(result, Refused):
                self._count_size_change(record, stored)
                return True
        raise TransientError("put record: the record kept changing")

    def _record_update(self, item: dict[str, Any], condition: ConditionBase) -> dict[str, Any]:
        """An Update (for update_item or a transaction) setting every attribute of ``item`` but
        its key, and removing the optional ones it lacks, under ``condition``."""
        attributes = {name: value for name, value in item.items() if name not in ("user_id", "image_id")}
        update = "SET " + ", ".join(f"#{name} = :{name}" for name in attributes)
        removed = [name for name in OPTIONAL_ATTRIBUTES if name not in attributes]
        if removed:
            update += " REMOVE " + ", ".join(f"#{name}" for name in removed)
        return {
            "TableName": self.table, "Key": {"user_id": item["user_id"], "image_id": item["image_id"]},
            "UpdateExpression": update,
            **_condition(condition, names={f"#{n}": n for n in [*attributes, *removed]},
                         values={f":{name}": value for name, value in attributes.items()}),
        }

    def _count_size_change(self, record: ImageRecord, stored: dict[str, Any]) -> None:
        """Move the owner's byte usage by the record's size minus the ``stored`` item's."""
        delta = (record.size or 0) - int(stored.get("size", {}).get("N", "0"))
        if delta:
            # Absent usage (an owner from before counters) is left to the backfill, which counts sizes.
            self._write("update_item", "count bytes",
                        **self._usage_update(record.user_id, 0, delta, Attr("images").exists()))

    def _stored(self, user_id: str, image_id: str, *aliases: str) -> dict[str, Any] | None:
        """The stored record's attributes named by ``aliases`` (strongly consistent), or None."""
        with transient_errors("read record"):
            return self.db.get_item(
                TableName=self.table, Key=_key(user_id, image_id), ConsistentRead=True,
                ProjectionExpression=", ".join(aliases), ExpressionAttributeNames=_names(*aliases),
            ).get("Item")

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
            UpdateExpression="SET #status = :processing, #owner_status = :owner_status, #lease = :lease,"
                             " #attempts = if_not_exists(#attempts, :zero) + :one",
            ReturnValues="ALL_NEW",
            **_condition(
                Attr("image_id").exists() & (Attr("status").eq(PENDING) | lapsed),
                names=_names("#status", "#owner_status", "#lease", "#attempts"),
                values={":processing": {"S": PROCESSING}, ":owner_status": {"S": _owner_status(user_id, PROCESSING)},
                        ":lease": {"S": lease_until}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
            ),
        )
        return None if isinstance(result, Refused) else _record(result["Attributes"])

    def list(self, query: ListQuery) -> Page:
        """One page of the owner's records, newest first. Every shape reads a key range of image
        ids (time-sortable: since/until and the cursor bound the range), so a page reads about
        a page of items however many records the owner has:

        - no tag, no status: the owner's partition, strongly consistent;
        - status: the ``by_owner_status`` index. Index reads are eventually consistent (DynamoDB
          offers nothing else on a GSI): for a moment after a status change a record may still
          be listed under its former status, as it was then;
        - tag (with a status or not): the tag items' partition, then BatchGetItem of their
          records (strongly consistent, in the tag items' order); a record without the tag (or
          gone) is skipped, a status is checked on the records read.

        The exact created_at bounds drop only the key range's minute of slack. Reads go on
        until the page has one record more than asked (so ``next_cursor`` is None exactly on
        the last page). Raises BadRequest (``invalid_cursor``), TransientError.
        """
        bounds = _id_bounds(query, decode_cursor(query.cursor, query.user_id))
        want = query.limit + 1
        if bounds is None:
            found: list[ImageRecord] = []
        elif query.tag:
            found = self._tagged(query, bounds, want)
        elif query.status:
            request = {**self._range_query("#owner_status", _owner_status(query.user_id, query.status), bounds, want,
                                           query), "IndexName": STATUS_INDEX}
            found = [_record(item) for item in islice(self._pages("query", request), want)]
        else:
            request = {**self._range_query("#user", query.user_id, bounds, want, query), "ConsistentRead": True}
            found = [_record(item) for item in islice(self._pages("query", request), want)]
        records = found[: query.limit]
        more = len(found) > query.limit
        return Page(images=records, next_cursor=encode_cursor(query.user_id, records[-1].image_id) if more else None)

    def _range_query(self, key: str, value: str, bounds: tuple[str | None, str | None], limit: int,
                     exact: ListQuery | None = None) -> dict[str, Any]:
        """A newest-first Query of the partition ``key`` (an alias) = ``value``, image ids within
        ``bounds`` (inclusive; None: open), ``limit`` items a request; with ``exact``, a filter on
        its since/until drops the records of the range's slack."""
        low, high = bounds
        condition, names, values = f"{key} = :key", [key], {":key": {"S": value}}
        if low or high:
            names.append("#image")
            condition += (" AND #image BETWEEN :low AND :high" if low and high
                          else " AND #image >= :low" if low else " AND #image <= :high")
            values.update({k: {"S": v} for k, v in ((":low", low), (":high", high)) if v})
        filters = []
        for bound, test in (("since", ">="), ("until", "<=")):
            moment = getattr(exact, bound) if exact else None
            if moment:
                filters.append(f"#created {test} :{bound}")
                values[f":{bound}"] = {"S": moment}
        request: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": False, "Limit": limit,
                                   "KeyConditionExpression": condition, "ExpressionAttributeValues": values}
        if filters:
            names.append("#created")
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeNames"] = _names(*names)
        return request

    def _tagged(self, query: ListQuery, bounds: tuple[str | None, str | None], want: int) -> list[ImageRecord]:
        """Up to ``want`` of the owner's records with ``query.tag`` that pass its other filters,
        newest first: the tag items' key range, their records asked for as many at a time as
        the page still lacks (a status filter reads ahead, FILTERED_READ_BUDGET tag items a
        request, since it may drop most records)."""
        step = max(want, FILTERED_READ_BUDGET) if query.status else want
        request = self._range_query("#user", _tag_partition(query.user_id, query.tag), bounds, step)
        image_ids = (item["image_id"]["S"] for item in self._pages("query", {**request, "ConsistentRead": True}))
        found: list[ImageRecord] = []
        while len(found) < want:
            batch = list(islice(image_ids, BATCH_GET_MAX if query.status else min(BATCH_GET_MAX, want - len(found))))
            if not batch:
                break
            found.extend(record for record in self._records(query.user_id, batch) if _listed(record, query))
        return found[:want]

    def _records(self, user_id: str, image_ids: list[str]) -> list[ImageRecord]:
        """The owner's records of ``image_ids`` that exist, in that order."""
        items = self._batch_get([_key(user_id, image_id) for image_id in image_ids])
        return [_record(items[user_id, image_id]) for image_id in image_ids if (user_id, image_id) in items]

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items of ``keys`` that exist, by (user_id, image_id): strongly consistent
        BatchGetItem requests of at most BATCH_GET_MAX keys, asking again, after a growing
        pause, for the keys DynamoDB left unprocessed (throttling, or its 16 MB answer limit).
        Raises TransientError when keys stay unprocessed."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending = {self.table: {"Keys": keys[start:start + BATCH_GET_MAX], "ConsistentRead": True}}
            for attempt in range(BATCH_GET_ATTEMPTS):
                if attempt:
                    time.sleep(BATCH_GET_PAUSE * 2 ** (attempt - 1))
                with transient_errors("read records"):
                    response = self.db.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table, []):
                    found[item["user_id"]["S"], item["image_id"]["S"]] = item
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise TransientError("read records: DynamoDB kept leaving keys unprocessed")
        return found

    def delete(self, user_id: str, image_id: str) -> bool:
        """Remove the record and its tag items, and release its ``size + extra_bytes`` and image
        from the owner's usage, in one transaction (conditional on the sizes and tags just read,
        so a concurrent add_bytes is never lost and no tag item is left behind). A missing
        record is not an error (False)."""
        for _ in range(WRITE_ATTEMPTS):
            item = self._stored(user_id, image_id, "#size", "#extra", "#tags")
            if item is None:
                return False
            size = int(item.get("size", {}).get("N", "0"))
            extra = int(item.get("extra_bytes", {}).get("N", "0"))
            result = self._write(
                "transact_write_items", "delete record",
                TransactItems=[
                    {"Delete": {"TableName": self.table, "Key": _key(user_id, image_id),
                                **_condition(_as_stored(item, "size", "extra_bytes", "tags"))}},
                    {"Update": self._usage_update(user_id, -1, -(size + extra), Attr("images").exists())},
                    *({"Delete": self._tag_key(user_id, image_id, tag)} for tag in _stored_tags(item)),
                ],
            )
            if not isinstance(result, Refused):
                return True
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

    def refund_rate(self, user_id_or_bucket: str, name: str, window_seconds: int, charged_at: float | None,
                    cost: int) -> None:
        start, _ = fixed_window(self.clock() if charged_at is None else charged_at, window_seconds)
        # Only a window's existing item, and only down to zero (a refund never makes budget):
        # the whole cost where the count holds it, else what the count holds, if it is unchanged.
        condition: ConditionBase = Attr("count").gte(cost)
        for _ in range(WRITE_ATTEMPTS):
            result = self._write("update_item", "refund rate",
                                 **self._rate_update(user_id_or_bucket, name, start, window_seconds, condition, -cost))
            if not isinstance(result, Refused):
                return
            with transient_errors("read rate"):
                item = self.db.get_item(TableName=self.table, Key=_rate_key(user_id_or_bucket, name, start),
                                        ConsistentRead=True).get("Item")
            cost = int(item["count"]["N"]) if item else 0
            if cost <= 0:
                return
            condition = Attr("count").eq(cost)

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
            "TableName": self.table, "Key": _rate_key(bucket, name, start),
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

    # -- list keys of records from before them -----------------------------------------------

    def backfill_list_keys(self) -> int:
        """Give records written before the status index and the tag items what listing needs:
        ``owner_status`` and one item per tag. One Scan of the table; each record that lacks
        either (or whose tag items carry another ttl) gets both in one transaction, conditional
        on the record as scanned (a record that changed meanwhile is read again). Idempotent: a
        second run writes nothing. Run it once every writer runs this code (``imageservice
        setup`` does, after adding the index). Returns how many records it completed."""
        request = {
            "TableName": self.table, "FilterExpression": "attribute_exists(#status)",
            "ExpressionAttributeNames": _names("#status"), "ConsistentRead": True,
        }
        records = self._pages("scan", request)
        completed = 0
        while chunk := list(islice(records, BACKFILL_CHUNK)):
            tag_items = self._batch_get([
                _key(_tag_partition(item["user_id"]["S"], tag), item["image_id"]["S"])
                for item in chunk for tag in _stored_tags(item)
            ])
            for item in chunk:
                if not _has_list_keys(item, tag_items) and self._complete_list_keys(item):
                    completed += 1
        return completed

    def _complete_list_keys(self, item: dict[str, Any]) -> bool:
        """Write ``owner_status`` and the tag items of the record ``item`` (as scanned); False
        when the record is gone."""
        user_id, image_id = item["user_id"]["S"], item["image_id"]["S"]
        for _ in range(WRITE_ATTEMPTS):
            owner_status = {":owner_status": {"S": _owner_status(user_id, item["status"]["S"])}}
            result = self._write(
                "transact_write_items", "backfill list keys",
                TransactItems=[
                    {"Update": {"TableName": self.table, "Key": _key(user_id, image_id),
                                "UpdateExpression": "SET #owner_status = :owner_status",
                                **_condition(_as_stored(item, "status", "tags", "ttl"),
                                             names=_names("#owner_status"), values=owner_status)}},
                    *({"Put": self._tag_item(user_id, image_id, tag, _stored_ttl(item))} for tag in _stored_tags(item)),
                ],
            )
            if not isinstance(result, Refused):
                return True
            item = self._stored(user_id, image_id, "#user", "#image", "#status", "#tags", "#ttl")
            if item is None:
                return False
        raise TransientError("backfill list keys: the record kept changing")

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
            "owner_status": {"S": _owner_status(record.user_id, record.status)},
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

    def _tag_item(self, user_id: str, image_id: str, tag: str, ttl: int | None) -> dict[str, Any]:
        """A Put of the item that lists ``image_id`` under ``tag``; it expires with the record."""
        item = _key(_tag_partition(user_id, tag), image_id)
        if ttl is not None:
            item["ttl"] = {"N": str(ttl)}
        return {"TableName": self.table, "Item": item}

    def _tag_key(self, user_id: str, image_id: str, tag: str) -> dict[str, Any]:
        """A Delete of the item that lists ``image_id`` under ``tag``."""
        return {"TableName": self.table, "Key": _key(_tag_partition(user_id, tag), image_id)}

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


def _owner_status(user_id: str, status: str) -> str:
    return f"{user_id}#{status}"


def _tag_partition(user_id: str, tag: str) -> str:
    # User ids hold no "#", so the owner ends at the second one whatever the tag holds.
    return f"{TAG_PREFIX}{user_id}#{tag}"


def _tags(record: ImageRecord) -> list[str]:
    """The record's tags, each once: one tag item each."""
    tags = list(dict.fromkeys(record.tags))
    if len(tags) > TAG_LIMIT:
        raise BadRequest(f"At most {TAG_LIMIT} tags.", code="invalid_parameter")
    return tags


def _rate_key(bucket: str, name: str, start: int) -> dict[str, Any]:
    """The key of ``bucket``'s counter ``name`` for the window starting at ``start``."""
    return _key(f"{RATE_PREFIX}{bucket}#{name}", str(start))


def _stored_tags(item: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(tag["S"] for tag in item.get("tags", {}).get("L", [])))


def _stored_ttl(item: dict[str, Any]) -> int | None:
    return int(item["ttl"]["N"]) if "ttl" in item else None


def _tag_items_made_by(tags: list[str], ttl: int | None) -> ConditionBase:
    """True while the stored record's tag items are the ones ``tags`` and ``ttl`` would make:
    the same ``tags`` attribute, and (when there are tags) the same ttl."""
    same = Attr("tags").eq(tags)
    if tags:
        same &= Attr("ttl").eq(ttl) if ttl is not None else Attr("ttl").not_exists()
    return same


def _has_list_keys(item: dict[str, Any], tag_items: dict[tuple[str, str], dict[str, Any]]) -> bool:
    """Whether the record ``item`` has its ``owner_status`` and, among ``tag_items``, an item
    for each tag carrying the record's ttl."""
    user_id, image_id = item["user_id"]["S"], item["image_id"]["S"]
    if item.get("owner_status", {}).get("S") != _owner_status(user_id, item["status"]["S"]):
        return False
    listed = [tag_items.get((_tag_partition(user_id, tag), image_id)) for tag in _stored_tags(item)]
    return all(tag_item is not None and _stored_ttl(tag_item) == _stored_ttl(item) for tag_item in listed)


def _as_stored(item: dict[str, Any], *names: str) -> ConditionBase:
    """True while each of ``names`` is as in ``item`` (an attribute it lacks is still absent)."""
    return reduce(and_, [Attr(name).eq(_DESERIALIZER.deserialize(item[name])) if name in item
                         else Attr(name).not_exists() for name in names])


def _id_bounds(query: ListQuery, after: str | None) -> tuple[str | None, str | None] | None:
    """The image ids a page may hold (inclusive; None: open), or None when there are none:
    the created_at range widened to ids, cut below the cursor's id."""
    low, high = ids.id_range(query.since, query.until)
    if after:
        before = ids.id_before(after)
        if before is None:
            return None
        high = min(high, before) if high else before
    if low and high and low > high:
        return None
    return low, high


def _listed(record: ImageRecord, query: ListQuery) -> bool:
    """Whether a record read through a tag item belongs on the page: it still has the tag
    (a tag item outliving its record's tag is skipped) and passes the other filters, as the
    FilterExpressions of the other shapes would (a record without created_at fails a bound)."""
    created = record.created_at
    return (query.tag in record.tags
            and (query.status is None or record.status == query.status)
            and (not query.since or (created is not None and created >= query.since))
            and (not query.until or (created is not None and created <= query.until)))


def _names(*aliases: str) -> dict[str, str]:
    return {alias: NAMES[alias] for alias in dict.fromkeys(aliases)}


def _record(item: dict[str, Any]) -> ImageRecord:
    data = json.loads(item["body"]["S"])
    data["status"] = item["status"]["S"]
    data["lease_until"] = item["lease_until"]["S"] if "lease_until" in item else None
    data["attempts"] = int(item["attempts"]["N"]) if "attempts" in item else 0
    data["extra_bytes"] = int(item["extra_bytes"]["N"]) if "extra_bytes" in item else 0
    return ImageRecord.from_dict(data)
