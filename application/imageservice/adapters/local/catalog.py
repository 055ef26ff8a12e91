"""SQLite Catalog: one row per image (JSON body + the columns we query on), a tag table, tokens,
per-owner usage counters, fixed-window rate counters and idempotency keys.

Counters change in the same transaction as the rows they count (``BEGIN IMMEDIATE``, or for a
new record the one statement of the creation trigger), so quota and rate checks are exact under
any number of threads and processes, and cost one primary-key read instead of a scan of the
owner's images. Every list query is a range on an index ordered
by image_id (ids are time-sortable, so a created_at bound is also an image_id bound).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ... import jsontext
from ...core import ids
from ...core.cursor import decode_cursor, encode_cursor
from ...core.errors import Conflict
from ...core.records import (
    CREATE_RATE,
    CREATE_WINDOW_SECONDS,
    DONE,
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
from ...core.timeutil import epoch_to_iso
from .sqlite import SqliteDatabase, table_exists

# The window's count after adding the cost, a new window starting over: _hit and the creation
# trigger both count with it.
_WINDOW_COUNT = "CASE WHEN window_start = excluded.window_start THEN count + excluded.count ELSE excluded.count END"

# A new record, its tags and its counters in one INSERT: the trigger does every step inside
# SQLite, so the write lock is held for one call that runs without the GIL, where a
# transaction of separate statements had to win the GIL back between each (under load, the
# waits for it, not the SQL, set how long other writers queued). A refusal is a RAISE that
# undoes the whole statement; its message names the limit (see _CREATION_REFUSALS).
CREATION_TRIGGER = """
CREATE VIEW IF NOT EXISTS image_creations AS SELECT
    NULL AS image_id, NULL AS user_id, NULL AS status, NULL AS created_at, NULL AS expires_at,
    NULL AS upload_expires_at, NULL AS lease_until, NULL AS size, NULL AS body, NULL AS api,
    NULL AS extra_bytes, NULL AS tags, NULL AS quota_images, NULL AS quota_bytes,
    NULL AS rate_name, NULL AS rate_window_start, NULL AS rate_limit;
CREATE TRIGGER IF NOT EXISTS image_creations_insert INSTEAD OF INSERT ON image_creations BEGIN
    INSERT INTO usage (user_id, images, bytes) VALUES (NEW.user_id, 1, NEW.size + NEW.extra_bytes)
        ON CONFLICT (user_id) DO UPDATE SET images = images + 1, bytes = bytes + excluded.bytes;
    SELECT RAISE(ABORT, 'quota_images') FROM usage
        WHERE user_id = NEW.user_id AND NEW.quota_images IS NOT NULL AND images > NEW.quota_images;
    SELECT RAISE(ABORT, 'quota_bytes') FROM usage
        WHERE user_id = NEW.user_id AND NEW.quota_bytes IS NOT NULL AND bytes - NEW.extra_bytes > NEW.quota_bytes;
    INSERT INTO rate_counters (bucket, name, window_start, count)
        VALUES (NEW.user_id, NEW.rate_name, NEW.rate_window_start, 1)
        ON CONFLICT (bucket, name) DO UPDATE SET window_start = excluded.window_start,
            count = {window_count};
    SELECT RAISE(ABORT, 'rate_limited') FROM rate_counters
        WHERE bucket = NEW.user_id AND name = NEW.rate_name AND NEW.rate_limit IS NOT NULL AND count > NEW.rate_limit;
    INSERT INTO images (image_id, user_id, status, created_at, expires_at, upload_expires_at, lease_until,
                        size, body, api, extra_bytes)
        VALUES (NEW.image_id, NEW.user_id, NEW.status, NEW.created_at, NEW.expires_at, NEW.upload_expires_at,
                NEW.lease_until, NEW.size, NEW.body, NEW.api, NEW.extra_bytes);
    INSERT OR IGNORE INTO image_tags (image_id, user_id, tag)
        SELECT NEW.image_id, NEW.user_id, value FROM json_each(NEW.tags);
END
""".replace("{window_count}", _WINDOW_COUNT)
USAGE_TABLE = """
CREATE TABLE IF NOT EXISTS usage (
    user_id TEXT PRIMARY KEY,
    images INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
)
"""

SCHEMA = USAGE_TABLE + """;
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    upload_expires_at TEXT,
    lease_until TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    extra_bytes INTEGER NOT NULL DEFAULT 0,
    api TEXT
);
CREATE INDEX IF NOT EXISTS images_by_owner ON images (user_id, image_id DESC);
CREATE INDEX IF NOT EXISTS images_by_owner_status ON images (user_id, status, image_id DESC);
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
);
CREATE TABLE IF NOT EXISTS idempotency (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    response TEXT,
    image_id TEXT,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at)
