"""Filesystem BlobStore whose presigned URLs point at the app's own blob endpoint.

A URL carries its key in the path and its constraints in the query (``X-Expires``,
``X-Content-Type``, ``X-Content-Length``, and for downloads the response type and
disposition); ``X-Signature`` is an HMAC-SHA256 over the method, the key and every
constraint, so none of them can be changed without the secret. Verification compares in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping
from urllib.parse import quote, urlencode, urlsplit

from ...core.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, ServiceError, UnsupportedMediaType
from ...core.filenames import content_disposition
from ...core.records import PresignedDownload, PresignedUpload
from ...core.timeutil import epoch_to_iso
from ...ports import SINGLE_USE_UPLOAD_HEADERS, BlobNotFound, BlobTooLarge, VerifiedRequest

KEY_RE = re.compile(r"^[^\x00-\x1f\x7f\\]{1,1024}$")
BLOB_ROUTE = "/blobs/"
SIGNED_PARAMS = ("X-Expires", "X-Content-Type", "X-Content-Length", "X-Response-Type", "X-Disposition")


class FileSink:
    """``BlobStore.open_writer``'s sink over an open file: write and tell only, so the local
    store offers what S3 does (a writer that seeks would work here and fail there)."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._written = 0

    def write(self, data: bytes) -> int:
        written = self._fh.write(data)
        self._written += written
        return written

    def tell(self) -> int:
        return self._written


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (the new directory entry reaches the disk)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_key(key: str) -> str:
    """Refuse keys that could leave the blob root or name hidden/temporary files."""
    if not KEY_RE.match(key) or any(not part or part.startswith(".") for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalUrlSigner:
    def __init__(self, secret: str, base_url: str, clock=time.time):
        self._secret = secret.encode()
        self._base = base_url.rstrip("/")
        self._clock = clock
        parts = urlsplit(self._base)
        self.origin = f"{parts.scheme}://{parts.netloc}"

    def _signature(self, method: str, key: str, params: Mapping[str, str]) -> str:
        canonical = "\n".join([method, key] + [f"{name}={params.get(name, '')}" for name in SIGNED_PARAMS])
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def sign(self, method: str, key: str, expires_in: int, **constraints: str) -> tuple[str, float]:
        expires = int(self._clock()) + int(expires_in)
        params = {"X-Expires": str(expires), **{k: v for k, v in constraints.items() if v}}
        params["X-Signature"] = self._signature(method, key, params)
        return f"{self._base}{BLOB_ROUTE}{quote(key)}?{urlencode(params)}", expires

    def verify(self, method: str, key: str, params: Mapping[str, str]) -> VerifiedRequest:
        """Check a request against its signature and expiry.

        Raises Forbidden (``invalid_signature`` / ``url_expired``); HEAD is checked as GET.
        """
        signed_method = "GET" if method == "HEAD" else method
        given = params.get("X-Signature", "")
        expected = self._signature(signed_method, key, params)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Forbidden("The URL's signature does not match.", code="invalid_signature")
        try:
            expires = int(params.get("X-Expires", "0"))
        except ValueError:
            raise Forbidden("The URL's expiry is malformed.", code="invalid_signature") from None
        if self._clock() > expires:
            raise Forbidden("The URL has expired.", code="url_expired")
        length = params.get("X-Content-Length")
        return VerifiedRequest(
            key=key,
            content_type=params.get("X-Content-Type") or None,
            content_length=int(length) if length else None,
            response_type=params.get("X-Response-Type") or None,
            disposition=params.get("X-Disposition") or None,
        )


class FilesystemBlobStore:
    """Objects as files under ``root``; writes are atomic (temp file + rename).

    Also the local SignedUrlEndpoint: the blobs blueprint verifies and receives through it.
    """

    def __init__(self, root: Path, signer: LocalUrlSigner):
        self.root = Path(root)
        self.signer = signer

    def _path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` at ``key``, replacing any previous object atomically."""
        self.put_stream(key, [data])

    def put_stream(self, key: str, chunks, max_bytes: int | None = None, *, exclusive: bool = False) -> int:
        """Write an iterable of byte chunks to ``key`` atomically; returns the size.

        Raises BlobTooLarge (and keeps nothing) when more than ``max_bytes`` arrive. With
        ``exclusive``, raises FileExistsError (and keeps nothing) when ``key`` already holds an
        object: the file is linked into place, which the filesystem refuses atomically, so two
        racing uploads cannot both win.
        """
        written = 0
        with self._staged(key, exclusive=exclusive) as fh:
            for chunk in chunks:
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise BlobTooLarge(written)
                fh.write(chunk)
        return written

    @contextmanager
    def open_writer(self, key: str, content_type: str) -> Iterator[FileSink]:
        """A sink whose bytes become the object at ``key`` when the block ends cleanly.

        They go to a hidden temporary file beside the object, which is fsynced and renamed
        over it (and the folder fsynced), so a crash never leaves a partial object at ``key``;
        when the block raises, the temporary file is removed. ``content_type`` is not kept:
        files have none, the download URL names it.
        """
        with self._staged(key, durable=True) as fh:
            yield FileSink(fh)

    @contextmanager
    def _staged(self, key: str, *, exclusive: bool = False, durable: bool = False) -> Iterator[BinaryIO]:
        """A temporary file in the object's folder that becomes the object when the block ends
        cleanly (linked with ``exclusive``, else renamed over it) and is removed when it raises.
        ``durable`` fsyncs the file before and its folder after the rename."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            if exclusive:
                os.link(tmp, path)
                Path(tmp).unlink()
            else:
                os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if durable:
            _fsync_folder(path.parent)

    def receive_upload(self, key: str, chunks, max_bytes: int) -> int:
        """An upload through a signed URL: stored only where no object is (single use)."""
        try:
            return self.put_stream(key, chunks, max_bytes=max_bytes, exclusive=True)
        except FileExistsError:
            raise Conflict("This upload URL has been used: the object exists and cannot be replaced.",
                           code="already_uploaded") from None
        except BlobTooLarge:
            raise PayloadTooLarge(f"At most {max_bytes} bytes may be uploaded here.", code="too_large") from None

    def verify(self, method: str, key: str, params) -> VerifiedRequest:
        """Check a signed URL (see LocalUrlSigner.verify)."""
        return self.signer.verify(method, key, params)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; BlobNotFound when missing, BlobTooLarge past ``max_bytes``."""
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(size)
                return fh.read()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def open(self, key: str):
        """A binary file object for streaming the object to a client; NotFound when missing."""
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFound("No such object.", code="object_not_found") from None

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Remove one object; a missing object is fine. Empty parent folders go too."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` (a folder prefix ending in '/')."""
        if not prefix.endswith("/"):
            raise ValueError("local prefixes must end with '/'")
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        self._prune(folder.parent)
        return count

    def expire_prefix(self, prefix: str, older_than: float) -> int:
        """Remove the files under ``prefix`` last written before ``older_than`` (the local
        stand-in for S3's lifecycle rule on quarantine/)."""
        if not prefix.endswith("/"):
            raise ValueError("local prefixes must end with '/'")
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        removed = 0
        for path in [p for p in folder.rglob("*") if p.is_file()]:
            try:
                if path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
                    self._prune(path.parent)
            except FileNotFoundError:
                continue  # another sweeper took it
        return removed

    def _prune(self, folder: Path) -> None:
        root = self.root.resolve()
        folder = folder.resolve()
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def presign_upload(
        self, key: str, *, content_type: str | None, content_length: int | None, expires_in: int
    ) -> PresignedUpload:
        safe_key(key)
        url, expires = self.signer.sign(
            "PUT",
            key,
            expires_in,
            **{"X-Content-Type": content_type or "", "X-Content-Length": str(content_length or "")},
        )
        headers = {"Content-Type": content_type} if content_type else {}
        return PresignedUpload(url=url, method="PUT", headers={**headers, **SINGLE_USE_UPLOAD_HEADERS},
                               expires_at=epoch_to_iso(expires))

    def presign_download(
        self, key: str, *, expires_in: int, filename: str, content_type: str, attachment: bool
    ) -> PresignedDownload:
        safe_key(key)
        url, expires = self.signer.sign(
            "GET",
            key,
            expires_in,
            **{
                "X-Response-Type": content_type,
                "X-Disposition": content_disposition(filename, attachment),
            },
        )
        return PresignedDownload(url=url, expires_at=epoch_to_iso(expires))

    def check_upload(self, verified: VerifiedRequest, content_type: str | None, content_length: int | None) -> None:
        """Enforce what the upload URL signed. Raises a ServiceError the blob endpoint returns."""
        if verified.content_type and (content_type or "").split(";")[0].strip().lower() != verified.content_type.lower():
            raise UnsupportedMediaType(
                f"This upload URL was signed for Content-Type {verified.content_type}.", code="content_type_mismatch"
            )
        if verified.content_length is not None:
            if content_length is None:
                raise ServiceError("Content-Length is required for this upload URL.", code="length_required", status=411)
            if content_length != verified.content_length:
                raise Forbidden(
                    f"This upload URL was signed for {verified.content_length} bytes, not {content_length}.",
                    code="content_length_mismatch",
                )

    def origins(self) -> list[str]:
        return [self.signer.origin]

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise OSError(f"{self.root} is not writable")
