"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


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
