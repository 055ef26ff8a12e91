"""One place where errors become HTTP: JSON ``{"error": {code, message}}`` for the API (and any
client that prefers JSON), an HTML page for browsers on the pages."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from ..core.errors import ServiceError, TooManyRequests, TransientError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/blobs/", "/healthz", "/readyz", "/metrics")
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 411: "length_required", 413: "too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    417: "expectation_failed", 422: "unprocessable", 426: "upgrade_required", 429: "rate_limited",
    431: "headers_too_large", 500: "internal_error", 501: "not_implemented", 503: "unavailable",
}
# A 429 that names no wait of its own (Werkzeug's, a proxy's) still tells clients when to come back.
DEFAULT_RETRY_AFTER = 60


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES) or request.path == "/api":
        return True
    if request.path.startswith("/s/"):  # a share link: its page is HTML, what is under it JSON
        return request.path.rstrip("/").count("/") > 2
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str):
    if wants_json():
        response = jsonify(error={"code": code, "message": message})
    else:
        response = render_template("error.html", status=status, code=code, message=message)
    return response, status


def retry_after_seconds(exc: Exception) -> int:
    """The Retry-After of a 429: the error's own wait, else DEFAULT_RETRY_AFTER."""
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 0:
        return max(1, int(wait))
    return DEFAULT_RETRY_AFTER


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        response = app.make_response(error_response(exc.status, exc.code, exc.message))
        if isinstance(exc, TooManyRequests) or exc.status == 429:
            response.headers["Retry-After"] = str(retry_after_seconds(exc))
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "The request body is too large."
        response = app.make_response(error_response(status, HTTP_CODES.get(status, "error"), message))
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        if status == 429:
            response.headers["Retry-After"] = str(retry_after_seconds(exc))
        return response

    @app.after_request
    def json_routing_redirects(response):
        """Werkzeug's routing redirects (a merged ``//`` or an added trailing slash, 308) skip the
        error handlers and carry an HTML body; under the JSON prefixes they get the error shape."""
        if isinstance(request.routing_exception, RequestRedirect) and wants_json():
            location = response.headers.get("Location", "")
            body = jsonify(error={"code": "moved_permanently",
                                  "message": f"This resource lives at {location}; repeat the request there."})
            response.set_data(body.get_data())
            response.mimetype = "application/json"
        return response

    @app.errorhandler(TransientError)
    def transient_error(exc: TransientError):
        log.warning("transient failure: %s", exc)
        return error_response(503, "unavailable", "A backend is briefly unavailable; try again.")

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")
