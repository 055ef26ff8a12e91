"""Reading records: pages of a query or scan, batched gets, and every list shape as a key range.

Image ids are time-sortable (ULIDs): newest first is a reverse query on the sort key, and a
created_at range and a cursor narrow the query itself through ids.id_range / ids.id_before.
Every list shape (first page, cursor, since/until, status, tag) reads about a page of items.
"""

from __future__ import annotations

import time
from itertools import islice
from typing import Any, Iterator

from ...core import ids
from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import TransientError
from ...core.records import PENDING, ImageRecord, ListQuery, Page, Usage
from ..aws.errors import transient_errors
from .items import PING_KEY, STATUS_INDEX, key, owner_status, record_of, tag_partition

# A status-filtered tag listing asks for this many tag items a request: it may drop most.
FILTERED_READ_BUDGET = 200
BATCH_GET_MAX = 100  # keys in one BatchGetItem request (DynamoDB's limit)
# Keys DynamoDB left unprocessed are asked for again, after a growing pause, this many times.
BATCH_GET_ATTEMPTS = 5
BATCH_GET_PAUSE = 0.05
# Attribute names, all aliased: status, size and ttl are DynamoDB reserved words.
NAMES = {
    "#user": "user_id", "#image": "image_id", "#status": "status", "#created": "created_at", "#size": "size",
    "#expires": "expires_at", "#upload_expires": "upload_expires_at", "#extra": "extra_bytes",
    "#owner_status": "owner_status", "#tags": "tags", "#ttl": "ttl",
}


def names(*aliases: str) -> dict[str, str]:
    return {alias: NAMES[alias] for alias in dict.fromkeys(aliases)}


class RecordReader:
    def __init__(self, dynamodb_client, table: str):
        self.db = dynamodb_client
        self.table = table

    def ping(self) -> None:
        """Raise when the table cannot be read (one GetItem, so no extra IAM permission)."""
        self.db.get_item(TableName=self.table, Key=PING_KEY)

    def get_item(self, item_key: dict[str, Any], what: str) -> dict[str, Any] | None:
        """One item, strongly consistent, or None."""
        with transient_errors(what):
            return self.db.get_item(TableName=self.table, Key=item_key, ConsistentRead=True).get("Item")

    def pages(self, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
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

    def batch_get(self, keys: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
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

    def tally(self, user_id: str) -> Usage:
        """The owner's records counted: one query of its partition."""
        request = {
            "TableName": self.table, "KeyConditionExpression": "#user = :user",
            "ProjectionExpression": "#size, #extra", "ExpressionAttributeNames": names("#user", "#size", "#extra"),
            "ExpressionAttributeValues": {":user": {"S": user_id}}, "ConsistentRead": True,
        }
        images = total = 0
        for item in self.pages("query", request):
            images += 1
            total += int(item.get("size", {}).get("N", "0")) + int(item.get("extra_bytes", {}).get("N", "0"))
        return Usage(images=images, bytes=total)

    def list(self, query: ListQuery) -> Page:
        """One page of the owner's records, newest first:

        - no tag, no status: the owner's partition, strongly consistent;
        - status: the ``by_owner_status`` index (eventually consistent, as every GSI: for a
          moment after a status change a record may still be listed under its former status);
        - tag: the tag items' partition, then BatchGetItem of their records (strongly
          consistent, in the tag items' order); a record without the tag (or gone) is skipped.

        Reads go on until the page has one record more than asked (so ``next_cursor`` is None
        exactly on the last page). Raises BadRequest (``invalid_cursor``), TransientError.
        """
        bounds = _id_bounds(query, decode_cursor(query.cursor, query.user_id))
        want = query.limit + 1
        if bounds is None:
            found: list[ImageRecord] = []
        elif query.tag:
            found = self._tagged(query, bounds, want)
        elif query.status:
            request = {**self._range_query("#owner_status", owner_status(query.user_id, query.status), bounds, want,
                                           query), "IndexName": STATUS_INDEX}
            found = [record_of(item) for item in islice(self.pages("query", request), want)]
        else:
            request = {**self._range_query("#user", query.user_id, bounds, want, query), "ConsistentRead": True}
            found = [record_of(item) for item in islice(self.pages("query", request), want)]
        records = found[: query.limit]
        more = len(found) > query.limit
        return Page(images=records, next_cursor=encode_cursor(query.user_id, records[-1].image_id) if more else None)

    def _range_query(self, key_alias: str, value: str, bounds: tuple[str | None, str | None], limit: int,
                     exact: ListQuery | None = None) -> dict[str, Any]:
        """A newest-first Query of the partition ``key_alias`` = ``value``, image ids within
        ``bounds`` (inclusive; None: open), ``limit`` items a request; with ``exact``, a filter
        on its since/until drops the records of the range's slack."""
        low, high = bounds
        condition, aliases, values = f"{key_alias} = :key", [key_alias], {":key": {"S": value}}
        if low or high:
            aliases.append("#image")
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
            aliases.append("#created")
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeNames"] = names(*aliases)
        return request

    def _tagged(self, query: ListQuery, bounds: tuple[str | None, str | None], want: int) -> list[ImageRecord]:
        """Up to ``want`` of the owner's records with ``query.tag`` that pass its other filters,
        newest first: the tag items' key range, their records asked for as many at a time as
        the page still lacks (a status filter reads ahead)."""
        step = max(want, FILTERED_READ_BUDGET) if query.status else want
        request = self._range_query("#user", tag_partition(query.user_id, query.tag), bounds, step)  # type: ignore[arg-type]
        image_ids = (item["image_id"]["S"] for item in self.pages("query", {**request, "ConsistentRead": True}))
        found: list[ImageRecord] = []
        while len(found) < want:
            batch = list(islice(image_ids, BATCH_GET_MAX if query.status else min(BATCH_GET_MAX, want - len(found))))
            if not batch:
                break
            items = self.batch_get([key(query.user_id, image_id) for image_id in batch])
            found.extend(record for record in (record_of(items[query.user_id, i]) for i in batch
                                               if (query.user_id, i) in items) if _listed(record, query))
        return found[:want]

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """Records whose ``expires_at`` is before ``now``: a filtered Scan, for the ``sweep``
        command. In AWS, DynamoDB TTL and the bucket's lifecycle rule do this job."""
        return self._scan("attribute_exists(#expires) AND #expires < :now AND attribute_exists(#status)",
                          ["#expires", "#status"], now, limit)

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """``pending`` records whose upload URL lapsed before ``now``: a filtered Scan."""
        return self._scan("#status = :pending AND #upload_expires < :now", ["#status", "#upload_expires"], now, limit,
                          {":pending": {"S": PENDING}})

    def _scan(self, condition: str, aliases: list[str], now: str, limit: int,
              values: dict[str, Any] | None = None) -> list[ImageRecord]:
        request = {
            "TableName": self.table, "FilterExpression": condition, "ExpressionAttributeNames": names(*aliases),
            "ExpressionAttributeValues": {":now": {"S": now}, **(values or {})}, "ConsistentRead": True,
        }
        return [record_of(item) for item in islice(self.pages("scan", request), limit)]


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
    """Whether a record read through a tag item belongs on the page: it still has the tag and
    passes the other filters, as the FilterExpressions of the other shapes would."""
    created = record.created_at
    return (query.tag in record.tags
            and (query.status is None or record.status == query.status)
            and (not query.since or (created is not None and created >= query.since))
            and (not query.until or (created is not None and created <= query.until)))
