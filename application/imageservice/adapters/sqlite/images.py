"""Image records in SQLite: one row per image (the JSON body, the API text, and the columns
queried on) and one row per tag. Every list query is a range on an index ordered by
image_id (ids are time-sortable, so a created_at bound is also an image_id bound)."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from ... import jsontext
from ...core import ids
from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import Conflict
from ...core.records import ApiPage, ImageRecord, ListQuery, Page, Usage
from ...unit_of_work import VersionConflict, Versioned

# The columns a record is read from.
_SELECT = "i.body, i.extra_bytes, i.version"
# list_api's columns: the stored API text, and what renders it when a row predates the column.
_SELECT_API = "i.api, i.body, i.extra_bytes, i.version, i.image_id"
_COLUMNS = ("image_id", "user_id", "status", "created_at", "expires_at", "upload_expires_at", "lease_until",
            "size", "body", "api", "extra_bytes")
_INSERT = f"INSERT INTO images ({', '.join(_COLUMNS)}, version) VALUES ({', '.join('?' * len(_COLUMNS))}, 1)"
_UPDATE = ("UPDATE images SET " + ", ".join(f"{name} = ?" for name in _COLUMNS[2:])
           + ", version = version + 1 WHERE image_id = ? AND version = ?")


class SqliteImages:
    def __init__(self, connection: Callable[[], sqlite3.Connection]):
        self._connection = connection

    def get(self, user_id: str, image_id: str) -> Versioned[ImageRecord]:
        row = self._connection().execute(
            f"SELECT {_SELECT} FROM images i WHERE image_id = ? AND user_id = ?", (image_id, user_id)
        ).fetchone()
        return Versioned(None) if row is None else Versioned(_record(row), row[2])

    def add(self, record: ImageRecord) -> None:
        conn = self._connection()
        try:
            conn.executemany(_INSERT, (_columns(record),))
        except sqlite3.IntegrityError:
            raise Conflict(f"image {record.image_id} exists", code="exists") from None
        _write_tags(conn, record, replacing=False)

    def replace(self, record: ImageRecord, version: int | None) -> None:
        conn = self._connection()
        changed = conn.execute(_UPDATE, _columns(record)[2:] + (record.image_id, version)).rowcount
        if changed != 1:
            raise VersionConflict(f"image {record.image_id}")
        _write_tags(conn, record, replacing=True)

    def remove(self, record: ImageRecord, version: int | None) -> None:
        changed = self._connection().execute(
            "DELETE FROM images WHERE image_id = ? AND version = ?", (record.image_id, version)
        ).rowcount  # its tags go with it (ON DELETE CASCADE)
        if changed != 1:
            raise VersionConflict(f"image {record.image_id}")

    def tally(self, user_id: str) -> Usage:
        images, size = self._connection().execute(
            "SELECT COUNT(*), COALESCE(SUM(size + extra_bytes), 0) FROM images WHERE user_id = ?", (user_id,)
        ).fetchone()
        return Usage(images=images, bytes=size)

    def list(self, query: ListQuery) -> Page:
        """Newest first by image_id; every shape walks one index range in id order (no sort)."""
        sql, params = list_sql(query)
        rows = self._connection().execute(sql, params).fetchall()
        records = [_record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(images=records, next_cursor=encode_cursor(query.user_id, records[-1].image_id) if more else None)

    def list_api(self, query: ListQuery) -> ApiPage:
        """The same page as ``list``, as the API's JSON text of each record, read as stored:
        no record is decoded (a row written before the column existed is rendered once here)."""
        sql, params = list_sql(query, columns=_SELECT_API)
        rows = self._connection().execute(sql, params).fetchall()
        documents = [row[0] if row[0] is not None else _api(_record(row[1:])) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return ApiPage(images=documents, next_cursor=encode_cursor(query.user_id, rows[query.limit - 1][4]) if more else None)

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        rows = self._connection().execute(
            f"SELECT {_SELECT} FROM images i WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?", (now, limit)
        ).fetchall()
        return [_record(r) for r in rows]

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        rows = self._connection().execute(
            f"SELECT {_SELECT} FROM images i WHERE status = 'pending' AND upload_expires_at < ? LIMIT ?", (now, limit)
        ).fetchall()
        return [_record(r) for r in rows]


def list_sql(query: ListQuery, columns: str = _SELECT) -> tuple[str, list[Any]]:
    """The one SELECT a list query runs (tests/integration/test_catalog_plans.py checks each
    shape's plan). Raises BadRequest (``invalid_cursor``)."""
    after = decode_cursor(query.cursor, query.user_id)
    low, high = ids.id_range(query.since, query.until)
    if query.tag:
        # Walk the tag index in id order and fetch each image by primary key.
        source = "image_tags t INDEXED BY image_tags_by_owner_tag JOIN images i ON i.image_id = t.image_id"
        clauses, params = ["t.user_id = ?", "t.tag = ?", "i.user_id = ?"], [query.user_id, query.tag, query.user_id]
        order = "t.image_id"
        if query.status:
            clauses.append("i.status = ?")
            params.append(query.status)
    elif query.status:
        source, order = "images i INDEXED BY images_by_owner_status", "i.image_id"
        clauses, params = ["i.user_id = ?", "i.status = ?"], [query.user_id, query.status]
    else:
        source, order = "images i INDEXED BY images_by_owner", "i.image_id"
        clauses, params = ["i.user_id = ?"], [query.user_id]
    for op, bound in ((">=", low), ("<=", high), ("<", after)):
        if bound:
            clauses.append(f"{order} {op} ?")
            params.append(bound)
    if query.since:
        clauses.append("i.created_at >= ?")
        params.append(query.since)
    if query.until:
        clauses.append("i.created_at <= ?")
        params.append(query.until)
    sql = f"SELECT {columns} FROM {source} WHERE {' AND '.join(clauses)} ORDER BY {order} DESC LIMIT ?"
    return sql, params + [query.limit + 1]


def _api(record: ImageRecord) -> str:
    """The record as the API shows it to its owner: a list page is these, joined."""
    return jsontext.dumps(record.to_api())


def _columns(record: ImageRecord) -> tuple:
    return (
        record.image_id, record.user_id, record.status, record.created_at, record.expires_at,
        record.upload_expires_at, record.lease_until, record.size or 0, jsontext.dumps(record.to_dict()),
        _api(record), record.extra_bytes,
    )


def _record(row) -> ImageRecord:
    data = jsontext.loads(row[0])
    data["extra_bytes"] = row[1]
    return ImageRecord.from_dict(data)


def _write_tags(conn: sqlite3.Connection, record: ImageRecord, *, replacing: bool) -> None:
    if replacing:
        conn.execute("DELETE FROM image_tags WHERE image_id = ?", (record.image_id,))
    if record.tags:
        conn.execute(
            "INSERT OR IGNORE INTO image_tags (image_id, user_id, tag) VALUES "
            + ", ".join(["(?, ?, ?)"] * len(record.tags)),
            [value for tag in record.tags for value in (record.image_id, record.user_id, tag)],
        )