""" + ";" + CREATION_TRIGGER

_CREATE = (
    "INSERT INTO image_creations (image_id, user_id, status, created_at, expires_at, upload_expires_at,"
    " lease_until, size, body, api, extra_bytes, tags, quota_images, quota_bytes, rate_name, rate_window_start,"
    " rate_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# The trigger's RAISE messages, as the errors the caller gets (given the limits and the
# seconds left in the rate window).
_CREATION_REFUSALS = {
    "quota_images": lambda limits, left: limits.images_used_up(),
    "quota_bytes": lambda limits, left: limits.bytes_used_up(),
    "rate_limited": lambda limits, left: limits.rate_limited(left),
}

# The columns a record is read from: the JSON body, and extra_bytes, which only add_bytes
# changes (a put of a stale copy must not undo it).
_SELECT = "i.body, i.extra_bytes"
# list_api's columns: the stored API text, and what renders it when a row predates the column.
_SELECT_API = "i.api, i.body, i.extra_bytes, i.image_id"


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a catalog made by an earlier version up to date (runs inside the schema's write
    transaction, before the CREATE ... IF NOT EXISTS statements)."""
    # The creation trigger is made again from the schema on every start: always this version's.
    conn.execute("DROP TRIGGER IF EXISTS image_creations_insert")
    conn.execute("DROP VIEW IF EXISTS image_creations")
    if not table_exists(conn, "images"):
        return  # a new database: the schema makes everything
    columns = {row[1] for row in conn.execute("PRAGMA table_info(images)")}
    if "extra_bytes" not in columns:
        conn.execute("ALTER TABLE images ADD COLUMN extra_bytes INTEGER NOT NULL DEFAULT 0")
    if "api" not in columns:  # filled as records are written; list_api renders rows without it
        conn.execute("ALTER TABLE images ADD COLUMN api TEXT")
    # Time filters are image_id ranges now; this index only tempted the planner into sorting.
    conn.execute("DROP INDEX IF EXISTS images_by_owner_created")
    if not table_exists(conn, "usage"):
        conn.execute(USAGE_TABLE)
        conn.execute(
            "INSERT INTO usage (user_id, images, bytes)"
            " SELECT user_id, COUNT(*), COALESCE(SUM(size + extra_bytes), 0) FROM images GROUP BY user_id"
        )


