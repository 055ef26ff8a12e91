"""Who is calling: a Bearer token, or an anonymous session workspace (Flask-Session, server-side).

A workspace is made by a page visit and lives ``session_ttl`` seconds from its creation (not
from the last visit). Cookie-authenticated writes must carry the session's CSRF token in the
``X-CSRF-Token`` header (or a ``csrf_token`` form field).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from flask import Flask, g, request, session
from flask_session import Session

from ..bootstrap import Components
from ..core import keys
from ..core.errors import Forbidden, Unauthorized
from ..core.ids import new_id
from ..core.timeutil import from_iso, to_iso, utcnow
from ..service import Principal

WORKSPACE = "workspace"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask, components: Components) -> None:
    settings = components.settings
    app.config["SESSION_PERMANENT"] = True
    app.config["SESSION_KEY_PREFIX"] = "imageservice:"
    if settings.backend == "aws":
        app.config["SESSION_TYPE"] = "dynamodb"
        app.config["SESSION_DYNAMODB"] = components.aws_clients.dynamodb_resource  # type: ignore[union-attr]
        app.config["SESSION_DYNAMODB_TABLE"] = settings.session_table or "Sessions"
    else:
        from cachelib.file import FileSystemCache

        app.config["SESSION_TYPE"] = "cachelib"
        app.config["SESSION_CACHELIB"] = FileSystemCache(
            str(settings.data_path / "sessions"), threshold=100_000, default_timeout=settings.session_ttl, mode=0o600
        )
    Session(app)


def _live_workspace() -> dict | None:
    workspace = session.get(WORKSPACE)
    if not workspace:
        return None
    if from_iso(workspace["expires_at"]) <= utcnow():
        return None
    return workspace


def ensure_workspace(ttl_seconds: int) -> dict:
    """The visitor's workspace, made now when there is none or the old one expired."""
    workspace = _live_workspace()
    if workspace is None:
        now = utcnow()
        workspace = {
            "user_id": keys.SESSION_USER_PREFIX + new_id().lower(),
            "created_at": to_iso(now),
            "expires_at": to_iso(now + timedelta(seconds=ttl_seconds)),
            "csrf_token": secrets.token_urlsafe(32),
        }
        session.clear()
        session[WORKSPACE] = workspace
        session.permanent = True
    return workspace


def csrf_token() -> str | None:
    workspace = _live_workspace()
    return workspace["csrf_token"] if workspace else None


def current_principal(service) -> Principal:
    """Resolve the caller once per request. Raises Unauthorized / Forbidden (CSRF)."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="invalid_token")
        principal = service.authenticate_token(token.strip())
        if principal is None:
            raise Unauthorized("The token is not valid.", code="invalid_token")
    else:
        workspace = _live_workspace()
        if workspace is None:
            raise Unauthorized(
                "Send 'Authorization: Bearer <token>', or open the web UI to get a session.", code="unauthenticated"
            )
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
            if not sent or not hmac.compare_digest(sent.encode(), workspace["csrf_token"].encode()):
                raise Forbidden("The CSRF token is missing or wrong; reload the page.", code="csrf_failed")
        principal = Principal(workspace["user_id"], expires_at=workspace["expires_at"])
    g.principal = principal
    return principal
