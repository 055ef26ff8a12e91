"""Request ids, one JSON log line per request, and ``GET /metrics`` (local mode, admin only).

The request id is ``X-Request-Id`` when the client sent a usable one, else the ``Root`` of the
ALB's ``X-Amzn-Trace-Id``, else a new one; it is bound for the request (every log line of the
request carries it, records and jobs made by it store it) and echoed in ``X-Request-Id``.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, current_app, g, request

from ..core.correlation import accepted, bind, new_request_id, reset
from ..core.errors import Forbidden, NotFound
from .sessions import current_principal

log = logging.getLogger("imageservice.access")
REQUEST_ID_HEADER = "X-Request-Id"
TRACE_HEADER = "X-Amzn-Trace-Id"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

bp = Blueprint("observability", __name__)


def request_id_from(headers) -> str:
    sent = accepted(headers.get(REQUEST_ID_HEADER))
    if sent:
        return sent
    trace = headers.get(TRACE_HEADER, "")
    root = next((part.split("=", 1)[1] for part in trace.split(";") if part.strip().startswith("Root=")), None)
    return accepted(root.strip() if root else None) or new_request_id()


def _begin() -> None:
    g.request_id = request_id_from(request.headers)
    g.request_id_token = bind(g.request_id)
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    started = g.get("request_started")
    principal = g.get("principal")
    log.info("%s %s %s", request.method, request.path, response.status_code, extra={
        "method": request.method, "path": request.path, "status": response.status_code,
        "milliseconds": round((time.perf_counter() - started) * 1000, 1) if started else None,
        "user_id": getattr(principal, "user_id", None),
    })
    return response


def _end(exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
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


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
    app.register_blueprint(bp)
