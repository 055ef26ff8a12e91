"""Counters, idempotency keys and API tokens as items (see items.py): versioned, no rules."""

from __future__ import annotations

import json
from itertools import islice
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ...core.records import IdempotencyEntry, Token
from ...core.timeutil import iso_to_epoch
from ...unit_of_work import Versioned
from .items import (
    COUNTER_SORT_KEY, DOCUMENT_INDEX_PREFIX, DOCUMENT_PREFIX, DOCUMENT_SORT_KEY, IDEMPOTENCY_PREFIX, TOKEN_PREFIX,
    TOKEN_SORT_KEY, as_read, condition, key, next_version, version_of,
)
from .reads import RecordReader

if TYPE_CHECKING:
    from .store import DynamoUnitOfWork


class _Repository:
    def __init__(self, reader: RecordReader, uow: "DynamoUnitOfWork"):
        self._reader, self._uow = reader, uow

    def _read(self, item_key: dict[str, Any], what: str) -> tuple[dict[str, Any] | None, int | None]:
        item = self._reader.get_item(item_key, what)
        return (None, None) if item is None else (item, version_of(item))

    def _put(self, item: dict[str, Any], version: int | None) -> None:
        self._uow.write("Put", {"Item": {**item, "version": next_version(version)}, **condition(as_read(version))})


class DynamoCounters(_Repository):
    def get(self, counter: str) -> Versioned[Mapping[str, int]]:
        item, version = self._read(key(counter, COUNTER_SORT_KEY), "read counter")
        return Versioned(None) if item is None else Versioned(json.loads(item["value"]["S"]), version)

    def get_many(self, counters: Sequence[str]) -> list[Versioned[Mapping[str, int]]]:
        return [self.get(counter) for counter in counters]  # GetItem each: no role needs BatchGetItem for it

    def put(self, counter: str, value: Mapping[str, int], version: int | None, *, expires_at: float | None = None) -> None:
        item = {**key(counter, COUNTER_SORT_KEY), "value": {"S": json.dumps(dict(value), separators=(",", ":"))}}
        if expires_at is not None:
            item["ttl"] = {"N": str(int(expires_at))}
        self._put(item, version)


class DynamoIdempotency(_Repository):
    def get(self, user_id: str, idempotency_key: str) -> Versioned[IdempotencyEntry]:
        item, version = self._read(key(IDEMPOTENCY_PREFIX + user_id, idempotency_key), "read idempotency key")
        if item is None:
            return Versioned(None)
        return Versioned(IdempotencyEntry(
            fingerprint=item["fingerprint"]["S"], state=item["state"]["S"],
            response=json.loads(item["response"]["S"]) if "response" in item else None,
            image_id=item["result_image_id"]["S"] if "result_image_id" in item else None,
            expires_at=item["expires_at"]["S"] if "expires_at" in item else None,
        ), version)

    def put(self, user_id: str, idempotency_key: str, entry: IdempotencyEntry, version: int | None) -> None:
        item: dict[str, Any] = {
            **key(IDEMPOTENCY_PREFIX + user_id, idempotency_key),
            "fingerprint": {"S": entry.fingerprint}, "state": {"S": entry.state},
        }
        if entry.response is not None:
            item["response"] = {"S": json.dumps(entry.response, separators=(",", ":"))}
        if entry.image_id is not None:
            item["result_image_id"] = {"S": entry.image_id}
        if entry.expires_at is not None:
            item["expires_at"] = {"S": entry.expires_at}
            item["ttl"] = {"N": str(iso_to_epoch(entry.expires_at))}
        self._put(item, version)

    def remove(self, user_id: str, idempotency_key: str, version: int | None) -> None:
        self._uow.write("Delete", {"Key": key(IDEMPOTENCY_PREFIX + user_id, idempotency_key),
                                   **condition(as_read(version))})


