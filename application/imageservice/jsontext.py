"""JSON text for the request path: orjson where it can, the standard library where it cannot.

A page of records is decoded from the catalog and encoded for the client on every list call;
orjson does both several times faster than ``json``. Its limits are narrower, though: integers
past 64 bits, NaN/Infinity tokens and non-string keys make it raise, and such values can reach
a record through EXIF. Those rare documents go through ``json`` instead, so the output is the
same compact JSON either way and nothing that ``json`` accepts becomes an error.

The one JSON encoder of the app: the catalog, the server's own answers and Flask's responses
(web/json_provider.py) all encode through ``dumps``. The Lambda does not import this module (its records go through DynamoDB's own adapter).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def dumps(value: Any, default: Callable[[Any], Any] | None = None, option: int = 0) -> str:
    """Compact JSON text. Dataclass instances are encoded as their fields (orjson's rule);
    ``default`` encodes what neither library knows (the web's JSON provider passes Flask's)."""
    try:
        return orjson.dumps(value, default=default, option=option).decode()
    except (orjson.JSONEncodeError, TypeError):
        # ASCII escapes here: a lone surrogate (orjson refuses those) stays encodable.
        return json.dumps(value, separators=(",", ":"), default=default)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
