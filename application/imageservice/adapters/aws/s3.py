"""S3 BlobStore (any S3-compatible endpoint): objects in one bucket, SigV4 presigned URLs.

A presigned PUT signs ``Content-Type`` and ``Content-Length`` as signed headers when the
upload declared them, so S3 itself refuses an upload of another type or size
(SignatureDoesNotMatch, 403), and always signs ``If-None-Match: *``, so S3 refuses a second
PUT to a key that holds an object (412 PreconditionFailed): an upload URL is single-use, and
the validated original cannot be replaced through it. A presigned GET fixes the response's Content-Type and
Content-Disposition (``response-content-type`` / ``response-content-disposition`` are signed
query parameters).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from ...core.errors import TransientError
from ...core.filenames import content_disposition
from ...core.records import PresignedDownload, PresignedUpload
from ...core.timeutil import epoch_to_iso
from ...ports import SINGLE_USE_UPLOAD_HEADERS, BlobNotFound, BlobTooLarge
from .errors import error_code, transient_errors

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3 refuses a multipart part below 5 MiB, except the last one
# 8 MiB parts, as the AWS CLI and s3transfer use: at S3's 10 000 parts, objects up to 78 GiB.
DEFAULT_PART_SIZE = 8 * MIB
# Every part's CRC32 is sent and checked by S3, and CompleteMultipartUpload lists them (what
# s3transfer does since botocore computes checksums by default).
CHECKSUM = "CRC32"

log = logging.getLogger(__name__)


class S3BlobStore:
    def __init__(self, s3_client, bucket: str, clock: Callable[[], float] = time.time,
                 part_size: int = DEFAULT_PART_SIZE):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 multipart parts are at least {MIN_PART_SIZE} bytes")
        self.s3 = s3_client
        self.bucket = bucket
        self._clock = clock
        self.part_size = part_size

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` at ``key`` (a whole-object overwrite; idempotent for equal data).

        Raises TransientError when S3 is throttling or unreachable.
        """
        with transient_errors(f"put {key}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    @contextmanager
    def open_writer(self, key: str, content_type: str) -> Iterator[MultipartSink]:
        """A sink whose bytes become the object at ``key`` when the block ends cleanly.

        Bytes are sent in parts of ``part_size`` as they come (a multipart upload, started
        with the first full part) and the upload is completed at the end; an object smaller
        than one part goes up in one PutObject. When the block raises, the upload is aborted;
        one left open by a crash is invisible and the bucket's lifecycle rule
        (AbortIncompleteMultipartUpload) removes its parts after a day. Holds one part in
        memory. Raises TransientError when S3 is throttling or unreachable.
        """
        sink = MultipartSink(self.s3, self.bucket, key, content_type, self.part_size)
        try:
            yield sink
            sink.complete()
        except BaseException:
            sink.abort()
            raise

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes.

        Raises BlobNotFound when missing, BlobTooLarge when it has more than ``max_bytes``
        (decided from the response's Content-Length before the body is read, so a huge
        object costs one request and no transfer), TransientError on throttling/5xx/network.
        """
        with transient_errors(f"get {key}"):
            try:
                response = self.s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _not_found(exc):
                    raise BlobNotFound(key) from None
                raise
            body = response["Body"]
            try:
                size = int(response["ContentLength"])
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(size)
                return body.read()
            finally:
                body.close()

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        with transient_errors(f"head {key}"):
            try:
                return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            except ClientError as exc:
                if _not_found(exc):
                    return None
                raise

    def delete(self, key: str) -> None:
        """Remove one object; a missing object is not an error (S3 deletes are idempotent)."""
        with transient_errors(f"delete {key}"):
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def expire_prefix(self, prefix: str, older_than: float) -> int:
        """Left to the bucket's lifecycle rule (the data template and ``setup`` expire
        ``quarantine/`` after the quarantine days); the app's role may not touch quarantine."""
        return 0

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; returns how many went.

        Lists with ListObjectsV2 and deletes in DeleteObjects batches of 1000. Raises
        TransientError when S3 refused some keys of a batch (run it again: it is idempotent).
        """
        if not prefix:
            raise ValueError("refusing to delete the whole bucket")
        removed = 0
        with transient_errors(f"delete {prefix}*"):
            paginator = self.s3.get_paginator("list_objects_v2")
            batch: list[dict[str, str]] = []
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    batch.append({"Key": item["Key"]})
                    if len(batch) == DELETE_BATCH:
                        removed += self._delete_batch(batch)
                        batch = []
            if batch:
                removed += self._delete_batch(batch)
        return removed

    def _delete_batch(self, batch: list[dict[str, str]]) -> int:
        response = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise TransientError(f"S3 kept {len(errors)} objects, e.g. {first.get('Key')}: {first.get('Code')}")
        return len(batch)

    def presign_upload(
        self, key: str, *, content_type: str | None, content_length: int | None, expires_in: int
    ) -> PresignedUpload:
        """A PUT URL for ``key`` only, valid ``expires_in`` seconds; no request is made.

        ``content_type`` and ``content_length``, when given, are signed headers: S3 answers
        403 to an upload with another Content-Type or another number of bytes. The client
        must send the returned ``headers`` (its HTTP library sets Content-Length itself),
        including ``If-None-Match: *``: the URL cannot overwrite an existing object.
        """
        params: dict[str, object] = {"Bucket": self.bucket, "Key": key, "IfNoneMatch": "*"}
        headers: dict[str, str] = dict(SINGLE_USE_UPLOAD_HEADERS)
        if content_type:
            params["ContentType"] = content_type
            headers["Content-Type"] = content_type
        if content_length is not None:
            params["ContentLength"] = int(content_length)
        expires_at = self._clock() + expires_in
        url = self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in, HttpMethod="PUT")
        return PresignedUpload(url=url, method="PUT", headers=headers, expires_at=epoch_to_iso(expires_at))

    def presign_download(
        self, key: str, *, expires_in: int, filename: str, content_type: str, attachment: bool
    ) -> PresignedDownload:
        """A GET URL answering with ``content_type`` and a Content-Disposition naming
        ``filename`` (``attachment`` or ``inline``); no request is made."""
        expires_at = self._clock() + expires_in
        url = self.s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition(filename, attachment),
            },
            ExpiresIn=expires_in,
        )
        return PresignedDownload(url=url, expires_at=epoch_to_iso(expires_at))

    def origins(self) -> list[str]:
        """The origin presigned URLs point at (path-style endpoint, or the bucket's host)."""
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "x"}, ExpiresIn=60)
        parts = urlsplit(url)
        return [f"{parts.scheme}://{parts.netloc}"]

    def ping(self) -> None:
        """Raise when the bucket cannot be reached (HeadBucket)."""
        self.s3.head_bucket(Bucket=self.bucket)


