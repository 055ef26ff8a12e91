"""Opaque pagination cursors: base64url JSON, so adapters can carry whatever position they need."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import BadRequest


def encode_cursor(position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The position inside ``cursor``; None for no cursor. Raises BadRequest when malformed."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("The cursor is not one this service issued.", code="invalid_cursor") from None
