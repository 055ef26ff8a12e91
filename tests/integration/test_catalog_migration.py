"""An existing data dir keeps working: a catalog made before the usage counters opens, gains
its new columns and indexes, and its owners' usage is counted from their records; one made
with the creation trigger keeps its counters and loses the trigger."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from imageservice.adapters.sqlite.store import SqliteStore
from imageservice.catalog import Catalog
from imageservice.core.errors import TooManyRequests
from imageservice.core.ids import new_id
from imageservice.core.records import CREATE_RATE, ImageRecord, ListQuery, OwnerLimits, Usage

# The schema as it was before the counters (images + tags + tokens).
OLD_SCHEMA = """
CREATE TABLE images (
    image_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT, upload_expires_at TEXT, lease_until TEXT, size INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL
);
CREATE INDEX images_by_owner ON images (user_id, image_id DESC);
CREATE INDEX images_by_owner_created ON images (user_id, created_at);
CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images (image_id) ON DELETE CASCADE, user_id TEXT NOT NULL,
    tag TEXT NOT NULL, PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_by_owner_tag ON image_tags (user_id, tag, image_id DESC);
CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, admin INTEGER NOT NULL DEFAULT 0);
"""


def test_an_old_catalog_is_migrated_and_its_usage_backfilled(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    old = []
    for owner, size in (("alice", 100), ("alice", 250), ("bob", 7)):
        image_id = new_id()
        body = {"image_id": image_id, "user_id": owner, "status": "ready", "size": size,
                "created_at": "2024-05-01T12:00:00.000Z", "cdn_url": "a field since removed"}
        conn.execute("INSERT INTO images (image_id, user_id, status, created_at, size, body) VALUES (?, ?, ?, ?, ?, ?)",
                     (image_id, owner, "ready", body["created_at"], size, json.dumps(body)))
        old.append(image_id)
    conn.commit()
    conn.close()

    catalog = Catalog(SqliteStore(path))
    assert catalog.usage("alice") == Usage(images=2, bytes=350)
    assert catalog.usage("bob") == Usage(images=1, bytes=7)
    assert [r.image_id for r in catalog.list(ListQuery(user_id="alice")).images] == [old[1], old[0]]
    # Rows from before the API text column are rendered from their body, cursor and all.
    api = catalog.list_api(ListQuery(user_id="alice", limit=1))
    assert [json.loads(text) for text in api.images] == [catalog.get("alice", old[1]).to_api()]
    assert api.next_cursor == catalog.list(ListQuery(user_id="alice", limit=1)).next_cursor
    assert catalog.get("alice", old[0]).extra_bytes == 0
    assert catalog.add_bytes("alice", old[0], 50, limit=None)
    new = ImageRecord(image_id=new_id(), user_id="alice", size=1, created_at="2024-05-02T00:00:00.000Z")
    catalog.create(new, limits=OwnerLimits(images=3, bytes=10_000, per_minute=10))
    catalog.delete("alice", old[0])
    assert catalog.usage("alice") == Usage(images=2, bytes=251)

    # Opening it again (another process, a restart) changes nothing more.
    assert Catalog(SqliteStore(path)).usage("alice") == Usage(images=2, bytes=251)
    indexes = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "images_by_owner_created" not in indexes and "images_by_owner_status" in indexes


# What the version before the unit of work added: counters in tables of their own, and a
# creation trigger that held the quota and rate rules in SQL.
TRIGGER_ERA = """
CREATE TABLE usage (user_id TEXT PRIMARY KEY, images INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE rate_counters (bucket TEXT NOT NULL, name TEXT NOT NULL, window_start INTEGER NOT NULL,
                            count INTEGER NOT NULL, PRIMARY KEY (bucket, name));
CREATE VIEW image_creations AS SELECT NULL AS image_id;
CREATE TRIGGER image_creations_insert INSTEAD OF INSERT ON image_creations BEGIN SELECT 1; END;
"""


def test_a_catalog_of_the_trigger_era_keeps_its_counts_and_loses_its_trigger(tmp_path):
    """The counters it kept carry over (a usage that differs from a count of the records shows
    they were carried, not counted again), and no trigger or view holding rules is left."""
    path = tmp_path / "catalog.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA + TRIGGER_ERA)
    conn.execute("INSERT INTO usage VALUES ('alice', 4, 900)")
    window = int(time.time() // 60) * 60
    conn.execute("INSERT INTO rate_counters VALUES ('alice', ?, ?, 2)", (CREATE_RATE, window))
    conn.commit()
    conn.close()

    catalog = Catalog(SqliteStore(path))
    assert catalog.usage("alice") == Usage(images=4, bytes=900)
    limits = OwnerLimits(images=10, bytes=10_000, per_minute=3)
    catalog.create(ImageRecord(image_id=new_id(), user_id="alice", size=5, tags=["a"],
                               created_at="2024-05-02T00:00:00.000Z"), limits=limits)
    assert catalog.usage("alice") == Usage(images=5, bytes=905)
    assert len(catalog.list(ListQuery(user_id="alice", tag="a")).images) == 1
    if int(time.time() // 60) * 60 == window:  # still the carried window: the third of three
        with pytest.raises(TooManyRequests):
            catalog.create(ImageRecord(image_id=new_id(), user_id="alice", size=5,
                                       created_at="2024-05-02T00:00:00.000Z"), limits=limits)
    objects = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'view', 'table')")}
    assert not objects & {"image_creations", "image_creations_insert", "usage", "rate_counters"}, objects
