"""The BlobStore contract (ports.BlobStore), once against files and once against S3 (moto server)."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

import pytest
import requests

from imageservice.core.timeutil import from_iso
from imageservice.ports import BlobNotFound, BlobStore, BlobTooLarge


def test_the_adapter_implements_the_protocol(backend):
    assert isinstance(backend.blobs, BlobStore)
    backend.blobs.ping()


def test_put_get_overwrite_and_size(backend):
    blobs = backend.blobs
    blobs.put("originals/alice/one", b"first version", "image/jpeg")
    assert blobs.get("originals/alice/one") == b"first version"
    assert blobs.size("originals/alice/one") == len(b"first version")
    blobs.put("originals/alice/one", b"second", "image/jpeg")
    assert blobs.get("originals/alice/one") == b"second"
    assert blobs.size("originals/alice/one") == 6


def test_missing_objects(backend):
    blobs = backend.blobs
    with pytest.raises(BlobNotFound):
        blobs.get("originals/alice/never-written")
    assert blobs.size("originals/alice/never-written") is None
    blobs.delete("originals/alice/never-written")  # not an error
    assert blobs.delete_prefix("derivatives/nobody/") == 0


def test_get_with_a_limit_refuses_larger_objects(backend):
    blobs = backend.blobs
    blobs.put("originals/alice/big", b"x" * 1000, "application/octet-stream")
    assert blobs.get("originals/alice/big", max_bytes=1000) == b"x" * 1000
    with pytest.raises(BlobTooLarge) as caught:
        blobs.get("originals/alice/big", max_bytes=999)
    assert caught.value.size >= 1000
    with pytest.raises(BlobNotFound):
        blobs.get("originals/alice/absent", max_bytes=10)


def test_delete_removes_one_object(backend):
    blobs = backend.blobs
    blobs.put("derivatives/alice/img/thumb.webp", b"t", "image/webp")
    blobs.put("derivatives/alice/img/preview.webp", b"p", "image/webp")
    blobs.delete("derivatives/alice/img/thumb.webp")
    assert blobs.size("derivatives/alice/img/thumb.webp") is None
    assert blobs.get("derivatives/alice/img/preview.webp") == b"p"


def test_delete_prefix_removes_exactly_that_prefix(backend):
    blobs = backend.blobs
    inside = ["conversions/alice/img1/a.png", "conversions/alice/img1/b.jpg", "conversions/alice/img1/c.json"]
    outside = ["conversions/alice/img10/a.png", "conversions/alice/img2/a.png", "originals/alice/img1"]
    for key in inside + outside:
        blobs.put(key, key.encode(), "application/octet-stream")
    assert blobs.delete_prefix("conversions/alice/img1/") == 3
    assert [blobs.size(k) for k in inside] == [None, None, None]
    assert [blobs.get(k) for k in outside] == [k.encode() for k in outside]
    assert blobs.delete_prefix("conversions/alice/img1/") == 0


def test_expire_prefix_removes_only_old_objects_under_the_prefix(backend):
    blobs = backend.blobs
    keys = ["quarantine/originals/alice/a", "quarantine/originals/bob/b", "originals/alice/c"]
    for key in keys:
        blobs.put(key, b"x", "application/octet-stream")
    assert blobs.expire_prefix("quarantine/", older_than=time.time() - 3600) == 0
    assert [blobs.size(k) for k in keys] == [1, 1, 1]
    removed = blobs.expire_prefix("quarantine/", older_than=time.time() + 1)
    if backend.kind == "aws":
        assert removed == 0  # S3 leaves it to the bucket's lifecycle rule (see the setup test)
        return
    assert removed == 2
    assert [blobs.size(k) for k in keys] == [None, None, 1]


def test_presigned_upload_names_the_key_and_declared_headers(backend):
    before = time.time()
    upload = backend.blobs.presign_upload(
        "originals/alice/01HZXAMPLE", content_type="image/png", content_length=42, expires_in=600
    )
    assert upload.method == "PUT"
    assert upload.headers == {"Content-Type": "image/png", "If-None-Match": "*"}  # single-use
    assert "originals/alice/01HZXAMPLE" in unquote(urlsplit(upload.url).path)
    assert before + 599 <= from_iso(upload.expires_at).timestamp() <= time.time() + 601
    assert any(upload.url.startswith(origin + "/") for origin in backend.blobs.origins())
    bare = backend.blobs.presign_upload("originals/alice/x", content_type=None, content_length=None, expires_in=60)
    assert bare.headers == {"If-None-Match": "*"}


def test_presigned_download_names_the_key(backend):
    download = backend.blobs.presign_download(
        "originals/alice/k", expires_in=300, filename="photo.jpg", content_type="image/jpeg", attachment=True
    )
    assert "originals/alice/k" in unquote(urlsplit(download.url).path)
    assert abs(from_iso(download.expires_at).timestamp() - (time.time() + 300)) < 5
    assert any(download.url.startswith(origin + "/") for origin in backend.blobs.origins())


# -- S3 only: the URLs work against a real HTTP endpoint (signature checks: the SeaweedFS test)

@pytest.fixture
def s3_backend(backend):
    if backend.kind != "aws":
        pytest.skip("the local blob endpoint's URLs are exercised through the app (test_local_upload_urls.py); a fake's cannot be fetched")
    return backend


def test_s3_presigned_put_then_presigned_get_round_trip(s3_backend):
    blobs = s3_backend.blobs
    data = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    upload = blobs.presign_upload("originals/alice/rt", content_type="image/png", content_length=len(data), expires_in=60)
    response = requests.put(upload.url, data=data, headers=upload.headers, timeout=10)
    assert response.status_code == 200, response.text
    assert blobs.get("originals/alice/rt") == data
    download = blobs.presign_download(
        "originals/alice/rt", expires_in=60, filename="Ünïcode photo.png", content_type="image/png", attachment=True
    )
    fetched = requests.get(download.url, timeout=10)
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="')
    assert "filename*=UTF-8''%C3%9Cn%C3%AFcode%20photo.png" in fetched.headers["Content-Disposition"]


def test_s3_delete_prefix_pages_through_more_than_one_listing(s3_backend):
    s3 = s3_backend.clients.s3
    bucket = s3_backend.settings.bucket
    with ThreadPoolExecutor(8) as pool:  # more than one ListObjectsV2 page and one DeleteObjects batch
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"conversions/bob/many/{i:05d}", Body=b""),
                      range(1003)))
    assert s3_backend.blobs.delete_prefix("conversions/bob/many/") == 1003
    assert s3.list_objects_v2(Bucket=bucket, Prefix="conversions/bob/").get("KeyCount") == 0


def test_s3_upload_urls_are_single_use(s3_backend):
    """moto honours the signed If-None-Match too (SeaweedFS proves it with real signature
    checks in test_s3_presign_seaweedfs.py)."""
    blobs = s3_backend.blobs
    data = b"\x89PNG\r\n\x1a\n" + b"\1" * 100
    upload = blobs.presign_upload("originals/alice/once", content_type="image/png", content_length=len(data),
                                  expires_in=60)
    assert requests.put(upload.url, data=data, headers=upload.headers, timeout=10).status_code == 200
    replay = requests.put(upload.url, data=data[::-1], headers=upload.headers, timeout=10)
    assert replay.status_code == 412, replay.text
    assert blobs.get("originals/alice/once") == data


# -- open_writer: a streamed object appears whole on a clean exit, never in part

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part: the aws store is set to it below, so parts are few and small


def _stream_writer(backend):
    """The store, with S3's part size at its minimum so boundaries cost little to cross."""
    if backend.kind == "aws":
        backend.blobs.part_size = PART
    return backend.blobs