class SqliteCatalog:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        """``clock``: epoch seconds, for rate windows and idempotency expiry."""
        self.db = SqliteDatabase(path, SCHEMA, migrate=migrate)
        self.clock = clock

    # -- images -------------------------------------------------------------------------------

    def create(self, record: ImageRecord, *, limits: OwnerLimits | None = None) -> None:
        """Insert a new record and count it in the owner's usage and creation rate, in one
        statement (the creation trigger, CREATION_TRIGGER).

        With ``limits``: raises Conflict (``quota_exceeded``) when the owner would hold more
        than ``limits.images`` images or ``limits.bytes`` bytes, TooManyRequests
        (``rate_limited``, with ``retry_after``) past ``limits.per_minute`` creations in the
        current minute. Raises Conflict (``exists``) when the id exists.
        """
        start, left = fixed_window(self.clock(), CREATE_WINDOW_SECONDS)
        params = _columns(record) + (
            record.extra_bytes, jsontext.dumps(record.tags),
            limits.images if limits else None, limits.bytes if limits else None,
            CREATE_RATE, start, limits.per_minute if limits else None,
        )
        try:
            self.db.write_statement(_CREATE, params)
        except sqlite3.IntegrityError as exc:
            refusal = str(exc)
            if limits is not None and refusal in _CREATION_REFUSALS:
                raise _CREATION_REFUSALS[refusal](limits, left) from None
            if "UNIQUE" in refusal:
                raise Conflict(f"image {record.image_id} exists", code="exists") from None
            raise  # a record without a column the table requires: a bug, not a conflict

    def get(self, user_id: str, image_id: str) -> ImageRecord | None:
        row = self.db.connection().execute(
            f"SELECT {_SELECT} FROM images i WHERE image_id = ? AND user_id = ?", (image_id, user_id)
        ).fetchone()
        return _record(row)

    def put(self, record: ImageRecord, *, expect_status: Iterable[str] | None = None) -> bool:
        """Replace the record (conditionally on its stored status); False when not written.
        A change of ``size`` moves the owner's byte usage by the difference, in the same
        transaction; ``extra_bytes`` is add_bytes' alone and is kept."""
        statuses = None if expect_status is None else list(expect_status)
        with self.db.transaction() as conn:
            old = conn.execute(
                "SELECT status, size FROM images WHERE image_id = ? AND user_id = ?", (record.image_id, record.user_id)
            ).fetchone()
            if old is None or (statuses is not None and old["status"] not in statuses):
                return False
            conn.execute(
                "UPDATE images SET status = ?, created_at = ?, expires_at = ?, upload_expires_at = ?,"
                " lease_until = ?, size = ?, body = ?, api = ? WHERE image_id = ?",
                _columns(record)[2:] + (record.image_id,),
            )
            _write_tags(conn, record)
            delta = (record.size or 0) - old["size"]
            if delta:
                _add_usage(conn, record.user_id, 0, delta)
        return True

    def claim(self, user_id: str, image_id: str, *, now: str, lease_until: str) -> ImageRecord | None:
        """pending, or processing with a lapsed lease -> processing with our lease."""
        with self.db.transaction() as conn:
            row = conn.execute(
                f"SELECT {_SELECT} FROM images i WHERE image_id = ? AND user_id = ?"
                " AND (status = ? OR (status = ? AND (lease_until IS NULL OR lease_until < ?)))",
                (image_id, user_id, PENDING, PROCESSING, now),
            ).fetchone()
            record = _record(row)
            if record is None:
                return None
            record = record.copy(status=PROCESSING, lease_until=lease_until, attempts=record.attempts + 1)
            conn.execute(
                "UPDATE images SET status = ?, lease_until = ?, body = ?, api = ? WHERE image_id = ?",
                (PROCESSING, lease_until, _body(record), _api(record), image_id),
            )
        return record

    def list(self, query: ListQuery) -> Page:
        """Newest first by image_id; every shape walks one index range in id order (no sort):
        the owner's ids, the owner's ids of one status, or the owner's ids of one tag, bounded
        by the cursor and by the ids the created_at range can hold. Raises BadRequest
        (``invalid_cursor``)."""
        sql, params = list_sql(query)
        rows = self.db.connection().execute(sql, params).fetchall()
        records = [_record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        cursor = encode_cursor(query.user_id, records[-1].image_id) if more else None  # type: ignore[union-attr]
        return Page(images=records, next_cursor=cursor)  # type: ignore[arg-type]

    def list_api(self, query: ListQuery) -> ApiPage:
        """The same page as ``list``, as the API's JSON text of each record, read as stored:
        no record is decoded (a row written before the column existed is rendered once here)."""
        sql, params = list_sql(query, columns=_SELECT_API)
        rows = self.db.connection().execute(sql, params).fetchall()
        documents = [row[0] if row[0] is not None else _api(_record(row[1:])) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        cursor = encode_cursor(query.user_id, rows[query.limit - 1][3]) if more else None
        return ApiPage(images=documents, next_cursor=cursor)

    def delete(self, user_id: str, image_id: str) -> bool:
        """Remove the record and release its bytes (size + extra_bytes) and image from the
        owner's usage; the creation rate window keeps counting it. A missing one is not an
        error (False)."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT size, extra_bytes FROM images WHERE image_id = ? AND user_id = ?", (image_id, user_id)
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM images WHERE image_id = ?", (image_id,))
            _add_usage(conn, user_id, -1, -(row["size"] + row["extra_bytes"]))
            return True

    def usage(self, user_id: str) -> Usage:
        """The owner's counters: one primary-key read."""
        return _usage(self.db.connection(), user_id)

    def add_bytes(self, user_id: str, image_id: str, delta: int, *, limit: int | None) -> bool:
        """Count ``delta`` more bytes (a conversion output) on the image and in the owner's
        usage, atomically. False, and nothing counted, when the owner would then hold more than
        ``limit`` bytes, or the image is gone."""
        with self.db.transaction() as conn:
            if limit is not None and delta > 0 and _usage(conn, user_id).bytes + delta > limit:
                return False
            changed = conn.execute(
                "UPDATE images SET extra_bytes = extra_bytes + ? WHERE image_id = ? AND user_id = ?",
                (delta, image_id, user_id),
            ).rowcount
            if not changed:
                return False
            _add_usage(conn, user_id, 0, delta)
        return True

    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        """Count ``cost`` in the fixed window of ``window_seconds``: None when the window's count
        stays within ``limit`` (and it is counted), else the seconds until the window ends
        (nothing counted)."""
        with self.db.transaction() as conn:
            return _hit(conn, user_id_or_bucket, name, limit, window_seconds, self.clock(), cost)

    def refund_rate(self, user_id_or_bucket: str, name: str, window_seconds: int, charged_at: float | None,
                    cost: int) -> None:
        start, _ = fixed_window(self.clock() if charged_at is None else charged_at, window_seconds)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE rate_counters SET count = max(0, count - ?) WHERE bucket = ? AND name = ? AND window_start = ?",
                (cost, user_id_or_bucket, name, start),
            )

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        rows = self.db.connection().execute(
            f"SELECT {_SELECT} FROM images i WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?", (now, limit)
        ).fetchall()
        return [_record(r) for r in rows]  # type: ignore[misc]

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        rows = self.db.connection().execute(
            f"SELECT {_SELECT} FROM images i WHERE status = 'pending' AND upload_expires_at < ? LIMIT ?", (now, limit)
        ).fetchall()
        return [_record(r) for r in rows]  # type: ignore[misc]

    # -- idempotency keys ---------------------------------------------------------------------

    def idempotency_begin(self, user_id: str, key: str, fingerprint: str, expires_at: str) -> IdempotencyEntry | None:
        """Take ``key`` for a request with this ``fingerprint`` until ``expires_at`` (ISO 8601).

        None: the caller now owns the key (an in-flight entry is stored). Otherwise the live
        entry someone stored before (in flight, or done with its response). Expired entries
        count as absent and are swept here.
        """
        now = epoch_to_iso(self.clock())
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            row = conn.execute(
                "SELECT fingerprint, state, response, image_id FROM idempotency WHERE user_id = ? AND key = ?",
                (user_id, key),
            ).fetchone()
            if row is not None:
                return IdempotencyEntry(
                    fingerprint=row["fingerprint"], state=row["state"],
                    response=jsontext.loads(row["response"]) if row["response"] else None, image_id=row["image_id"],
                )
            conn.execute(
                "INSERT INTO idempotency (user_id, key, fingerprint, state, expires_at) VALUES (?, ?, ?, ?, ?)",
                (user_id, key, fingerprint, IN_FLIGHT, expires_at),
            )
        return None

    def idempotency_finish(self, user_id: str, key: str, image_id: str, response: dict[str, Any]) -> None:
        """Store the answer of the request that owns ``key``; later requests get it back."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE idempotency SET state = ?, response = ?, image_id = ? WHERE user_id = ? AND key = ?",
                (DONE, jsontext.dumps(response), image_id, user_id, key),
            )

    def idempotency_abandon(self, user_id: str, key: str) -> None:
        """The owner of an in-flight key failed: free the key (a finished one stays)."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM idempotency WHERE user_id = ? AND key = ? AND state = ?", (user_id, key, IN_FLIGHT)
            )

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


