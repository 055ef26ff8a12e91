"""What a request's access line says beyond method, path, status and time.

Views and the session layer note fields here (who called, which image an upload made); the
response envelope (web/observability.py) writes them into the request's one JSON line. A leaf
module, so that both sides can import it.
"""

from __future__ import annotations

from typing import Any

from flask import request

ENVIRON_KEY = "imageservice.access"


def note(**fields: Any) -> None:
    """Add ``fields`` to the current request's access line."""
    request.environ.setdefault(ENVIRON_KEY, {}).update(fields)


def noted(environ: dict) -> dict[str, Any]:
    return environ.get(ENVIRON_KEY) or {}
