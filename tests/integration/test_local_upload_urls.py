"""The local blob endpoint enforces what an upload URL signed, as S3 does for presigned URLs."""

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

import imagefactory
from support import assert_error


def _path(url: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query))


@pytest.fixture
def data():
    return imagefactory.png_bytes(64, 48)


@pytest.fixture
def ticket(api, data):
    return api.ticket(content_type="image/png", size=len(data), filename="x.png")


def test_signed_upload_succeeds_once_per_constraints(api, ticket, data, components):
    assert api.put(ticket, data).status_code == 200
    assert components.queue.depth() == 1


def test_wrong_content_type_is_refused(client, ticket, data):
    path, query = _path(ticket["upload_url"])
    response = client.put(f"{path}?{urlencode(query)}", data=data, headers={"Content-Type": "text/html"})
    assert_error(response, 415, "content_type_mismatch")


def test_other_length_is_refused(client, ticket, data):
    path, query = _path(ticket["upload_url"])
    response = client.put(f"{path}?{urlencode(query)}", data=data + b"extra", headers={"Content-Type": "image/png"})
    assert_error(response, 403, "content_length_mismatch")


def test_tampered_signature_and_other_key_are_refused(client, ticket, data):
    path, query = _path(ticket["upload_url"])
    bad = {**query, "X-Signature": query["X-Signature"][:-1] + ("0" if query["X-Signature"][-1] != "0" else "1")}
    assert_error(client.put(f"{path}?{urlencode(bad)}", data=data, headers={"Content-Type": "image/png"}),
                 403, "invalid_signature")
    other = path.rsplit("/", 1)[0] + "/01J00000000000000000000000"
    assert_error(client.put(f"{other}?{urlencode(query)}", data=data, headers={"Content-Type": "image/png"}),
                 403, "invalid_signature")
    relaxed = {k: v for k, v in query.items() if k != "X-Content-Length"}
    assert_error(client.put(f"{path}?{urlencode(relaxed)}", data=data * 2, headers={"Content-Type": "image/png"}),
                 403, "invalid_signature")


def test_expired_url_is_refused(tmp_path, data):
    from support import ApiClient, make_settings
    from imageservice.bootstrap import build_components
    from imageservice.web import create_app

    components = build_components(make_settings(tmp_path, upload_url_ttl=-1))
    client = create_app(components=components).test_client()
    api = ApiClient(client, components.service.create_token("alice"))
    ticket = api.ticket(content_type="image/png", size=len(data))
    assert_error(api.put(ticket, data), 403, "url_expired")


def test_size_is_required_and_signed_as_the_length(tmp_path):
    from support import ApiClient, make_settings
    from imageservice.bootstrap import build_components
    from imageservice.web import create_app

    components = build_components(make_settings(tmp_path, max_upload_bytes=1000))
    client = create_app(components=components).test_client()
    api = ApiClient(client, components.service.create_token("alice"))
    # No size, no URL: an upload that declares nothing could be anything up to the limit.
    assert_error(api.call("POST", "/api/images/upload", json={"content_type": "image/png"}), 400, "invalid_parameter")
    data = imagefactory.png_bytes(8, 8)
    ticket = api.ticket(content_type="image/png", size=len(data))
    refused = api.put(ticket, data + b"\0" * 100)
    assert refused.status_code in (400, 403, 413), refused.get_data(as_text=True)
    assert components.blobs.size(f"originals/alice/{ticket['image_id']}") is None
    assert api.put(ticket, data).status_code == 200


def test_download_urls_are_signed_get_only(api, client, data):
    image_id = api.upload(data, "image/png", "x.png")
    url = api.call("GET", f"/api/images/{image_id}/download").get_json()["download_url"]
    path, query = _path(url)
    assert client.head(f"{path}?{urlencode(query)}").status_code == 200
    assert_error(client.put(f"{path}?{urlencode(query)}", data=b"x"), 403, "invalid_signature")
    assert_error(client.get(path), 403, "invalid_signature")
    response = client.get(f"{path}?{urlencode(query)}")
    assert "sandbox" in response.headers["Content-Security-Policy"]


# -- single use: once an object exists, or the record left pending, no URL writes ---


def _other_bytes(data: bytes) -> bytes:
    """Other bytes of exactly the same length, so the signed Content-Length still matches."""
    return data[:8] + bytes(reversed(data[8:]))


def test_a_second_put_before_processing_is_refused(api, ticket, data, components):
    assert api.put(ticket, data).status_code == 200
    assert_error(api.put(ticket, _other_bytes(data)), 409, "already_uploaded")
    assert components.blobs.get(f"originals/alice/{ticket['image_id']}") == data
    assert components.queue.depth() == 1  # the refused replay queued nothing


def test_a_replay_after_the_image_is_ready_leaves_the_validated_original(api, ticket, data, components, client):
    import hashlib

    assert api.put(ticket, data).status_code == 200
    api.process()
    record = api.image(ticket["image_id"])
    assert record["status"] == "ready"
    assert_error(api.put(ticket, _other_bytes(data)), 409, "already_uploaded")
    url = api.call("GET", f"/api/images/{ticket['image_id']}/download").get_json()["download_url"]
    served = api.fetch(url).data
    assert served == data and hashlib.sha256(served).hexdigest() == record["sha256"]


def test_a_replay_after_a_rejection_stores_nothing(api, components):
    junk = b"not an image at all" * 10
    ticket = api.ticket(content_type="image/png", size=len(junk), filename="x.png")
    assert api.put(ticket, junk).status_code == 200
    api.process()
    assert api.image(ticket["image_id"])["status"] == "rejected"
    assert_error(api.put(ticket, junk), 409, "already_uploaded")
    assert components.blobs.size(f"originals/alice/{ticket['image_id']}") is None


def test_racing_uploads_to_one_url_store_exactly_one(tmp_path, data):
    """Two uploads through one URL at once: the filesystem's atomic link lets exactly one in."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from imageservice.adapters.local.blobstore import FilesystemBlobStore, LocalUrlSigner
    from imageservice.core.errors import Conflict

    store = FilesystemBlobStore(tmp_path / "blobs", LocalUrlSigner("s", "http://localhost"))
    barrier = Barrier(8)

    def upload(i: int) -> str:
        def chunks():
            barrier.wait()
            yield bytes([i]) * 1000
        try:
            store.receive_upload("originals/alice/race", chunks(), max_bytes=1000)
            return "stored"
        except Conflict as exc:
            assert exc.code == "already_uploaded"
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(upload, range(8)))
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    assert len(set(store.get("originals/alice/race"))) == 1
    assert [p.name for p in (tmp_path / "blobs" / "originals" / "alice").iterdir()] == ["race"]  # no temp left
