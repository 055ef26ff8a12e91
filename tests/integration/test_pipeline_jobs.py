"""The pipeline over real SQLite and files: idempotency, retries, dead letters, leases, drops."""

import threading
from pathlib import Path

import pytest

import imagefactory
from imageservice.core import keys
from imageservice.core.errors import TransientError
from imageservice.core.records import Job


def _files(settings, prefix=""):
    root = Path(settings.data_dir) / "blobs"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).as_posix().startswith(prefix))


class FlakyPuts:
    """Fault injection around the real blob store: the first ``failures`` puts raise."""

    def __init__(self, store, failures):
        self.store, self.failures = store, failures

    def put(self, key, data, content_type):
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("storage briefly unavailable")
        return self.store.put(key, data, content_type)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_concurrent_jobs_for_one_object_process_it_once(api, components, settings):
    image_id = api.upload(imagefactory.jpeg_bytes(2400, 1800), process=False)
    key = keys.original_key("alice", image_id, False)
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(components.pipeline.process_key(key)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ready", "skipped", "skipped", "skipped"]
    record = components.catalog.get("alice", image_id)
    assert record.status == "ready" and record.attempts == 1
    assert len(_files(settings, "derivatives/")) == 2
    assert components.pipeline.process_key(key) == "skipped"  # a late duplicate changes nothing
    assert components.catalog.get("alice", image_id) == record


def test_transient_failures_are_retried_then_succeed(api, components):
    components.pipeline.blobs = FlakyPuts(components.blobs, failures=1)
    image_id = api.upload(imagefactory.png_bytes(100, 80), "image/png", "a.png", process=False)
    api.process()  # first attempt fails and is handed back with no delay (job_retry_delay=0)
    record = components.catalog.get("alice", image_id)
    assert record.status == "ready" and record.attempts == 2
    assert components.queue.dead_letters() == []


def test_last_attempt_dead_letters_and_the_record_says_why(api, components, settings):
    components.pipeline.blobs = FlakyPuts(components.blobs, failures=10**6)
    image_id = api.upload(imagefactory.png_bytes(100, 80), "image/png", "a.png", process=False)
    api.process()
    record = components.catalog.get("alice", image_id)
    assert record.status == "rejected"
    assert record.error["code"] == "processing_failed" and "unavailable" in record.error["message"]
    assert record.attempts == settings.job_max_attempts
    dead = components.queue.dead_letters()
    assert [job.key for job, _ in dead] == [record.original_key] and "TransientError" in dead[0][1]
    assert components.queue.depth() == 0


def test_a_lapsed_lease_can_be_reclaimed(api, components):
    image_id = api.upload(imagefactory.png_bytes(60, 40), "image/png", "a.png", process=False)
    catalog = components.catalog
    assert catalog.claim("alice", image_id, now="2020-01-01T00:00:00.000Z", lease_until="2020-01-01T00:02:00.000Z")
    # Someone else holds a live lease (in 2020 terms): a second claim then fails ...
    assert catalog.claim("alice", image_id, now="2020-01-01T00:01:00.000Z", lease_until="x") is None
    # ... and once the lease lapsed (the holder died), the next processor takes over.
    assert components.pipeline.process_key(keys.original_key("alice", image_id, False)) == "ready"


def test_image_deleted_during_processing_leaves_nothing(api, components, settings):
    image_id = api.upload(imagefactory.jpeg_bytes(640, 480), process=False)
    record = components.catalog.get("alice", image_id)
    original_put = components.blobs.put

    def put_then_delete(key, data, content_type):
        original_put(key, data, content_type)
        if key.endswith("thumb.webp"):
            components.service.remove(record)

    components.pipeline.blobs = type("Racing", (), {
        "put": staticmethod(put_then_delete), "__getattr__": lambda self, n: getattr(components.blobs, n)})()
    assert components.pipeline.process_key(record.original_key) == "skipped"
    assert _files(settings) == []
    assert components.catalog.get("alice", image_id) is None


def test_object_without_a_record_is_removed(components, settings):
    key = keys.original_key("alice", "01J00000000000000000000000", False)
    components.blobs.put(key, imagefactory.png_bytes(10, 10), "image/png")
    assert components.pipeline.process_key(key) == "skipped"
    assert _files(settings) == []


def test_objects_dropped_into_storage_are_adopted(components, settings):
    data = imagefactory.jpeg_bytes(500, 400)
    components.blobs.put("originals/alice/Holiday Photo.jpg", data, "image/jpeg")
    components.queue.send(Job("originals/alice/Holiday Photo.jpg", source="drop"))
    from imageservice.entrypoints.worker import Worker

    Worker(components).drain()
    page = components.catalog.list(__import__("imageservice.core.records", fromlist=["ListQuery"]).ListQuery("alice"))
    assert len(page.images) == 1
    record = page.images[0]
    assert record.status == "ready" and record.filename == "Holiday Photo.jpg"
    assert record.original_key == keys.original_key("alice", record.image_id, False)
    assert "originals/alice/Holiday Photo.jpg" not in _files(settings)
    assert components.pipeline.process_key("originals/alice/Holiday Photo.jpg") == "skipped"


@pytest.mark.parametrize("key", ["derivatives/alice/X/thumb.webp", "junk", "originals/../../etc/passwd"])
def test_keys_that_are_not_originals_are_ignored(components, key):
    assert components.pipeline.process_key(key) == "skipped"


def test_a_redelivery_after_a_crash_finds_the_lease_lapsed(tmp_path):
    """The worker that took a job claimed its record and died; the job's redelivery must win."""
    import time

    from imageservice.bootstrap import build_components
    from imageservice.pipeline import lease_before_redelivery
    from imageservice.core.timeutil import to_iso, utcnow
    from imageservice.entrypoints.worker import Worker
    from support import make_settings

    components = build_components(make_settings(tmp_path, job_visibility_timeout=2))
    from imageservice.auth import Principal
    from imageservice.commands import UploadCommand

    data = imagefactory.png_bytes(40, 40)
    ticket = components.service.create_upload(Principal("alice"), UploadCommand(content_type="image/png", size=len(data)))
    key = keys.original_key("alice", ticket.image_id, False)
    components.blobs.put(key, data, "image/png")
    components.service.upload_received(key)
    taken = components.queue.receive()[0]
    time.sleep(0.5)  # the dying worker claims a little after it received the job
    assert components.catalog.claim("alice", ticket.image_id, now=to_iso(utcnow()),
                                    lease_until=lease_before_redelivery(taken.visible_again_at))
    assert components.queue.receive() == []  # hidden while the dead worker's timeout runs
    time.sleep(max(0.0, taken.visible_again_at - time.time()) + 0.05)
    assert Worker(components).run_once() == 1
    assert components.catalog.get("alice", ticket.image_id).status == "ready"
    assert components.queue.depth() == 0


def test_tags_edited_during_processing_survive(api, components):
    image_id = api.upload(imagefactory.jpeg_bytes(800, 600), process=False, tags=["before"])
    original_put = components.blobs.put

    def put_then_edit(key, data, content_type):
        original_put(key, data, content_type)
        if key.endswith("thumb.webp"):
            assert api.call("PATCH", f"/api/images/{image_id}", json={"tags": ["after"]}).status_code == 200

    components.pipeline.blobs = type("Editing", (), {
        "put": staticmethod(put_then_edit), "__getattr__": lambda self, n: getattr(components.blobs, n)})()
    assert components.pipeline.process_key(keys.original_key("alice", image_id, False)) == "ready"
    record = api.image(image_id)
    assert record["status"] == "ready" and record["tags"] == ["after"]
