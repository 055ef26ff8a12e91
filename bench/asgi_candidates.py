"""The WSGI apps behind a2wsgi's WSGIMiddleware, for bench_servers.py's uvicorn candidate:
``gunicorn -k uvicorn.workers.UvicornWorker 'asgi_candidates:service()'`` (or ``bare()``)."""

from __future__ import annotations


def service():
    from a2wsgi import WSGIMiddleware

    from imageservice.web import create_app

    return WSGIMiddleware(create_app())


def bare():
    from a2wsgi import WSGIMiddleware

    from bare_flask import app

    return WSGIMiddleware(app)
