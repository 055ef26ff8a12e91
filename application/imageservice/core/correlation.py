"""The request id that ties an upload's log lines together, carried in a context variable.

The web layer binds the id of each request (taken from ``X-Request-Id`` / ``X-Amzn-Trace-Id``
or generated); the service stores it on the records and jobs it makes; the pipeline binds the
record's id while it processes that image, so the processor's log lines carry the id of the
request that started the upload. Pure Python: the core may use it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from .ids import random_bytes

MAX_LENGTH = 128
# Trace headers are opaque tokens; anything else (spaces, quotes, control characters) could
# forge log fields, so such a value is replaced by a generated id.
ACCEPTED = re.compile(r"[A-Za-z0-9._:;=+/-]{1,%d}" % MAX_LENGTH)

_request_id: ContextVar[str | None] = ContextVar("imageservice_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def new_request_id() -> str:
    return random_bytes(16).hex()


def accepted(value: str | None) -> str | None:
    """``value`` when it is a usable id, else None."""
    return value if value and ACCEPTED.fullmatch(value) else None


@contextmanager
def bound(request_id: str | None) -> Iterator[str | None]:
    """Within the block, ``current_request_id()`` is ``request_id`` (None leaves it unset)."""
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


def bind(request_id: str | None):
    """Bind for the rest of the current context (a request); returns the token to reset."""
    return _request_id.set(request_id)


def reset(token) -> None:
    _request_id.reset(token)
