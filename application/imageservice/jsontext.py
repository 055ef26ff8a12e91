"""JSON text for the request path: orjson where it can, the standard library where it cannot.

A page of records is decoded from the catalog and encoded for the client on every list call;
orjson does both several times faster than ``json``. Its limits are narrower, though: integers
past 64 bits, NaN/Infinity tokens and non-string keys make it raise, and such values can reach
a record through EXIF. Those rare documents go through ``json`` instead, so the output is the
same compact JSON either way and nothing that ``json`` accepts becomes an error.

The Lambda does not import this module (its records go through DynamoDB's own adapter).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text. Dataclass instances are encoded as their fields (orjson's rule)."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        # ASCII escapes here: a lone surrogate (orjson refuses those) stays encodable.
        return json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