class MultipartSink:
    """``S3BlobStore.open_writer``'s sink: buffers one part, uploads each as it fills."""

    def __init__(self, s3_client, bucket: str, key: str, content_type: str, part_size: int):
        self.s3 = s3_client
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.part_size = part_size
        self._buffer = bytearray()
        self._parts: list[dict[str, object]] = []
        self._upload_id: str | None = None
        self._written = 0
        self._closed = False

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError(f"the writer of {self.key} is closed")
        view = memoryview(data).cast("B")
        while view:
            # Fill the part to exactly part_size, so a large write holds no more than one part.
            room = self.part_size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) >= self.part_size:
                self._send_part()
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def _send_part(self) -> None:
        with transient_errors(f"upload part of {self.key}"):
            if self._upload_id is None:
                self._upload_id = self.s3.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, ContentType=self.content_type, ChecksumAlgorithm=CHECKSUM,
                )["UploadId"]
            number = len(self._parts) + 1
            # The buffer itself is the body (no copy); it is not touched until the call returns.
            answer = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                         PartNumber=number, Body=self._buffer, ChecksumAlgorithm=CHECKSUM)
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"],
                            f"Checksum{CHECKSUM}": answer[f"Checksum{CHECKSUM}"]})
        # A new buffer rather than clear(): resizing one that botocore still has a view of raises.
        self._buffer = bytearray()

    def complete(self) -> None:
        """Publish the object: the rest as the last part and CompleteMultipartUpload, or one
        PutObject when no part was sent."""
        self._closed = True
        if self._upload_id is None:
            with transient_errors(f"put {self.key}"):
                self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._buffer,
                                   ContentType=self.content_type)
            self._buffer = bytearray()
            return
        if self._buffer:
            self._send_part()
        with transient_errors(f"complete upload of {self.key}"):
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                              MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        """Drop everything; never raises, so the error that ended the block is the one seen."""
        self._closed = True
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        except (ClientError, BotoCoreError) as exc:
            # Its parts stay invisible; the bucket's lifecycle rule aborts the upload after a day.
            log.warning("could not abort the multipart upload of %s: %s", self.key, exc)


def _not_found(exc: ClientError) -> bool:
    # GetObject says NoSuchKey; HeadObject has no body and says "404". NoSuchBucket is a
    # configuration error and propagates.
    return error_code(exc) in NOT_FOUND_CODES
