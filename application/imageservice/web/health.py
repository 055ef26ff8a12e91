"""Liveness and readiness.

``GET /healthz`` (liveness: the process serves requests) is answered by ``LivenessProbe`` in
front of Flask: the load balancer asks every few seconds per task, and the answer depends on
nothing Flask does. It still passes through the response envelope (request id, security
headers, access line). Other methods reach the Flask route below (405 in the error shape).
``GET /readyz`` (readiness) pings every backend.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


LIVENESS_BODY = b'{"status":"ok"}\n'


class LivenessProbe:
    """WSGI middleware: GET and HEAD /healthz answered without the app."""

    def __init__(self, app):
        self.app = app
        self.headers = [("Content-Type", "application/json"), ("Content-Length", str(len(LIVENESS_BODY)))]

    def __call__(self, environ: dict, start_response):
        if environ.get("PATH_INFO") != "/healthz" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        start_response("200 OK", list(self.headers))
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else LIVENESS_BODY]


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    components = current_app.extensions["imageservice"]
    checks, ready = {}, True
    for name in ("blobs", "catalog", "queue"):
        try:
            getattr(components, name).ping()
            checks[name] = "ok"
        except Exception as exc:  # readiness reports any backend failure instead of raising
            checks[name] = f"error: {type(exc).__name__}"
            ready = False
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503
