"""Gunicorn settings for the web app, taken from imageservice's Settings.

A gunicorn configuration module: the container starts

    gunicorn --config python:imageservice.gunicorn_conf "imageservice.web:create_app()"

and gunicorn reads this module's lower-case names. The values come from ``Settings.from_env()``
(the one place the environment is parsed); reading them here, at import, is the purpose of a
config module; nothing else happens on import.

Settings used (environment ``IMAGESERVICE_<NAME>``): ``host``/``port`` (also ``PORT``) or a full
``bind``; ``web_workers`` (0: 2 x usable CPUs + 1, at most MAX_AUTO_WORKERS), ``web_threads``,
``web_timeout``, ``web_max_requests`` (+ ``web_max_requests_jitter``), ``log_level``.
``FORWARDED_ALLOW_IPS`` is gunicorn's own variable: proxies whose X-Forwarded-* headers are
trusted (loopback); on ECS the VPC range, since the load balancer's nodes live there.

``imageservice serve`` runs the same module with gunicorn's asyncio worker and the app behind a
WSGI-to-ASGI bridge (web/asgi.py), so slow clients hold sockets, not threads. The container
keeps the gthread worker: there the ALB receives whole requests before it forwards them.
"""

from __future__ import annotations

import os

from gunicorn.glogging import Logger

from imageservice import logs
from imageservice.settings import Settings

MAX_AUTO_WORKERS = 8
SHARED_MEMORY_DIR = "/dev/shm"


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_workers(cpus: int) -> int:
    """Gunicorn's rule of thumb, 2 x CPUs + 1, capped: each worker holds the app and its caches."""
    return min(2 * cpus + 1, MAX_AUTO_WORKERS)


def bind_address(settings: Settings) -> str:
    if settings.bind:
        return settings.bind
    host = settings.host or "0.0.0.0"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{settings.port}"


_settings = Settings.from_env()

bind = [bind_address(_settings)]
workers = _settings.web_workers or default_workers(usable_cpus())
# Threads let a worker wait on S3 and DynamoDB for one request while serving another.
worker_class = "gthread"
threads = _settings.web_threads
timeout = _settings.web_timeout
# ECS waits 30 s (StopTimeout) between SIGTERM and SIGKILL; finish in-flight requests before.
graceful_timeout = 25
# Longer than the ALB's 60 s idle timeout, so the ALB, not gunicorn, closes idle connections
# (otherwise a request can race a closing connection and get a 502).
keepalive = 75
max_requests = _settings.web_max_requests
max_requests_jitter = _settings.web_max_requests_jitter

# The app writes one structured JSON line per request on stdout (web/observability.py);
# gunicorn's own access line would be a second, unstructured one per request.
accesslog = None


class AppWritesAccessLines(Logger):
    """gunicorn's logger with its access line off for good. With a ``logconfig_dict`` gunicorn
    counts access logging as configured and builds every request's line fields, only for the
    ``gunicorn.access`` logger below to drop the line."""

    access_log_enabled = False


logger_class = AppWritesAccessLines
errorlog = "-"
loglevel = _settings.log_level.lower()
# ops: gunicorn's own lines (start, workers, signals) as JSON on stdout too, like the app's
# (imageservice/logs.py).
logconfig_dict = {
    "root": {"level": loglevel.upper(), "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["json"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "WARNING", "handlers": ["json"], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"],
                          "stream": "ext://sys.stdout"}},
    "filters": {"request_id": {"()": "imageservice.logs.RequestIdFilter"}},
    "formatters": {"json": {"()": "imageservice.logs.JsonFormatter"}},
}

# The JSON lines show none of the caller/thread/process fields a LogRecord collects by default.
logs.lean_records()

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Worker heartbeat files: on tmpfs, which also stays writable under a read-only root.
worker_tmp_dir = (
    SHARED_MEMORY_DIR
    if os.path.isdir(SHARED_MEMORY_DIR) and os.access(SHARED_MEMORY_DIR, os.W_OK)
    else None
)

# Gunicorn 25+ opens a control socket under $HOME; the container user has no home and a
# read-only root. Older gunicorn ignores the unknown name.
control_socket_disable = True


def when_ready(server):
    """With ``--reuse-port`` (``imageservice serve``) each worker opens its own socket and the
    arbiter's "Listening at" line names none: say where, for the operator."""
    if not server.LISTENERS:
        server.log.info("Listening at: %s (a socket per worker, SO_REUSEPORT)", ",".join(
            f"http://{address}" for address in server.cfg.bind))


def post_worker_init(worker):
    """Local mode: each web worker process also runs a job-worker thread (see imageservice.worker)."""
    from imageservice.worker import post_worker_init as start_jobs

    if not hasattr(worker, "wsgi"):  # the asyncio worker of `serve`: the Flask app is inside the bridge
        worker.wsgi = worker.asgi.app
    if "imageservice" not in getattr(worker.wsgi, "extensions", {}):
        return  # another app under this config (bench/bare_flask.py)
    start_jobs(worker)


def worker_exit(server, worker):
    from imageservice.worker import worker_exit as stop_jobs

    stop_jobs(worker)
