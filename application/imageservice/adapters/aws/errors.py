"""botocore failures, sorted into the ones worth retrying and the rest.

botocore's own retry mode has already retried throttling and 5xx answers a few times by the
time one reaches an adapter; what still arrives is turned into core.errors.TransientError, so
the pipeline hands the job back instead of rejecting the image. Everything else (access
denied, a missing bucket or table, a validation error) is a configuration or programming
error and propagates unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ...core.errors import TransientError

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "SlowDown", "RequestThrottled", "TransactionInProgressException", "LimitExceededException",
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
    "RequestTimeout", "RequestTimeoutException", "KMS.ThrottlingException",
})
# Connect/read timeouts, closed connections, a body cut short while streaming.
CONNECTION_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx answers and connection failures."""
    if isinstance(exc, ClientError):
        return error_code(exc) in THROTTLING_CODES or http_status(exc) >= 500
    return isinstance(exc, CONNECTION_ERRORS)


@contextmanager
def transient_errors(what: str) -> Iterator[None]:
    """Re-raise retryable botocore failures inside the block as TransientError."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        if is_transient(exc):
            raise TransientError(f"{what}: {exc}") from exc
        raise
