"""Quotas and rates hold under concurrency: the counters change in the same atomic write as the
record, so 40 simultaneous uploads against room for 10 make exactly 10, in both catalogs
(SQLite: threads of one process and two processes; DynamoDB: threads against a moto server
that, like DynamoDB, makes each write atomic)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aws_fixtures import serial_moto_server, unique_names  # noqa: F401
from support import make_settings
from imageservice.adapters.sqlite.store import SqliteStore
from imageservice.catalog import Catalog
from imageservice.bootstrap import build_components
from imageservice.core.errors import Conflict, TooManyRequests
from imageservice.core.ids import new_id
from imageservice.core.records import ImageRecord, OwnerLimits, Usage
from imageservice.core.timeutil import to_iso, utcnow
from imageservice.web import create_app

REQUESTS = 40
ROOM = 10
HELD = 5
RATE_WINDOW_SECONDS = 60  # uploads_per_minute counts in fixed windows of a minute
WINDOW_MARGIN_SECONDS = 15  # more than the held records and the 40 requests take, loaded


def _inside_one_rate_window() -> None:
    """Start where the rest of the test fits in the current fixed window: a burst that crossed
    a window's end would meet an empty counter and admit up to twice the room."""
    left = RATE_WINDOW_SECONDS - time.time() % RATE_WINDOW_SECONDS
    if left < WINDOW_MARGIN_SECONDS:
        time.sleep(left + 0.1)


def _pending(user_id: str = "alice", size: int = 100) -> ImageRecord:
    image_id = new_id()
    return ImageRecord(image_id=image_id, user_id=user_id, size=size, created_at=to_iso(utcnow()),
                       original_key=f"originals/{user_id}/{image_id}")


def _upload_concurrently(app, token: str) -> list[int]:
    def one(_):
        client = app.test_client()  # one client per thread, as separate connections would be
        response = client.post("/api/images/upload", json={"content_type": "image/png", "size": 100},
                               headers={"Authorization": f"Bearer {token}"})
        return response.status_code, (response.get_json() or {}).get("error", {}).get("code")

    with ThreadPoolExecutor(REQUESTS) as pool:
        return list(pool.map(one, range(REQUESTS)))


@pytest.fixture(params=["local", "aws"])
def settings_of(request, tmp_path):
    """Settings for a fresh catalog of each kind, with the given limits."""
    if request.param == "local":
        return lambda **limits: make_settings(tmp_path, **limits)
    from imageservice.adapters.aws.factory import build_aws_adapters
    from imageservice.adapters.aws.setup import setup_resources

    moto = request.getfixturevalue("serial_moto_server")

    def aws(**limits):
        settings = make_settings(tmp_path, **unique_names(moto.endpoint).settings_values(moto.endpoint), **limits)
        list(setup_resources(settings, build_aws_adapters(settings)[3]))
        return settings
    return aws


@pytest.mark.parametrize("limit", ["quota_images", "uploads_per_minute"])
def test_forty_concurrent_uploads_with_room_for_ten_make_exactly_ten(settings_of, limit):
    values = {"quota_images": HELD + ROOM, "uploads_per_minute": 10_000}
    if limit == "uploads_per_minute":
        values.update(quota_images=10_000, uploads_per_minute=HELD + ROOM)
    components = build_components(settings_of(**values))
    _inside_one_rate_window()
    for _ in range(HELD):
        components.catalog.create(_pending(), limits=OwnerLimits(10_000, 10**12, 10_000))
    token = components.service.create_token("alice")

    outcomes = _upload_concurrently(create_app(components=components), token)

    expected_refusal = (409, "quota_exceeded") if limit == "quota_images" else (429, "rate_limited")
    assert sorted(outcomes, key=str) == sorted([(201, None)] * ROOM + [expected_refusal] * (REQUESTS - ROOM), key=str)
    assert components.catalog.usage("alice") == Usage(images=HELD + ROOM, bytes=(HELD + ROOM) * 100)


def _create_in_process(path: str, start, results) -> None:
    catalog = Catalog(SqliteStore(Path(path)))
    limits = OwnerLimits(images=HELD + ROOM, bytes=10**9, per_minute=10_000)
    start.wait()

    def one(_):
        try:
            catalog.create(_pending(), limits=limits)
            return "created"
        except Conflict as exc:
            return exc.code
        except TooManyRequests as exc:
            return exc.code

    with ThreadPoolExecutor(REQUESTS // 2) as pool:
        results.extend(list(pool.map(one, range(REQUESTS // 2))))


def test_two_processes_share_one_sqlite_quota(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    catalog = Catalog(SqliteStore(path))
    for _ in range(HELD):
        catalog.create(_pending())
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start, results = manager.Event(), manager.list()
        workers = [context.Process(target=_create_in_process, args=(str(path), start, results)) for _ in range(2)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        outcomes = list(results)
    assert sorted(outcomes) == sorted(["created"] * ROOM + ["quota_exceeded"] * (REQUESTS - ROOM))
    assert catalog.usage("alice") == Usage(images=HELD + ROOM, bytes=(HELD + ROOM) * 100)