class DynamoTokens(_Repository):
    def get(self, token_hash: str) -> Versioned[Token]:
        item, version = self._read(key(TOKEN_PREFIX + token_hash, TOKEN_SORT_KEY), "find token")
        if item is None:
            return Versioned(None)
        return Versioned(Token(user_id=item["token_user_id"]["S"], admin=item.get("admin", {}).get("BOOL", False)),
                         version)

    def put(self, token_hash: str, token: Token, version: int | None) -> None:
        self._put({**key(TOKEN_PREFIX + token_hash, TOKEN_SORT_KEY), "token_user_id": {"S": token.user_id},
                   "admin": {"BOOL": bool(token.admin)}}, version)


class DynamoDocuments(_Repository):
    """Documents of one kind: ``doc#<kind>#<key>`` / ``doc`` holds the body; a document filed
    under a parent also has an index item ``docs#<kind>#<parent>`` / ``<key>``, written and
    removed in the same transaction, so a parent's documents are one Query away."""

    def __init__(self, reader: RecordReader, uow: "DynamoUnitOfWork", kind: str):
        super().__init__(reader, uow)
        self._kind = kind
        self._seen: dict[str, dict[str, Any]] = {}

    def _key(self, document_key: str) -> dict[str, Any]:
        return key(f"{DOCUMENT_PREFIX}{self._kind}#{document_key}", DOCUMENT_SORT_KEY)

    def _index_key(self, parent: str, document_key: str) -> dict[str, Any]:
        return key(f"{DOCUMENT_INDEX_PREFIX}{self._kind}#{parent}", document_key)

    def get(self, document_key: str) -> Versioned[dict[str, Any]]:
        item, version = self._read(self._key(document_key), f"read {self._kind}")
        if item is None:
            return Versioned(None)
        self._seen[document_key] = item
        return Versioned(json.loads(item["body"]["S"]), version)

    def put(self, document_key: str, document: Mapping[str, Any], version: int | None, *, parent: str | None = None,
            expires_at: float | None = None) -> None:
        item: dict[str, Any] = {**self._key(document_key), "body": {"S": json.dumps(dict(document), separators=(",", ":"))}}
        ttl = {"ttl": {"N": str(int(expires_at))}} if expires_at is not None else {}
        if parent is not None:
            item["parent"] = {"S": parent}
            self._uow.write("Put", {"Item": {**self._index_key(parent, document_key), **ttl}})
        self._put({**item, **ttl}, version)

    def remove(self, document_key: str, version: int | None) -> None:
        stored = self._seen.get(document_key, {})
        self._uow.write("Delete", {"Key": self._key(document_key), **condition(as_read(version))})
        if "parent" in stored:
            self._uow.write("Delete", {"Key": self._index_key(stored["parent"]["S"], document_key)})

    def under(self, parent: str) -> list[tuple[str, Versioned[dict[str, Any]]]]:
        partition = self._index_key(parent, "")["user_id"]["S"]
        index = self._reader.pages("query", {
            "TableName": self._reader.table, "KeyConditionExpression": "user_id = :parent",
            "ExpressionAttributeValues": {":parent": {"S": partition}}, "ConsistentRead": True,
        })
        keys = [item["image_id"]["S"] for item in index]
        items = self._reader.batch_get([self._key(k) for k in keys])
        found = []
        for document_key in keys:
            item = items.get((self._key(document_key)["user_id"]["S"], DOCUMENT_SORT_KEY))
            if item is not None:
                self._seen[document_key] = item
                found.append((document_key, Versioned(json.loads(item["body"]["S"]), version_of(item))))
        return found

    def expiring(self, before: float, limit: int = 100) -> list[tuple[str, Versioned[dict[str, Any]]]]:
        """A filtered Scan, for the sweep (``imageservice sweep``)."""
        prefix = self._key("")["user_id"]["S"]
        items = self._reader.pages("scan", {
            "TableName": self._reader.table, "ConsistentRead": True,
            "FilterExpression": "begins_with(user_id, :prefix) AND #ttl < :before",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {":prefix": {"S": prefix}, ":before": {"N": str(int(before))}},
        })
        found = []
        for item in islice(items, limit):
            document_key = item["user_id"]["S"][len(prefix):]
            self._seen[document_key] = item
            found.append((document_key, Versioned(json.loads(item["body"]["S"]), version_of(item))))
        return found
