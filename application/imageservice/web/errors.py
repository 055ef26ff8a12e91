"""One place where errors become HTTP: JSON ``{"error": {code, message}}`` for the API (and any
client that prefers JSON), an HTML page for browsers on the pages."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..core.errors import ServiceError, TransientError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/blobs/", "/healthz", "/readyz", "/metrics")
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 411: "length_required", 413: "too_large", 415: "unsupported_media_type",
    422: "unprocessable", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES) or request.path == "/api":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str):
    if wants_json():
        response = jsonify(error={"code": code, "message": message})
    else:
        response = render_template("error.html", status=status, code=code, message=message)
    return response, status


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "The request body is too large."
        response, status = error_response(status, HTTP_CODES.get(status, "error"), message)
        if status == 405 and getattr(exc, "valid_methods", None):
            response = app.make_response((response, status))
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response, status

    @app.errorhandler(TransientError)
    def transient_error(exc: TransientError):
        log.warning("transient failure: %s", exc)
        return error_response(503, "unavailable", "A backend is briefly unavailable; try again.")

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")
