"""The app as ASGI, for gunicorn's asyncio worker (``imageservice serve``).

The asyncio worker reads every request's headers and body on its event loop, so a client that
dribbles its headers holds a socket, not a thread; only whole requests reach the Flask app,
which runs in a2wsgi's thread pool. gunicorn's gthread worker, by contrast, gives a connection a
thread as soon as its first byte arrives (ten slow sockets stopped /healthz).
"""

from __future__ import annotations

from a2wsgi import WSGIMiddleware

from ..settings import Settings


def create_asgi_app(settings: Settings | None = None):
    """``imageservice.web.asgi:create_asgi_app()``: the Flask app behind a WSGI-to-ASGI bridge
    with ``web_threads`` threads."""
    from . import create_app

    settings = settings or Settings.from_env()
    return WSGIMiddleware(create_app(settings), workers=settings.web_threads)
