"""The Flask app factory: settings in, an app with the api, pages and blobs blueprints out."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from ..bootstrap import Components, build_components
from ..settings import Settings
from .json_provider import OrjsonProvider

EXTENSION = "imageservice"
API_BODY_LIMIT = 1024 * 1024
SESSION_COOKIE = "imageservice_session"


def server_settings() -> Settings:
    """Settings for an app gunicorn serves (``create_app()``, ``create_asgi_app()``): from the
    environment; this process's logs become JSON lines on stdout, written in batches (a line
    per request, see logs.BufferedLineHandler)."""
    from .. import logs

    settings = Settings.from_env()
    logs.configure(settings.log_level.upper(), buffered=True)
    return settings


def create_app(settings: Settings | None = None, components: Components | None = None) -> Flask:
    """Build the app. With no arguments, settings come from the environment (gunicorn's
    ``imageservice.web:create_app()``)."""
    if settings is None and components is None:
        settings = server_settings()
    settings = settings or (components.settings if components else Settings.from_env())
    components = components or build_components(settings)

    app = Flask(__name__, static_folder=None)  # the pages blueprint serves static files
    app.json = OrjsonProvider(app)
    app.config.update(
        SECRET_KEY=settings.resolved_secret_key() if settings.backend == "local" else settings.secret_key,
        MAX_CONTENT_LENGTH=API_BODY_LIMIT,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_ttl),
    )
    if not app.config["SECRET_KEY"]:
        raise RuntimeError("IMAGESERVICE_SECRET_KEY must be set in aws mode")
    app.extensions[EXTENSION] = components

    from . import errors, observability, security, sessions
    from .api import bp as api_bp
    from .blobs import bp as blobs_bp
    from .health import bp as health_bp
    from .pages import bp as pages_bp
    from .share import bp as share_bp

    observability.init_app(app, security.init_app(app, components))
    sessions.init_app(app, components)
    errors.init_app(app)
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(pages_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(share_bp)
    if settings.backend == "local":
        app.register_blueprint(blobs_bp, url_prefix="/blobs")
    return app


def components_of(app: Flask) -> Components:
    return app.extensions[EXTENSION]
