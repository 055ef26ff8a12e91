"""SQLite Catalog: one row per image (JSON body + the columns we query on), a tag table, tokens."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import Conflict
from ...core.records import PENDING, PROCESSING, ImageRecord, ListQuery, Page, Token, Usage
from .sqlite import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    upload_expires_at TEXT,
    lease_until TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_owner ON images (user_id, image_id DESC);
CREATE INDEX IF NOT EXISTS images_by_owner_created ON images (user_id, created_at);
CREATE INDEX IF NOT EXISTS images_by_expiry ON images (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS images_pending ON images (upload_expires_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS image_tags (
    image_id TEXT NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX IF NOT EXISTS image_tags_by_owner_tag ON image_tags (user_id, tag, image_id DESC);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rate_counters (
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, name)
)
"""


class SqliteCatalog:
    def __init__(self, path: Path):
        self.db = SqliteDatabase(path, SCHEMA)

    # -- images -------------------------------------------------------------------------------

    def create(self, record: ImageRecord) -> None:
        """Insert a new record; Conflict when the id exists."""
        with self.db.transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO images (image_id, user_id, status, created_at, expires_at, upload_expires_at,"
                    " lease_until, size, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _columns(record),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"image {record.image_id} exists", code="exists") from None
            _write_tags(conn, record)

    def get(self, user_id: str, image_id: str) -> ImageRecord | None:
        row = self.db.connection().execute(
            "SELECT body FROM images WHERE image_id = ? AND user_id = ?", (image_id, user_id)
        ).fetchone()
        return _record(row)

    def put(self, record: ImageRecord, *, expect_status: Iterable[str] | None = None) -> bool:
        """Replace the record (conditionally on its stored status); False when not written."""
        sql = (
            "UPDATE images SET user_id = ?, status = ?, created_at = ?, expires_at = ?, upload_expires_at = ?,"
            " lease_until = ?, size = ?, body = ? WHERE image_id = ? AND user_id = ?"
        )
        params: list = list(_columns(record)[1:]) + [record.image_id, record.user_id]
        if expect_status is not None:
            statuses = list(expect_status)
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            params += statuses
        with self.db.transaction() as conn:
            changed = conn.execute(sql, params).rowcount == 1
            if changed:
                _write_tags(conn, record)
        return changed

    def claim(self, user_id: str, image_id: str, *, now: str, lease_until: str) -> ImageRecord | None:
        """pending, or processing with a lapsed lease -> processing with our lease."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT body FROM images WHERE image_id = ? AND user_id = ?"
                " AND (status = ? OR (status = ? AND (lease_until IS NULL OR lease_until < ?)))",
                (image_id, user_id, PENDING, PROCESSING, now),
            ).fetchone()
            record = _record(row)
            if record is None:
                return None
            record = record.copy(status=PROCESSING, lease_until=lease_until, attempts=record.attempts + 1)
            conn.execute(
                "UPDATE images SET status = ?, lease_until = ?, body = ? WHERE image_id = ?",
                (PROCESSING, lease_until, _body(record), image_id),
            )
        return record

    def list(self, query: ListQuery) -> Page:
        """Newest first by image_id (time-sortable); the cursor is the last id returned."""
        clauses, params = ["i.user_id = ?"], [query.user_id]
        table = "images i"
        if query.tag:
            table = "image_tags t JOIN images i ON i.image_id = t.image_id"
            clauses.append("t.user_id = ? AND t.tag = ?")
            params += [query.user_id, query.tag]
        if query.status:
            clauses.append("i.status = ?")
            params.append(query.status)
        if query.since:
            clauses.append("i.created_at >= ?")
            params.append(query.since)
        if query.until:
            clauses.append("i.created_at <= ?")
            params.append(query.until)
        after = decode_cursor(query.cursor)
        if after:
            clauses.append("i.image_id < ?")
            params.append(after)
        rows = self.db.connection().execute(
            f"SELECT i.body FROM {table} WHERE {' AND '.join(clauses)} ORDER BY i.image_id DESC LIMIT ?",
            params + [query.limit + 1],
        ).fetchall()
        records = [_record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(images=records, next_cursor=encode_cursor(records[-1].image_id) if more else None)  # type: ignore[union-attr]

    def delete(self, user_id: str, image_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM images WHERE image_id = ? AND user_id = ?", (image_id, user_id))

    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        """Fixed-window counter: add ``cost`` when the window's count stays within ``limit`` and
        return None; else count nothing and return the seconds until the window ends."""
        now = time.time()
        start = int(now // window_seconds) * window_seconds
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT window_start, count FROM rate_counters WHERE bucket = ? AND name = ?", (user_id_or_bucket, name)
            ).fetchone()
            count = row[1] if row is not None and row[0] == start else 0
            if count + cost > limit:
                return max(1, math.ceil(start + window_seconds - now))
            conn.execute(
                "INSERT INTO rate_counters (bucket, name, window_start, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (bucket, name) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
                (user_id_or_bucket, name, start, count + cost),
            )
        return None

    def usage(self, user_id: str) -> Usage:
        row = self.db.connection().execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM images WHERE user_id = ?", (user_id,)
        ).fetchone()
        return Usage(images=row[0], bytes=row[1])

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        rows = self.db.connection().execute(
            "SELECT body FROM images WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?", (now, limit)
        ).fetchall()
        return [_record(r) for r in rows]  # type: ignore[misc]

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        rows = self.db.connection().execute(
            "SELECT body FROM images WHERE status = 'pending' AND upload_expires_at < ? LIMIT ?", (now, limit)
        ).fetchall()
        return [_record(r) for r in rows]  # type: ignore[misc]

    # -- tokens -------------------------------------------------------------------------------

    def save_token(self, token_hash: str, token: Token) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tokens (token_hash, user_id, admin) VALUES (?, ?, ?)",
                (token_hash, token.user_id, int(token.admin)),
            )

    def find_token(self, token_hash: str) -> Token | None:
        row = self.db.connection().execute(
            "SELECT user_id, admin FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return Token(user_id=row["user_id"], admin=bool(row["admin"])) if row else None

    def ping(self) -> None:
        self.db.ping()


def _body(record: ImageRecord) -> str:
    return json.dumps(record.to_dict(), separators=(",", ":"))


def _columns(record: ImageRecord) -> tuple:
    return (
        record.image_id, record.user_id, record.status, record.created_at, record.expires_at,
        record.upload_expires_at, record.lease_until, record.size or 0, _body(record),
    )


def _record(row) -> ImageRecord | None:
    return ImageRecord.from_dict(json.loads(row["body"])) if row else None


def _write_tags(conn: sqlite3.Connection, record: ImageRecord) -> None:
    conn.execute("DELETE FROM image_tags WHERE image_id = ?", (record.image_id,))
    conn.executemany(
        "INSERT OR IGNORE INTO image_tags (image_id, user_id, tag) VALUES (?, ?, ?)",
        [(record.image_id, record.user_id, tag) for tag in record.tags],
    )
