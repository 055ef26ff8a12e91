"""S3BlobStore's presigned URLs against a real S3 gateway that checks SigV4 (SeaweedFS).

moto does not verify signatures, so what a presigned PUT really constrains (key, expiry,
Content-Type, Content-Length) is proven here, on the HTTP status SeaweedFS answers.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from imageservice.adapters.imaging_pool import InlineImagingRunner
from imageservice.adapters.aws.factory import build_aws_clients
from imageservice.adapters.aws.s3 import S3BlobStore
from imageservice.ports import SINGLE_USE_UPLOAD_HEADERS
from imageservice.settings import Settings

DATA = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4  # 1028 bytes


@pytest.fixture
def store(seaweedfs, monkeypatch) -> S3BlobStore:
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)  # SeaweedFS's own key pair, picked up by boto3
    bucket = f"presign-{uuid.uuid4().hex[:12]}"
    settings = Settings.from_env({}, backend="aws", bucket=bucket, table="unused", queue_url="http://unused/q",
                                 aws_region="us-east-1", aws_endpoint_url=seaweedfs.endpoint)
    clients = build_aws_clients(settings)
    clients.s3.create_bucket(Bucket=bucket)
    return S3BlobStore(clients.s3, bucket)


def put(url: str, data: bytes, content_type: str | None = "image/jpeg") -> requests.Response:
    """A PUT as a client that follows the URL's rules except, perhaps, the Content-Type."""
    headers = {"Content-Type": content_type} if content_type else {}
    headers.update(SINGLE_USE_UPLOAD_HEADERS)
    return requests.put(url, data=data, headers=headers, timeout=10)


def upload_url(store: S3BlobStore, key: str, **overrides) -> str:
    options = {"content_type": "image/jpeg", "content_length": len(DATA), "expires_in": 60, **overrides}
    return store.presign_upload(key, **options).url


def test_a_correct_upload_is_stored(store):
    upload = store.presign_upload("originals/alice/ok", content_type="image/jpeg", content_length=len(DATA),
                                  expires_in=60)
    response = requests.put(upload.url, data=DATA, headers=upload.headers, timeout=10)
    assert response.status_code == 200, response.text
    assert store.get("originals/alice/ok") == DATA


def test_another_content_type_is_refused(store):
    url = upload_url(store, "originals/alice/type")
    assert put(url, DATA, "text/html").status_code == 403
    assert put(url, DATA, None).status_code == 403
    assert store.size("originals/alice/type") is None


@pytest.mark.parametrize("body", [DATA + b"x", DATA[:-1], b""], ids=["one-byte-more", "one-byte-less", "empty"])
def test_another_length_is_refused(store, body):
    url = upload_url(store, "originals/alice/length")
    assert put(url, body).status_code == 403
    assert store.size("originals/alice/length") is None


def test_an_expired_url_is_refused(store):
    url = upload_url(store, "originals/alice/late", expires_in=1)
    time.sleep(2.1)
    assert put(url, DATA).status_code == 403
    assert store.size("originals/alice/late") is None


def test_a_tampered_signature_is_refused(store):
    url = upload_url(store, "originals/alice/tampered")
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert put(urlunsplit(parts._replace(query=urlencode(query))), DATA).status_code == 403
    longer = dict(parse_qsl(parts.query), **{"X-Amz-Expires": "604800"})  # stretch the lifetime
    assert put(urlunsplit(parts._replace(query=urlencode(longer))), DATA).status_code == 403
    assert store.size("originals/alice/tampered") is None


def test_the_url_works_for_its_own_key_only(store):
    url = upload_url(store, "originals/alice/mine")
    parts = urlsplit(url)
    other = urlunsplit(parts._replace(path=parts.path.replace("/originals/alice/mine", "/originals/alice/theirs")))
    assert put(other, DATA).status_code == 403
    assert store.size("originals/alice/theirs") is None
    assert put(url, DATA).status_code == 200


def test_a_presigned_get_answers_with_the_signed_type_and_disposition(store):
    store.put("originals/alice/dl", DATA, "application/octet-stream")
    download = store.presign_download("originals/alice/dl", expires_in=60, filename="Ferien am Meer.jpg",
                                      content_type="image/jpeg", attachment=True)
    response = requests.get(download.url, timeout=10)
    assert response.status_code == 200 and response.content == DATA
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Ferien am Meer.jpg\"; filename*=UTF-8''Ferien%20am%20Meer.jpg"
    )
    inline = store.presign_download("originals/alice/dl", expires_in=60, filename="a.webp",
                                    content_type="image/webp", attachment=False)
    response = requests.get(inline.url, timeout=10)
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert response.headers["Content-Type"] == "image/webp"


