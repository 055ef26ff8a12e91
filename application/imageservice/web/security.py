"""Security headers on every response (DESIGN.md "Security rules"), and the request-target
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


def init_app(app: Flask, components: Components) -> None:
    pages_policy = page_csp(components.blobs.origins())
    secure = components.settings.session_cookie_secure
    max_url_length = components.settings.max_url_length

    @app.before_request
    def refuse_long_targets():
        # Before routing and authentication: a huge target is refused the same way everywhere.
        if request_target_length(request.environ) > max_url_length:
            raise URITooLong(f"The address is longer than {max_url_length} bytes.")

    @app.after_request
    def add_security_headers(response):
        headers = response.headers
        if request.path.startswith("/blobs/"):
            headers["Content-Security-Policy"] = BLOB_CSP
        elif request.path.startswith("/api/") and request.path != "/api/docs":
            headers["Content-Security-Policy"] = API_CSP
        else:
            headers["Content-Security-Policy"] = pages_policy
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if secure:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if request.path.startswith("/api/") and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        elif response.mimetype == "text/html" and not request.path.startswith("/blobs/"):
            # Rendered pages carry the visitor's CSRF token: no shared or back-button cache may keep one.
            headers["Cache-Control"] = "no-store"
        return response
