"""A worker killed mid-work loses nothing and duplicates nothing: its jobs come back after the
visibility timeout and the pipeline's lease lets the next run take them over."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import requests

import imagefactory
from imageservice.bootstrap import build_components
from imageservice.core.records import ListQuery
from imageservice.auth import Principal
from imageservice.commands import UploadCommand
from imageservice.settings import Settings
from servers import ServerProcess, imageservice, service_env, start_service

VISIBILITY = "2"


def _settings(data_dir: Path) -> Settings:
    return Settings.from_env(service_env(data_dir, 8000, IMAGESERVICE_JOB_VISIBILITY_TIMEOUT=VISIBILITY))


def _queue_upload(components, count: int) -> list[str]:
    ids = []
    for n in range(count):
        data = imagefactory.jpeg_bytes(1600, 1200, color=(n * 7 % 255, 90, 140))
        ticket = components.service.create_upload(Principal("alice"), UploadCommand(content_type="image/jpeg", size=len(data)))
        key = f"originals/alice/{ticket.image_id}"
        components.blobs.put(key, data, "image/jpeg")
        components.service.upload_received(key)
        ids.append(ticket.image_id)
    return ids


def _records(components):
    return components.catalog.list(ListQuery("alice", limit=100)).images


def _in_flight(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "queue.sqlite3") as conn:
        return conn.execute("SELECT COUNT(*) FROM jobs WHERE attempts > 0 AND dead = 0").fetchone()[0]


def _derivative_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs" / "derivatives").rglob("*") if p.is_file()]


def _wait_all_ready(components, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = _records(components)
        if all(r.status == "ready" for r in records):
            return records
        time.sleep(0.2)
    raise AssertionError({r.image_id: r.status for r in _records(components)})


def _worker_after_first_ready(tmp_path, count: int):
    """Queue ``count`` uploads, start a worker, and return once it finished its first job."""
    data_dir = tmp_path / "data"
    components = build_components(_settings(data_dir))
    ids = _queue_upload(components, count)
    env = service_env(data_dir, 8000, IMAGESERVICE_JOB_VISIBILITY_TIMEOUT=VISIBILITY)
    worker = ServerProcess(imageservice("worker"), env, tmp_path / "worker1.log").start()
    deadline = time.monotonic() + 30
    while not any(r.status == "ready" for r in _records(components)):
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.01)
    return data_dir, components, ids, env, worker


def test_sigkill_mid_batch_then_restart(tmp_path):
    data_dir, components, ids, env, worker = _worker_after_first_ready(tmp_path, 24)
    worker.signal(signal.SIGKILL)
    worker.process.wait(5)
    in_flight = _in_flight(data_dir)
    assert in_flight > 0, "the kill should have caught jobs received but not yet acked"
    assert any(r.status != "ready" for r in _records(components))

    with ServerProcess(imageservice("worker"), env, tmp_path / "worker2.log"):
        records = _wait_all_ready(components, timeout=60)
    assert sorted(r.image_id for r in records) == sorted(ids)
    assert len(_derivative_files(data_dir)) == 2 * len(ids)
    assert _in_flight(data_dir) == 0 and components.queue.depth() == 0


def test_sigterm_finishes_the_current_job_and_exits(tmp_path):
    data_dir, components, ids, env, worker = _worker_after_first_ready(tmp_path, 12)
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(20) == 0, worker.log()
    assert not any(r.status == "processing" and r.lease_until is None for r in _records(components))
    with ServerProcess(imageservice("worker"), env, tmp_path / "worker2.log"):
        records = _wait_all_ready(components, timeout=60)
    assert len(records) == len(ids) and len(_derivative_files(data_dir)) == 2 * len(ids)


def test_server_sigterm_mid_work_then_restart(tmp_path):
    data_dir = tmp_path / "data"
    extra = {"IMAGESERVICE_JOB_VISIBILITY_TIMEOUT": VISIBILITY}
    server, base = start_service(data_dir, tmp_path / "serve1.log", **extra)
    components = build_components(_settings(data_dir))
    ids = _queue_upload(components, 16)
    while not any(r.status == "ready" for r in _records(components)):
        time.sleep(0.01)
    server.stop()
    server2, base2 = start_service(data_dir, tmp_path / "serve2.log", **extra)
    try:
        records = _wait_all_ready(components, timeout=60)
        assert requests.get(f"{base2}/readyz", timeout=5).status_code == 200
    finally:
        server2.stop()
    assert len(records) == len(ids) and len(_derivative_files(data_dir)) == 2 * len(ids)
