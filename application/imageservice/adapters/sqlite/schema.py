"""The catalog's tables in SQLite, and bringing a file made by an earlier version up to date.

Tables hold data only: every rule (quota, rate windows, idempotency, the lease) is applied by
the catalog's use cases (imageservice/catalog/) on values read through the repositories, and
each row carries a ``version`` its next write must name (docs/DESIGN.md "Unit of work").
"""

from __future__ import annotations

import sqlite3

from ...core.quota import usage_key
from ...core.ratewindow import rate_key
from .database import table_exists

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
    body TEXT NOT NULL,
    extra_bytes INTEGER NOT NULL DEFAULT 0,
    api TEXT,
    version INTEGER NOT NULL DEFAULT 0
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
    admin INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS counters_by_expiry ON counters (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS idempotency (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    response TEXT,
    image_id TEXT,
    expires_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    parent TEXT,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS documents_by_parent ON documents (kind, parent, key) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS documents_by_expiry ON documents (expires_at) WHERE expires_at IS NOT NULL
"""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a catalog made by an earlier version up to date (runs inside the schema's write
    transaction, before the CREATE ... IF NOT EXISTS statements)."""
    # The creation trigger of the versions before the unit of work held the quota and rate
    # rules in SQL; those live in core now.
    conn.execute("DROP TRIGGER IF EXISTS image_creations_insert")
    conn.execute("DROP VIEW IF EXISTS image_creations")
    if not table_exists(conn, "images"):
        return  # a new database: the schema makes everything
    _add_columns(conn, "images", {
        "extra_bytes": "INTEGER NOT NULL DEFAULT 0",
        "api": "TEXT",  # filled as records are written; list_api renders rows without it
        "version": "INTEGER NOT NULL DEFAULT 0",
    })
    _add_columns(conn, "tokens", {"version": "INTEGER NOT NULL DEFAULT 0"})
    if table_exists(conn, "idempotency"):
        _add_columns(conn, "idempotency", {"version": "INTEGER NOT NULL DEFAULT 0"})
    # Time filters are image_id ranges now; this index only tempted the planner into sorting.
    conn.execute("DROP INDEX IF EXISTS images_by_owner_created")
    # Owners without a usage counter are counted from their records when first met, so only
    # the counters an earlier version kept need carrying over.
    conn.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                 " version INTEGER NOT NULL, expires_at REAL)")
    if table_exists(conn, "usage"):
        for user_id, images, size in conn.execute("SELECT user_id, images, bytes FROM usage").fetchall():
            conn.execute("INSERT OR IGNORE INTO counters (key, value, version) VALUES (?, json_object("
                         "'images', ?, 'bytes', ?), 0)", (usage_key(user_id), images, size))
        conn.execute("DROP TABLE usage")
    if table_exists(conn, "rate_counters"):
        for bucket, name, start, count in conn.execute(
                "SELECT bucket, name, window_start, count FROM rate_counters").fetchall():
            conn.execute("INSERT OR IGNORE INTO counters (key, value, version) VALUES (?, json_object("
                         "'start', ?, 'count', ?), 0)", (rate_key(bucket, name), start, count))
        conn.execute("DROP TABLE rate_counters")


def _add_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, definition in columns.items():
        if name not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
