"""List cursors: one codec and one validator, used by every catalog.

A cursor names the last record of a page: ``{"user_id": ..., "image_id": ...}`` as base64url
JSON. Both catalogs resume after that image id (ids are time-sortable, so it is a position in
the newest-first order), and both refuse a cursor that is not exactly what this module
issued for the same owner: anything else (garbage, another shape, another owner's cursor)
raises BadRequest(code="invalid_cursor"), never something a web layer would turn into a 500.
"""

from __future__ import annotations

import base64
import binascii
import json

from . import ids
from .errors import BadRequest

# An issued cursor is about 80 characters; a longer one cannot be ours, and refusing it before
# decoding bounds the work (json.loads of deeply nested input can raise RecursionError).
MAX_CURSOR_LENGTH = 256
_KEYS = frozenset({"user_id", "image_id"})


def encode_cursor(user_id: str, image_id: str) -> str:
    """The cursor that resumes ``user_id``'s listing right after ``image_id``."""
    raw = json.dumps({"image_id": image_id, "user_id": user_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, user_id: str) -> str | None:
    """The image id to resume after, or None without a cursor.

    Raises BadRequest (``invalid_cursor``) unless ``cursor`` is one encode_cursor made for
    this ``user_id``.
    """
    if not cursor:
        return None
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise _invalid()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        raise _invalid() from None
    if (
        not isinstance(position, dict)
        or position.keys() != _KEYS
        or position["user_id"] != user_id
        or not isinstance(position["image_id"], str)
        or not ids.is_id(position["image_id"])
    ):
        raise _invalid()
    return position["image_id"]


def _invalid() -> BadRequest:
    return BadRequest("The cursor is not one this service issued.", code="invalid_cursor")
