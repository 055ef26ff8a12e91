"""Issue 11 item 3: POST /api/images/upload honours an Idempotency-Key, per owner, for 24 h."""

import threading
import time
from datetime import timedelta

import pytest

import imagefactory
from support import ApiClient, assert_error
from imageservice.core.timeutil import utcnow

BODY = {"content_type": "image/png", "size": 120, "filename": "a.png", "tags": ["x"]}


def upload(api, key, body=BODY, client=None):
    headers = {**api.headers, "Idempotency-Key": key}
    return (client or api.client).post("/api/images/upload", json=body, headers=headers)


def image_ids(api) -> list[str]:
    return [r["image_id"] for r in api.call("GET", "/api/images").get_json()["images"]]


def test_same_key_same_body_answers_the_same_image(api):
    first = upload(api, "order-42")
    again = upload(api, "order-42")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert image_ids(api) == [first.get_json()["image_id"]]
    # Another key is another upload.
    assert upload(api, "order-43").get_json()["image_id"] != first.get_json()["image_id"]


def test_same_key_another_body_is_422(api):
    assert upload(api, "k1").status_code == 201
    assert_error(upload(api, "k1", {**BODY, "size": 121}), 422, "idempotency_key_reused")
    assert len(image_ids(api)) == 1


def test_keys_are_per_owner(client, components, api):
    bob = ApiClient(client, components.service.create_token("bob"))
    mine, his = upload(api, "shared"), upload(bob, "shared")
    assert mine.status_code == his.status_code == 201
    assert mine.get_json()["image_id"] != his.get_json()["image_id"]


def test_an_expired_unused_url_is_renewed_for_the_same_record(api, components):
    first = upload(api, "retry-late").get_json()
    service = components.service
    shifted = utcnow() + timedelta(seconds=components.settings.upload_url_ttl + 5)
    service.clock = lambda: shifted
    time.sleep(1.1)  # URLs carry whole seconds: the renewed one differs from the first
    later = upload(api, "retry-late")
    assert later.status_code == 201
    renewed = later.get_json()
    assert renewed["image_id"] == first["image_id"] and renewed["upload_url"] != first["upload_url"]
    # The record got the new URL's lifetime, so the sweeper leaves it alone.
    record = components.catalog.get("alice", first["image_id"])
    assert record.status == "pending" and record.upload_expires_at > shifted.isoformat()[:19]
    service.clock = utcnow
    # The renewed URL takes the bytes (exactly the signed size), and only once.
    payload = b"\x89PNG" + b"\0" * (BODY["size"] - 4)
    assert api.put(renewed, payload).status_code == 200
    assert api.put(renewed, payload).status_code == 409
    assert image_ids(api).count(first["image_id"]) == 1


def test_after_the_upload_a_repeat_still_names_the_same_image(api, worker):
    data = imagefactory.png_bytes(8, 8)
    body = {**BODY, "size": len(data)}
    ticket = upload(api, "done-key", body).get_json()
    assert api.put(ticket, data).status_code == 200
    worker.drain()
    repeat = upload(api, "done-key", body)
    assert repeat.status_code == 201 and repeat.get_json()["image_id"] == ticket["image_id"]
    assert len(image_ids(api)) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_malformed_keys_are_400(api, key):
    assert_error(upload(api, key), 400, "invalid_idempotency_key")
    assert image_ids(api) == []


def test_a_failed_first_request_frees_the_key(api):
    assert_error(upload(api, "k", {**BODY, "content_type": "text/html"}), 415, "unsupported_format")
    assert upload(api, "k", {**BODY, "content_type": "text/html"}).status_code == 415  # not remembered
    assert upload(api, "k").status_code == 201


def test_concurrent_requests_with_one_key_make_one_record(app, api, components):
    """Eight threads, one key, a slow first request: one record; the others answer the same
    image or 409 idempotency_key_in_flight, never a second image."""
    blobs = components.blobs
    presign = blobs.presign_upload

    def slow_presign(*args, **kwargs):
        time.sleep(0.4)  # widen the window in which the first request holds the key
        return presign(*args, **kwargs)

    blobs.presign_upload = slow_presign
    start = threading.Barrier(8)
    answers = []

    def one():
        client = app.test_client()
        start.wait()
        response = upload(api, "burst", client=client)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    blobs.presign_upload = presign
    assert len(answers) == 8
    created = {body["image_id"] for status, body in answers if status == 201}
    in_flight = [body for status, body in answers if status == 409]
    assert len(created) == 1, answers
    assert all(body["error"]["code"] == "idempotency_key_in_flight" for body in in_flight), answers
    assert len(in_flight) >= 1  # the window was real
    assert image_ids(api) == list(created)
    # Once the first finished, a repeat gets its answer.
    assert upload(api, "burst").get_json()["image_id"] in created


def test_a_key_lives_idempotency_ttl_seconds(tmp_path):
    from imageservice.bootstrap import build_components
    from imageservice.web import create_app
    from support import make_settings

    components = build_components(make_settings(tmp_path, idempotency_ttl=60))
    api = ApiClient(create_app(components=components).test_client(), components.service.create_token("alice"))
    first = upload(api, "short-lived").get_json()
    components.catalog.clock = lambda: time.time() + 59
    assert_error(upload(api, "short-lived", {**BODY, "size": 7}), 422, "idempotency_key_reused")
    components.catalog.clock = lambda: time.time() + 61
    later = upload(api, "short-lived", {**BODY, "size": 7})
    assert later.status_code == 201 and later.get_json()["image_id"] != first["image_id"]
