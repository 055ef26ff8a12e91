"""Image records as items, their tag items written and removed with them (see items.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr

from ...core.records import ApiPage, ImageRecord, ListQuery, Page, Usage
from ...unit_of_work import Versioned
from .items import as_read, condition, key, record_item, record_of, record_ttl, stored_tags, stored_ttl, tag_item, tags_of, tag_partition
from .reads import RecordReader

if TYPE_CHECKING:
    from .store import DynamoUnitOfWork


class DynamoImages:
    def __init__(self, reader: RecordReader, uow: "DynamoUnitOfWork", abandoned_ttl: int):
        self._reader, self._uow, self._abandoned_ttl = reader, uow, abandoned_ttl
        # What this unit of work read of each record: its tag items are those of the tags
        # and ttl stored then.
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, user_id: str, image_id: str) -> Versioned[ImageRecord]:
        item = self._reader.get_item(key(user_id, image_id), "get record")
        if item is None or "body" not in item:
            return Versioned(None)
        self._seen[user_id, image_id] = item
        return Versioned(record_of(item), int(item["version"]["N"]) if "version" in item else 0)

    def add(self, record: ImageRecord) -> None:
        ttl = record_ttl(record, self._abandoned_ttl)
        self._uow.write("Put", {"Item": record_item(record, ttl, None),
                                **condition(Attr("image_id").not_exists())}, refusal="exists")
        for tag in tags_of(record):
            self._uow.write("Put", {"Item": tag_item(record.user_id, record.image_id, tag, ttl)})

    def replace(self, record: ImageRecord, version: int | None) -> None:
        """The record over the one read, and its tag items: those it gains (all when the ttl
        changed) written, those it loses removed."""
        stored = self._seen[record.user_id, record.image_id]
        ttl = record_ttl(record, self._abandoned_ttl)
        self._uow.write("Put", {"Item": record_item(record, ttl, version), **condition(as_read(version))})
        old_tags, tags = stored_tags(stored), tags_of(record)
        for tag in tags:
            if tag not in old_tags or ttl != stored_ttl(stored):
                self._uow.write("Put", {"Item": tag_item(record.user_id, record.image_id, tag, ttl)})
        for tag in old_tags:
            if tag not in tags:
                self._uow.write("Delete", {"Key": key(tag_partition(record.user_id, tag), record.image_id)})

    def remove(self, record: ImageRecord, version: int | None) -> None:
        stored = self._seen[record.user_id, record.image_id]
        self._uow.write("Delete", {"Key": key(record.user_id, record.image_id), **condition(as_read(version))})
        for tag in stored_tags(stored):
            self._uow.write("Delete", {"Key": key(tag_partition(record.user_id, tag), record.image_id)})

    def tally(self, user_id: str) -> Usage:
        return self._reader.tally(user_id)

    def list(self, query: ListQuery) -> Page:
        return self._reader.list(query)

    def list_api(self, query: ListQuery) -> ApiPage:
        """``list``'s page rendered for the API (the items keep no API text of their own)."""
        return ApiPage.of(self._reader.list(query))

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        return self._reader.expired(now, limit)

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        return self._reader.abandoned(now, limit)
