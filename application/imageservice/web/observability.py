"""Request ids, one JSON log line per request, and ``GET /metrics`` (local mode, admin only).

The request id is ``X-Request-Id`` when the client sent a usable one, else the ``Root`` of the
ALB's ``X-Amzn-Trace-Id``, else a new one; it is bound for the request (every log line of the
request carries it, records and jobs made by it store it) and echoed in ``X-Request-Id``.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, current_app

from ..core.correlation import accepted, bind, new_request_id, reset
from ..core.errors import Forbidden, NotFound
from .gate import canonical_path
from .health import LivenessProbe
from . import access_line
from .sessions import current_principal

log = logging.getLogger("imageservice.access")
REQUEST_ID_HEADER = "X-Request-Id"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

bp = Blueprint("observability", __name__)


def request_id_from(environ: dict) -> str:
    """X-Request-Id when usable, else the Root of X-Amzn-Trace-Id, else a new id."""
    sent = accepted(environ.get("HTTP_X_REQUEST_ID"))
    if sent:
        return sent
    trace = environ.get("HTTP_X_AMZN_TRACE_ID", "")
    root = next((part.split("=", 1)[1] for part in trace.split(";") if part.strip().startswith("Root=")), None)
    return accepted(root.strip() if root else None) or new_request_id()


class ResponseEnvelope:
    """WSGI middleware around the Flask app: what every response carries. The request id is
    bound before the app runs and echoed in X-Request-Id; the security headers are added; one
    access-log line is written per request.

    At the WSGI edge these cost a list append each, where Flask's after-request hooks paid for a
    validated header set and a hook call apiece on every request.
    """

    def __init__(self, app, security_headers):
        self.app = app
        self.security_headers = security_headers

    def __call__(self, environ: dict, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("//"):
            # "//api/x" routes to /api/x: it gets that route's headers too (no-store, the blob
            # CSP), not a page's; the gate (web/gate.py) reads the same canonical path.
            environ["PATH_INFO"] = canonical_path(path)
        request_id = request_id_from(environ)
        token = bind(request_id)
        started = time.perf_counter()

        def start(status: str, headers: list, exc_info=None):
            path = environ.get("PATH_INFO", "")
            self.security_headers.apply(path, headers)
            headers.append((REQUEST_ID_HEADER, request_id))
            if log.isEnabledFor(logging.INFO):
                method, code = environ.get("REQUEST_METHOD"), int(status[:3])
                log.info("%s %s %s", method, path, code, extra={
                    "method": method, "path": path, "status": code,
                    "milliseconds": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": None, **access_line.noted(environ),
                })
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            reset(token)


@bp.get("/metrics")
def metrics():
    """Prometheus text of the local metrics; an admin token is required (aws mode: 404, the
    metrics are CloudWatch EMF there)."""
    components = current_app.extensions["imageservice"]
    render = getattr(components.metrics, "render", None)
    if render is None:
        raise NotFound("Metrics go to CloudWatch in this mode.", code="not_found")
    if not current_principal(components.service).admin:
        raise Forbidden("Metrics need an admin token.", code="forbidden")
    return Response(render(), content_type=PROMETHEUS_CONTENT_TYPE)


def init_app(app: Flask, security_headers) -> None:
    app.wsgi_app = ResponseEnvelope(LivenessProbe(app.wsgi_app), security_headers)  # type: ignore[method-assign]
    app.register_blueprint(bp)
