"""The pipeline re-checks the byte quota (IMAGESERVICE_QUOTA_BYTES) against the real size, over
SQLite and the real worker: an object dropped straight into storage skipped the upload request's
check, so only the pipeline can hold it to the quota."""

from __future__ import annotations

import imagefactory
from support import make_settings

from imageservice.bootstrap import build_components
from imageservice.core.records import Job, ListQuery
from imageservice.entrypoints.worker import Worker


def _drop(tmp_path, quota_bytes: int, data: bytes) -> dict:
    components = build_components(make_settings(tmp_path, quota_bytes=quota_bytes))
    components.blobs.put("originals/alice/holiday.png", data, "image/png")
    components.queue.send(Job("originals/alice/holiday.png", source="upload"))
    Worker(components).drain()
    [record] = components.catalog.list(ListQuery(user_id="alice", limit=10)).images
    return {"record": record, "components": components}


def test_an_object_past_the_byte_quota_is_rejected_quota_exceeded(tmp_path):
    data = imagefactory.png_bytes(200, 150)
    outcome = _drop(tmp_path, quota_bytes=len(data) - 1, data=data)
    record = outcome["record"]
    assert record.status == "rejected" and record.error["code"] == "quota_exceeded"
    blobs = outcome["components"].blobs
    assert blobs.size(record.original_key) is None and not (tmp_path / "data" / "blobs" / "derivatives").exists()


def test_an_object_exactly_at_the_byte_quota_is_ready(tmp_path):
    data = imagefactory.png_bytes(200, 150)
    assert _drop(tmp_path, quota_bytes=len(data), data=data)["record"].status == "ready"
