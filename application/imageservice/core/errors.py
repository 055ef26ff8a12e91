"""One error type for the whole service; the web layer turns it into HTTP in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """An expected failure with a stable machine code, a human message and an HTTP status."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, status={self.status})"


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status, code = 413, "too_large"


class URITooLong(ServiceError):
    status, code = 414, "uri_too_long"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_format"


class Unprocessable(ServiceError):
    status, code = 422, "unprocessable"


class TooManyRequests(ServiceError):
    """Over a rate or a capacity limit; ``retry_after`` (seconds) becomes the Retry-After header."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 60):
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))


class TooExpensive(Unprocessable):
    """An imaging job went over its budget (memory, time or concurrency)."""

    status, code = 422, "too_expensive"


class ImageRejected(ServiceError):
    """The uploaded object is not an acceptable image. Final: retrying cannot help.

    ``code`` is one of REJECTION_CODES.
    """

    status = 422
    # Bytes of pixels the failed decode needed, when known (see imaging_child.py).
    decoded_bytes: int | None = None

    def __init__(self, code: str, message: str):
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(message, code=code)


REJECTION_CODES = frozenset(
    {
        "corrupt",
        "not_an_image",
        "unsupported_format",
        "too_many_pixels",
        "too_many_frames",
        "too_large",
        "processing_failed",
        "quota_exceeded",
        "too_expensive",
        "malware",
        "moderation",
    }
)


class TransientError(Exception):
    """A failure that is not the image's fault (storage or database unavailable): retry the job."""
