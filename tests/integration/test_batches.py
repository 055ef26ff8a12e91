"""Batches through the API, embedded mode (docs/DESIGN.md "Batches"): a ZIP of originals and one
of conversions made by the job, items reported per image, the limits, cancel, another owner's
batch, and bulk delete."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

import imagefactory
from support import ApiClient, assert_error, in_process_clients, make_settings, served_in_mode


@pytest.fixture(params=["local", "aws"])
def service(request, tmp_path):
    components, _, (owner, other) = served_in_mode(request, tmp_path, "alice", "bob", batch_max_images=4,
                                                   batches_per_hour=3)
    return owner, other, components


def _batch(api: ApiClient, **body) -> dict:
    response = api.call("POST", "/api/batches", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _archive(api: ApiClient, batch_id: str) -> tuple[dict, zipfile.ZipFile]:
    api.process()
    answer = api.call("GET", f"/api/batches/{batch_id}").get_json()
    assert answer["status"] == "ready", answer
    fetched = api.fetch(answer["download_url"])
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "application/zip"
    assert answer["download_url"] and "images-" in fetched.headers["Content-Disposition"]
    return answer, zipfile.ZipFile(io.BytesIO(fetched.data))


def test_a_zip_of_originals_skips_what_is_not_the_callers_or_not_ready(service):
    owner, other, _ = service
    first = owner.upload(imagefactory.jpeg_bytes(320, 240), filename="sea.jpg")
    second = owner.upload(imagefactory.jpeg_bytes(320, 240), filename="sea.jpg")
    theirs = other.upload(imagefactory.jpeg_bytes(64, 48), filename="bob.jpg")
    pending = owner.ticket(content_type="image/png", size=100, filename="later.png")["image_id"]
    batch = _batch(owner, action="zip", image_ids=[first, second, theirs, pending])
    assert (batch["status"], batch["total"], batch["done"]) == ("queued", 4, 2)
    answer, archive = _archive(owner, batch["batch_id"])
    assert sorted(archive.namelist()) == ["sea (2).jpg", "sea.jpg"] and archive.testzip() is None
    statuses = {item["image_id"]: (item["status"], (item["error"] or {}).get("code")) for item in answer["items"]}
    assert statuses == {first: ("done", None), second: ("done", None), theirs: ("skipped", "image_not_found"),
                        pending: ("skipped", "not_ready")}
    assert answer["bytes"] > 0 and owner.call("GET", "/api/me").get_json()["usage"]["bytes"] >= answer["bytes"]
    assert_error(other.call("GET", f"/api/batches/{batch['batch_id']}"), 404, "batch_not_found")
    assert_error(other.call("DELETE", f"/api/batches/{batch['batch_id']}"), 404, "batch_not_found")


def test_a_convert_batch_packs_one_conversion_of_each(service):
    owner, _, _ = service
    ids = [owner.upload(imagefactory.jpeg_bytes(640, 480), filename=f"p{n}.jpg") for n in range(3)]
    batch = _batch(owner, action="convert", image_ids=ids, convert={"format": "webp", "width": 320})
    _, archive = _archive(owner, batch["batch_id"])
    assert sorted(archive.namelist()) == ["p0.webp", "p1.webp", "p2.webp"]
    for name in archive.namelist():
        image = Image.open(io.BytesIO(archive.read(name)))
        assert image.format == "WEBP" and image.width == 320


def _a_ready_zip(owner: ApiClient) -> tuple[int, dict]:
    """The owner's byte usage before, and a ready batch of one new image's original."""
    image = owner.upload(imagefactory.jpeg_bytes(320, 240), filename="a.jpg")
    before = owner.call("GET", "/api/me").get_json()["usage"]["bytes"]
    batch = _batch(owner, action="zip", image_ids=[image])
    _archive(owner, batch["batch_id"])
    return before, batch


def test_cancel_removes_the_archive_and_gives_its_bytes_back(service):
    owner, _, components = service
    before, batch = _a_ready_zip(owner)
    assert owner.call("DELETE", f"/api/batches/{batch['batch_id']}").status_code == 204
    assert owner.call("GET", f"/api/batches/{batch['batch_id']}").get_json()["status"] == "cancelled"
    assert owner.call("GET", "/api/me").get_json()["usage"]["bytes"] == before
    assert not [key for key in _all_keys(components) if key.endswith(".zip")]


@pytest.mark.parametrize("body, status, code", [
    ({"action": "zip", "image_ids": [f"01J{n:023d}" for n in range(5)]}, 413, "batch_too_large"),
    ({"action": "zip", "image_ids": []}, 400, "invalid_parameter"),
    ({"action": "rotate", "image_ids": ["x"]}, 400, "invalid_parameter"),
    ({"action": "convert", "image_ids": ["x"]}, 400, "invalid_parameter"),
    ({"action": "zip", "image_ids": ["x"], "convert": {"format": "png"}}, 400, "invalid_parameter"),
    ({"action": "convert", "image_ids": ["x"], "convert": {"format": "heic"}}, 400, "invalid_parameter"),
])
def test_malformed_or_oversized_batches_are_refused(service, body, status, code):
    owner, _, _ = service
    assert_error(owner.call("POST", "/api/batches", json=body), status, code)


def test_batches_per_hour_is_a_window(service):
    owner, _, _ = service
    image = owner.upload(imagefactory.jpeg_bytes(64, 48), filename="a.jpg")
    for _ in range(3):
        _batch(owner, action="zip", image_ids=[image])
    refused = owner.call("POST", "/api/batches", json={"action": "zip", "image_ids": [image]})
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1


def test_batch_max_bytes_refuses_originals_that_cannot_fit(tmp_path):
    _, _, (owner,) = in_process_clients(make_settings(tmp_path, batch_max_bytes=1000), "alice")
    image = owner.upload(imagefactory.jpeg_bytes(320, 240), filename="a.jpg")
    assert_error(owner.call("POST", "/api/batches", json={"action": "zip", "image_ids": [image]}), 422,
                 "batch_too_large")


def test_bulk_delete_removes_the_callers_images_only(service):
    owner, other, _ = service
    mine = [owner.upload(imagefactory.jpeg_bytes(64, 48), filename=f"{n}.jpg") for n in range(2)]
    theirs = other.upload(imagefactory.jpeg_bytes(64, 48), filename="b.jpg")
    answer = owner.call("POST", "/api/images/delete", json={"image_ids": [*mine, theirs, "nonsense"]})
    assert answer.status_code == 200
    assert answer.get_json() == {"deleted": mine, "not_found": [theirs, "nonsense"]}
    assert other.image(theirs)["status"] == "ready"
    assert_error(owner.call("POST", "/api/images/delete", json={"image_ids": []}), 400, "invalid_parameter")


def _all_keys(components) -> list[str]:
    """Every object key of the blob store, either mode."""
    if components.settings.backend == "aws":
        s3 = components.aws_clients.s3
        return [o["Key"] for o in s3.list_objects_v2(Bucket=components.settings.bucket).get("Contents", [])]
    root = components.settings.data_path / "blobs"
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


def test_a_convert_batch_reuses_what_an_equal_convert_call_made(service):
    owner, _, components = service
    image = owner.upload(imagefactory.jpeg_bytes(640, 480), filename="kept.jpg")
    made = owner.call("POST", f"/api/images/{image}/convert", json={"format": "png", "width": 200}).get_json()
    single = owner.fetch(made["download_url"]).data
    converted = []
    runner = components.batch_runner
    real_convert = runner.imaging.convert
    runner.imaging.convert = lambda *args, **kwargs: converted.append(1) or real_convert(*args, **kwargs)
    try:
        batch = _batch(owner, action="convert", image_ids=[image], convert={"format": "png", "width": 200})
        _, archive = _archive(owner, batch["batch_id"])
    finally:
        runner.imaging.convert = real_convert
    assert archive.read("kept.png") == single and converted == []  # the stored output, not a new one


def test_the_sweep_cancels_an_ended_batch_removing_its_archive_and_giving_its_bytes_back(service):
    owner, _, components = service
    before, batch = _a_ready_zip(owner)
    ready = components.catalog.get_batch("alice", batch["batch_id"])
    assert components.service.sweep_batches("2020-01-01T00:00:00.000Z") == 0  # not ended yet
    assert ready.status == "ready" and components.service.sweep_batches(ready.expires_at) == 1
    assert owner.call("GET", f"/api/batches/{batch['batch_id']}").get_json()["status"] == "cancelled"
    assert owner.call("GET", "/api/me").get_json()["usage"]["bytes"] == before
    assert not [key for key in _all_keys(components) if key.endswith(".zip")]


def test_a_batch_answers_every_field_and_ends_failed_when_the_archive_would_pass_the_quota(tmp_path):
    image_size = len(imagefactory.jpeg_bytes(320, 240))
    _, _, (owner,) = in_process_clients(make_settings(tmp_path, quota_bytes=image_size + 100), "alice")
    image = owner.upload(imagefactory.jpeg_bytes(320, 240), filename="a.jpg")
    batch = _batch(owner, action="zip", image_ids=[image])
    assert set(batch) == {"batch_id", "action", "status", "total", "done", "items", "download_url", "expires_at",
                          "bytes"}
    owner.process()
    failed = owner.call("GET", f"/api/batches/{batch['batch_id']}").get_json()
    assert failed["status"] == "failed" and failed["download_url"] is None and failed["bytes"] == 0
    assert {item["error"]["code"] for item in failed["items"]} == {"quota_exceeded"}
    assert owner.call("GET", "/api/me").get_json()["usage"]["bytes"] == image_size