def test_a_presigned_get_cannot_be_retargeted(store):
    store.put("originals/alice/secret", DATA, "image/jpeg")
    store.put("originals/bob/secret", b"bob's", "image/jpeg")
    url = store.presign_download("originals/alice/secret", expires_in=60, filename="a.jpg",
                                 content_type="image/jpeg", attachment=True).url
    assert requests.get(url.replace("/alice/", "/bob/"), timeout=10).status_code == 403
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query), **{"response-content-type": "text/html"})
    assert requests.get(urlunsplit(parts._replace(query=urlencode(query))), timeout=10).status_code == 403


def test_the_origin_is_the_gateway(store, seaweedfs):
    assert store.origins() == [seaweedfs.endpoint]


# -- single use: If-None-Match: * is signed into every upload URL --------------------


def test_an_upload_url_cannot_replace_the_object_it_stored(store):
    upload = store.presign_upload("originals/alice/once", content_type="image/jpeg", content_length=len(DATA),
                                  expires_in=60)
    assert upload.headers["If-None-Match"] == "*"
    assert requests.put(upload.url, data=DATA, headers=upload.headers, timeout=10).status_code == 200
    replay = requests.put(upload.url, data=DATA[::-1], headers=upload.headers, timeout=10)
    assert replay.status_code == 412, replay.text  # PreconditionFailed: the key holds an object
    without = {k: v for k, v in upload.headers.items() if k != "If-None-Match"}
    assert requests.put(upload.url, data=DATA[::-1], headers=without, timeout=10).status_code == 403  # signed
    assert store.get("originals/alice/once") == DATA


def test_a_replay_after_the_image_is_ready_leaves_the_validated_bytes(store, tmp_path):
    """The whole pipeline on real S3 semantics: upload, process to ready, replay the URL."""
    import hashlib

    import imagefactory
    from fakes import FakeCatalog
    from support import make_settings

    from imageservice.core import keys
    from imageservice.core.ids import new_id
    from imageservice.core.records import PENDING, READY, ImageRecord
    from imageservice.pipeline import Pipeline, PipelineConfig

    catalog = FakeCatalog()
    pipeline = Pipeline(store, catalog, PipelineConfig.from_settings(make_settings(tmp_path)), imaging=InlineImagingRunner())
    data = imagefactory.png_bytes(64, 48)
    image_id = new_id()
    record = ImageRecord(image_id=image_id, user_id="alice", status=PENDING, filename="a.png", size=len(data),
                         created_at="2026-05-01T12:00:00Z", original_key=keys.original_key("alice", image_id, False))
    catalog.create(record)
    upload = store.presign_upload(record.original_key, content_type="image/png", content_length=len(data),
                                  expires_in=60)
    assert requests.put(upload.url, data=data, headers=upload.headers, timeout=10).status_code == 200
    pipeline.process_key(record.original_key)
    ready = catalog.get("alice", image_id)
    assert ready.status == READY and ready.sha256 == hashlib.sha256(data).hexdigest()

    other = data[:8] + bytes(reversed(data[8:]))  # same length and type: only the bytes differ
    assert requests.put(upload.url, data=other, headers=upload.headers, timeout=10).status_code == 412
    pipeline.process_key(record.original_key)  # a stray notification changes nothing either
    assert store.get(record.original_key) == data
    assert catalog.get("alice", image_id).sha256 == hashlib.sha256(data).hexdigest()


# -- open_writer's multipart upload, on a gateway that checks each part's signature and CRC32


def test_a_streamed_object_goes_up_in_parts_and_a_failed_one_leaves_nothing(store):
    store.part_size = 5 * 1024 * 1024
    data = bytes(range(256)) * (11 * 1024 * 1024 // 256 + 3)  # two full parts and a short last one
    with store.open_writer("batches/alice/b1/images.zip", "application/zip") as sink:
        for start in range(0, len(data), 1_000_003):
            sink.write(data[start:start + 1_000_003])
    assert store.get("batches/alice/b1/images.zip") == data
    head = store.s3.head_object(Bucket=store.bucket, Key="batches/alice/b1/images.zip")
    assert head["ContentType"] == "application/zip"

    with pytest.raises(RuntimeError):
        with store.open_writer("batches/alice/b2/images.zip", "application/zip") as sink:
            sink.write(data)
            raise RuntimeError("the batch job died")
    assert store.size("batches/alice/b2/images.zip") is None
    assert not store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads")
