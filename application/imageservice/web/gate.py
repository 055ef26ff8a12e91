"""What a request must show in its headers before the server reads its body (docs/SERVER.md).

The server (web/server.py) reads every body in full before the app runs, so a body it should
not take would cost a socket, buffer space and a deadline's worth of waiting before the app
could say no. ``BodyGate.check`` runs when the headers are complete and the body is still in
the socket: a refusal is answered at once, in the JSON error shape, and the body is never read.

What it checks, per request that announces a body:
- the length is announced (``Content-Length``; a chunked body could not be held to a limit
  before it is read) and within the route's limit: ``max_upload_bytes`` for a local blob upload,
  the API's body limit everywhere else;
- a blob upload's signed URL: signature, expiry, and the Content-Type and length it signed;
- an API write names a caller: a Bearer token, or the browser's session (or visitor, for the
  first write) cookie together with the CSRF header; and its body is JSON.
The app still checks everything again (whether the token exists, whether the CSRF token is
the right one): the gate only refuses what can be refused from the headers, cheaply, on the
server's I/O thread (an HMAC at most, no storage call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from ..core.errors import ServiceError
from . import SESSION_COOKIE
from .sessions import CSRF_HEADER, VISITOR_COOKIE

API_PREFIX = "/api/"
BLOB_PREFIX = "/blobs/"
JSON_TYPES = ("application/json",)

Header = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def canonical_path(path: str) -> str:
    """``//api/x`` is routed like ``/api/x``: one leading slash, so a doubled one finds no way
    around the checks of its route."""
    return "/" + path.lstrip("/")


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


def _has_cookie(cookies: str | None, name: str) -> bool:
    return any(part.strip().startswith(name + "=") for part in (cookies or "").split(";"))


class BodyGate:
    """The header checks for one app (its limits and its blob endpoint, if local)."""

    def __init__(self, *, api_body_limit: int, upload_limit: int, blob_endpoint=None):
        self.api_body_limit = api_body_limit
        self.upload_limit = upload_limit
        self.blob_endpoint = blob_endpoint

    def check(self, method: str, path: str, query: Mapping[str, str], header: Header,
              content_length: int | None) -> Refusal | None:
        """None when the body may be read; else why not. ``content_length`` is None for a
        chunked body; ``header(name)`` is the request's header of that name, or None."""
        if content_length is None:
            return Refusal(411, "length_required", "Send the body with a Content-Length (no chunked bodies here).")
        path = canonical_path(path)
        if method == "PUT" and path.startswith(BLOB_PREFIX) and self.blob_endpoint is not None:
            return self._blob_upload(path[len(BLOB_PREFIX):], query, header, content_length)
        if content_length > self.api_body_limit:
            return Refusal(413, "too_large", f"A request body here may hold at most {self.api_body_limit} bytes.")
        if path.startswith(API_PREFIX):
            return self._api_write(header)
        return None

    def _blob_upload(self, key: str, query: Mapping[str, str], header: Header, content_length: int) -> Refusal | None:
        if content_length > self.upload_limit:
            return Refusal(413, "too_large", f"At most {self.upload_limit} bytes may be uploaded here.")
        try:
            verified = self.blob_endpoint.verify("PUT", key, query)
            self.blob_endpoint.check_upload(verified, header("Content-Type"), content_length)
        except ServiceError as exc:
            return Refusal(exc.status, exc.code, exc.message)
        return None

    def _api_write(self, header: Header) -> Refusal | None:
        authorization = header("Authorization") or ""
        if not authorization.startswith("Bearer "):
            cookies = header("Cookie")
            if not (_has_cookie(cookies, SESSION_COOKIE) or _has_cookie(cookies, VISITOR_COOKIE)):
                return Refusal(401, "unauthorized", "Send an API token (Authorization: Bearer ...) or use the web page.")
            if not header(CSRF_HEADER):
                return Refusal(403, "csrf_failed", "The CSRF token is missing or wrong; reload the page.")
        if not _is_json(header("Content-Type")):
            return Refusal(415, "unsupported_media_type", "The body must be JSON (Content-Type: application/json).")
        return None