def _pattern(size: int, seed: int = 0) -> bytes:
    # Distinct per offset and per seed, so a part sent twice, lost or out of order shows.
    block = hashlib.sha256(str(seed).encode()).digest() * (MIB // 32)
    return (block * (size // len(block) + 1))[:size] if size else b""


def _write_in_pieces(sink, data: bytes, piece: int) -> None:
    for start in range(0, len(data), piece):
        assert sink.write(data[start:start + piece]) == len(data[start:start + piece])


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 2 * PART + 3],
                         ids=["empty", "one-byte", "part-less-1", "one-part", "part-plus-1", "two-parts-and-3"])
def test_a_streamed_object_is_published_whole_when_the_block_ends(backend, size):
    blobs = _stream_writer(backend)
    data = _pattern(size, seed=size)
    with blobs.open_writer("batches/alice/b1/images.zip", "application/zip") as sink:
        _write_in_pieces(sink, data, MIB + 7)  # pieces that straddle every part boundary
        assert sink.tell() == size
        assert blobs.size("batches/alice/b1/images.zip") is None  # nothing visible before the end
    assert blobs.size("batches/alice/b1/images.zip") == size
    assert blobs.get("batches/alice/b1/images.zip") == data
    with pytest.raises(ValueError):
        sink.write(b"late")


def test_one_write_larger_than_several_parts(backend):
    blobs = _stream_writer(backend)
    data = _pattern(3 * PART + 11, seed=7)
    with blobs.open_writer("batches/alice/b2/images.zip", "application/zip") as sink:
        sink.write(data)
    assert blobs.get("batches/alice/b2/images.zip") == data


@pytest.mark.parametrize("written", [10, 2 * PART + 1], ids=["within-a-part", "after-two-parts"])
def test_a_block_that_raises_publishes_nothing_and_keeps_the_previous_object(backend, written):
    blobs = _stream_writer(backend)
    blobs.put("batches/alice/b3/images.zip", b"the previous archive", "application/zip")

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        with blobs.open_writer("batches/alice/b3/images.zip", "application/zip") as sink:
            _write_in_pieces(sink, _pattern(written, seed=3), MIB)
            raise Crash()
    assert blobs.get("batches/alice/b3/images.zip") == b"the previous archive"
    with pytest.raises(Crash):
        with blobs.open_writer("batches/alice/b4/images.zip", "application/zip") as sink:
            _write_in_pieces(sink, _pattern(written, seed=4), MIB)
            raise Crash()
    assert blobs.size("batches/alice/b4/images.zip") is None
    assert blobs.delete_prefix("batches/alice/b4/") == 0  # no temporary file or part left behind
    if backend.kind == "aws":
        uploads = backend.clients.s3.list_multipart_uploads(Bucket=backend.settings.bucket)
        assert not uploads.get("Uploads"), uploads  # aborted, not left to the lifecycle rule


def test_a_large_streamed_object_holds_a_bounded_buffer(backend):
    """24 MiB in 256 KiB writes: the store holds about a part (S3) or a file buffer (local),
    never the object. The fake keeps objects in memory and is left out of the bound."""
    blobs = _stream_writer(backend)
    piece = _pattern(256 * 1024, seed=9)
    count = 24 * MIB // len(piece)
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        with blobs.open_writer("batches/alice/b5/images.zip", "application/zip") as sink:
            for _ in range(count):
                sink.write(piece)
                digest.update(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert hashlib.sha256(blobs.get("batches/alice/b5/images.zip")).digest() == digest.digest()
    if backend.kind != "fake":
        assert peak < 4 * PART, f"peak {peak / MIB:.1f} MiB while streaming 24 MiB"


def test_s3_streamed_object_has_its_content_type_and_was_sent_in_parts(s3_backend):
    blobs = _stream_writer(s3_backend)
    data = _pattern(2 * PART + 5, seed=11)
    with blobs.open_writer("batches/alice/b6/images.zip", "application/zip") as sink:
        sink.write(data)
    head = s3_backend.clients.s3.head_object(Bucket=s3_backend.settings.bucket, Key="batches/alice/b6/images.zip")
    assert head["ContentType"] == "application/zip"
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    with blobs.open_writer("batches/alice/b7/small.zip", "application/zip") as sink:
        sink.write(b"small")
    head = s3_backend.clients.s3.head_object(Bucket=s3_backend.settings.bucket, Key="batches/alice/b7/small.zip")
    assert head["ContentType"] == "application/zip" and "-" not in head["ETag"]  # one PutObject
