"""Security headers on every response (docs/DESIGN.md "Security rules"), and the request-target
length limit."""

from __future__ import annotations

from flask import Flask, request

from ..bootstrap import Components
from ..core.errors import URITooLong

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# Blob responses may be opened in a tab: sandbox them so even a hostile file cannot run script.
BLOB_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"


def page_csp(storage_origins: list[str]) -> str:
    storage = " ".join(o for o in storage_origins if o)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: blob: {storage}".strip(),
        f"connect-src 'self' {storage}".strip(),
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def request_target_length(environ: dict) -> int:
    """Bytes in the request target as the client sent it (path and query string)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn / Werkzeug's server
    if raw:
        return len(raw.encode("latin-1", "replace"))
    # WSGI's PATH_INFO is the decoded path carried as latin-1; the query string stays encoded.
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    return len(path.encode("latin-1", "replace")) + (len(query) + 1 if query else 0)


COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
# An API answer's headers, served over plain HTTP (SecurityHeaders adds HSTS under HTTPS).
API_HEADERS = (("Content-Security-Policy", API_CSP),) + COMMON_HEADERS
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
NO_STORE = ("Cache-Control", "no-store")


class SecurityHeaders:
    """The security headers of each surface, built once; applied to a WSGI header list by the
    response envelope (web/observability.py), where adding them costs a list extend instead of
    a validated header set each."""

    def __init__(self, pages_policy: str, secure: bool):
        hsts = (HSTS,) if secure else ()
        common = COMMON_HEADERS + hsts
        self._blob = (("Content-Security-Policy", BLOB_CSP),) + common
        self._api = API_HEADERS + hsts
        self._pages = (("Content-Security-Policy", pages_policy),) + common
        self._names = {name.lower() for name, _ in self._api + (NO_STORE,)}

    def apply(self, path: str, headers: list[tuple[str, str]]) -> None:
        """Add this path's headers to the response's ``headers`` (replacing any of the same name)."""
        content_type = cache_control = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered == "cache-control":
                cache_control = value
        if path.startswith("/blobs/"):
            ours: tuple = self._blob
        elif path.startswith("/api/"):
            ours = self._pages if path == "/api/docs" else self._api
            if cache_control is None:
                ours += (NO_STORE,)
        else:
            ours = self._pages
            if content_type and content_type.startswith("text/html"):
                # Rendered pages carry the visitor's CSRF token: no shared or back-button cache may keep one.
                ours += (NO_STORE,)
        if any(name.lower() in self._names for name, _ in headers):
            headers[:] = [(name, value) for name, value in headers if name.lower() not in self._names or
                          (name.lower() == "cache-control" and NO_STORE not in ours)]
        headers.extend(ours)


def init_app(app: Flask, components: Components) -> SecurityHeaders:
    max_url_length = components.settings.max_url_length

    @app.before_request
    def refuse_long_targets():
        # Before routing and authentication: a huge target is refused the same way everywhere.
        if request_target_length(request.environ) > max_url_length:
            raise URITooLong(f"The address is longer than {max_url_length} bytes.")

    return SecurityHeaders(page_csp(components.blobs.origins()), components.settings.session_cookie_secure)