def _usage(conn: sqlite3.Connection, user_id: str) -> Usage:
    row = conn.execute("SELECT images, bytes FROM usage WHERE user_id = ?", (user_id,)).fetchone()
    return Usage(images=row["images"], bytes=row["bytes"]) if row else Usage(images=0, bytes=0)


def _add_usage(conn: sqlite3.Connection, user_id: str, images: int, size: int) -> None:
    conn.execute(
        "INSERT INTO usage (user_id, images, bytes) VALUES (?, ?, ?) ON CONFLICT (user_id)"
        " DO UPDATE SET images = images + excluded.images, bytes = bytes + excluded.bytes",
        (user_id, images, size),
    )




def _hit(conn: sqlite3.Connection, bucket: str, name: str, limit: int | None, window: int, now: float,
         cost: int = 1) -> int | None:
    """``cost`` in the fixed window containing ``now``: None when counted, else seconds to wait
    (nothing counted). One statement: the update happens only within the limit."""
    start, left = fixed_window(now, window)
    if limit is not None and cost > limit:
        return left
    counted = conn.execute(
        "INSERT INTO rate_counters (bucket, name, window_start, count) VALUES (?, ?, ?, ?)"
        f" ON CONFLICT (bucket, name) DO UPDATE SET count = {_WINDOW_COUNT}, window_start = excluded.window_start"
        f" WHERE ? IS NULL OR {_WINDOW_COUNT} <= ? RETURNING count",
        (bucket, name, start, cost, limit, limit),
    ).fetchall()
    return None if counted else left


def _body(record: ImageRecord) -> str:
    return jsontext.dumps(record.to_dict())


def _api(record: ImageRecord) -> str:
    """The record as the API shows it to its owner: a list page is these, joined."""
    return jsontext.dumps(record.to_api())


def _columns(record: ImageRecord) -> tuple:
    return (
        record.image_id, record.user_id, record.status, record.created_at, record.expires_at,
        record.upload_expires_at, record.lease_until, record.size or 0, _body(record), _api(record),
    )


def _record(row) -> ImageRecord | None:
    if row is None:
        return None
    data = jsontext.loads(row[0])
    data["extra_bytes"] = row[1]
    return ImageRecord.from_dict(data)


def _write_tags(conn: sqlite3.Connection, record: ImageRecord) -> None:
    conn.execute("DELETE FROM image_tags WHERE image_id = ?", (record.image_id,))
    if record.tags:
        conn.execute(
            "INSERT OR IGNORE INTO image_tags (image_id, user_id, tag) VALUES "
            + ", ".join(["(?, ?, ?)"] * len(record.tags)),
            [value for tag in record.tags for value in (record.image_id, record.user_id, tag)],
        )
