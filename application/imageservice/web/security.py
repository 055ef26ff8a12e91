"""Security headers on every response (DESIGN.md "Security rules")."""

from __future__ import annotations

from flask import Flask, request

from ..bootstrap import Components

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


def init_app(app: Flask, components: Components) -> None:
    pages_policy = page_csp(components.blobs.origins())
    secure = components.settings.session_cookie_secure

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
        return response
