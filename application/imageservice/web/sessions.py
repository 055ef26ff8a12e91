"""Who is calling: a Bearer token, or an anonymous session workspace (Flask-Session, server-side).

A page visit stores nothing: it gives the browser a signed *visitor* cookie that holds one
random value, from which the server derives (HMAC with the secret key) the visitor's CSRF token
and the user id of its prospective workspace; the cookie's readable payload gives neither
away. Reads with it see an empty workspace. The first write makes the workspace: the anonymous
admission (admission.py) counts it against the client's and everyone's budgets (429 +
Retry-After when spent) and records it, then Flask-Session stores it and its cookie replaces the
visitor cookie. So crawlers, 404s and drive-by GETs cost no storage and no quota.

Once the workspace exists the visitor cookie is spent: its reads never looked at the workspace,
and its writes join it only within ``visitor_join_seconds`` of its creation (a page's first
writes run at once); after that they are refused, 403 ``visitor_spent``.

A workspace lives ``session_ttl`` seconds from its creation (not from the last visit). Writes
must carry the CSRF token in the ``X-CSRF-Token`` header (or a ``csrf_token`` form field).

The local store is cachelib's FileSystemCache, which past its threshold first removes expired
entries and then the live ones nearest to expiry. Entries are written once, at creation, and
expire with their workspace (no refresh on each request), and at most ``anon_workspaces_total``
are admitted per ``session_ttl``, so no more than twice that are ever unexpired: the threshold
sits above that, and a flood is refused at admission instead of pushing real sessions out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSession, SessionInterface
from flask_session import Session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..admission import client_address
from ..bootstrap import Components
from ..core import keys
from ..core.errors import Forbidden, Unauthorized
from ..core.timeutil import from_iso, to_iso, utcnow
from ..auth import Principal
from . import access_line

WORKSPACE = "workspace"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VISITOR_COOKIE = "imageservice_visitor"
VISITOR_SALT = "imageservice.visitor"
VISITOR_NONCE_BYTES = 24
VISITOR_ID_CHARS = 26  # as long as an image id: the prospective user id's random part
EXTENSION = "imageservice.sessions"
# Unexpired store entries are at most 2 x anon_workspaces_total (see the module docstring).
STORE_THRESHOLD_FACTOR = 4


def store_threshold(settings) -> int:
    return STORE_THRESHOLD_FACTOR * max(1, settings.anon_workspaces_total)


class _State:
    """What the session layer keeps per app: the visitor-cookie signer and settings it reads."""

    def __init__(self, components: Components, secret_key: str):
        settings = components.settings
        self.ttl = settings.session_ttl
        self.trusted_proxies = settings.trusted_proxies
        self.secure = settings.session_cookie_secure
        self.admission = components.admission
        self.signer = URLSafeTimedSerializer(secret_key, salt=VISITOR_SALT)
        self.secret = secret_key.encode() if isinstance(secret_key, str) else secret_key

    def derive(self, purpose: str, nonce: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()


# Paths no session can matter to: health probes (the load balancer's, every few seconds) and
# static assets.
SESSIONLESS_PREFIXES = ("/healthz", "/readyz", "/static/", "/s/")  # /s/: public share links, no cookies


class _SessionsOnlyWhereUsed(SessionInterface):
    """A token-authenticated API call, a health probe or a static file never uses the session:
    it gets an empty, unsaved one instead of the session store's work (the request-path budget)."""

    def __init__(self, inner: SessionInterface):
        self.inner = inner

    @staticmethod
    def _skips(request) -> bool:
        return "Authorization" in request.headers or request.path.startswith(SESSIONLESS_PREFIXES)

    def open_session(self, app, request):
        if self._skips(request):
            return SecureCookieSession()
        return self.inner.open_session(app, request)

    def save_session(self, app, session, response):
        if self._skips(request):
            return None
        return self.inner.save_session(app, session, response)

    def make_null_session(self, app):
        return self.inner.make_null_session(app)


def init_app(app: Flask, components: Components) -> None:
    settings = components.settings
    app.config["SESSION_PERMANENT"] = True
    app.config["SESSION_KEY_PREFIX"] = "imageservice:"
    # Written once when the workspace is made, expiring with it: a visit never rewrites it.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    if settings.backend == "aws":
        app.config["SESSION_TYPE"] = "dynamodb"
        if components.aws_clients is None:
            raise RuntimeError("aws mode's sessions need the boto3 clients")
        app.config["SESSION_DYNAMODB"] = components.aws_clients.dynamodb_resource
        app.config["SESSION_DYNAMODB_TABLE"] = settings.session_table or "Sessions"
    else:
        from cachelib.file import FileSystemCache

        app.config["SESSION_TYPE"] = "cachelib"
        app.config["SESSION_CACHELIB"] = FileSystemCache(
            str(settings.data_path / "sessions"), threshold=store_threshold(settings),
            default_timeout=settings.session_ttl, mode=0o600,
        )
    Session(app)
    app.session_interface = _SessionsOnlyWhereUsed(app.session_interface)
    app.extensions[EXTENSION] = state = _State(components, app.config["SECRET_KEY"])

    @app.after_request
    def visitor_cookie(response):
        change = g.pop("visitor_cookie", None)
        if change == "":
            response.delete_cookie(VISITOR_COOKIE, httponly=True, samesite="Lax", secure=state.secure)
        elif change:
            response.set_cookie(VISITOR_COOKIE, change, max_age=state.ttl, httponly=True, samesite="Lax",
                                secure=state.secure)
        return response


def _state() -> _State:
    return current_app.extensions[EXTENSION]


def request_client() -> str:
    """The caller's address for admission budgets (X-Forwarded-For through trusted proxies only)."""
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), _state().trusted_proxies)


def _live_workspace() -> dict | None:
    workspace = session.get(WORKSPACE)
    if not workspace:
        return None
    if from_iso(workspace["expires_at"]) <= utcnow():
        return None
    return workspace


def _visitor_from(nonce: str) -> dict:
    """The visitor a cookie's random value stands for: the user id its first write makes a
    workspace under, the id its reads look under (where nothing is ever stored: a copy of the
    cookie reads nothing of the workspace), and its CSRF token."""
    state = _state()
    return {"user_id": keys.SESSION_USER_PREFIX + state.derive("user", nonce)[:VISITOR_ID_CHARS],
            "reader_id": keys.SESSION_USER_PREFIX + state.derive("reader", nonce)[:VISITOR_ID_CHARS],
            "csrf_token": state.derive("csrf", nonce)}


def _visitor() -> dict | None:
    """The signed visitor of this browser (``user_id``, ``csrf_token``), or None."""
    if "visitor" not in g:
        g.visitor = None
        raw = request.cookies.get(VISITOR_COOKIE)
        if raw:
            try:
                data = _state().signer.loads(raw, max_age=_state().ttl)
            except BadSignature:  # also SignatureExpired
                data = None
            if isinstance(data, dict) and isinstance(data.get("v"), str):
                g.visitor = _visitor_from(data["v"])
    return g.visitor


def _new_visitor() -> dict:
    nonce = secrets.token_urlsafe(VISITOR_NONCE_BYTES)
    g.visitor = _visitor_from(nonce)
    g.visitor_cookie = _state().signer.dumps({"v": nonce})
    return g.visitor


def _prospective(visitor: dict, ttl_seconds: int) -> dict:
    """The empty workspace a visitor sees before its first write (nothing stored)."""
    return {"user_id": visitor["reader_id"], "created_at": None,
            "expires_at": to_iso(utcnow() + timedelta(seconds=ttl_seconds)),
            "csrf_token": visitor["csrf_token"], "stored": False}


def ensure_workspace(ttl_seconds: int) -> dict:
    """The visitor's workspace for a page: the stored one when live, else the prospective one of
    this browser's visitor (a new visitor cookie when it has none). Stores nothing."""
    workspace = _live_workspace()
    if workspace is not None:
        return workspace
    return _prospective(_visitor() or _new_visitor(), ttl_seconds)


def _create_workspace(visitor: dict, client: str) -> dict:
    """The first write: admitted, or joined within the grace (raises TooManyRequests, or
    Forbidden once the cookie is spent), then stored in this browser's session."""
    now = utcnow()
    _state().admission.open_workspace(visitor["user_id"], client, now)
    workspace = {
        # The visitor's id: a page's first writes run at once (three files dropped together),
        # each with the visitor cookie alone, and must all land in one workspace.
        "user_id": visitor["user_id"],
        "created_at": to_iso(now),
        "expires_at": to_iso(now + timedelta(seconds=_state().ttl)),
        "csrf_token": visitor["csrf_token"],  # the token the page already holds
        "stored": True,
    }
    session.clear()
    session[WORKSPACE] = workspace
    session.permanent = True
    g.visitor_cookie = ""  # the session cookie takes over
    return workspace


def csrf_token() -> str | None:
    workspace = _live_workspace()
    if workspace:
        return workspace["csrf_token"]
    visitor = _visitor()
    return visitor["csrf_token"] if visitor else None


def _check_csrf(expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("The CSRF token is missing or wrong; reload the page.", code="csrf_failed")


def current_principal(service) -> Principal:
    """Resolve the caller once per request. Raises Unauthorized, Forbidden (CSRF) or, on a
    first write that the anonymous budgets refuse, TooManyRequests."""
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
            visitor = _visitor()
            if visitor is None:
                raise Unauthorized(
                    "Send 'Authorization: Bearer <token>', or open the web UI to get a session.", code="unauthenticated"
                )
            if request.method in SAFE_METHODS:
                workspace = _prospective(visitor, _state().ttl)
            else:
                _check_csrf(visitor["csrf_token"])
                workspace = _create_workspace(visitor, request_client())
        elif request.method not in SAFE_METHODS:
            _check_csrf(workspace["csrf_token"])
        principal = Principal(workspace["user_id"], expires_at=workspace["expires_at"], client=request_client())
    g.principal = principal
    access_line.note(user_id=principal.user_id)
    return principal
