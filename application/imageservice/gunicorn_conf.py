"""Gunicorn settings for the web app, read from the environment.

A gunicorn configuration module: the container starts

    gunicorn --config python:imageservice.gunicorn_conf "imageservice.web:create_app()"

and gunicorn reads this module's lower-case names. Reading the environment here, at import,
is the purpose of a config module; nothing else happens on import.

Environment (all optional):

    PORT                      port to listen on (8000)
    IMAGESERVICE_HOST         address to listen on (0.0.0.0: every interface of the container)
    IMAGESERVICE_BIND         full bind spec, overrides the two above ("127.0.0.1:8123", "unix:/tmp/s")
    IMAGESERVICE_WEB_WORKERS  worker processes (2 x usable CPUs + 1, at most MAX_AUTO_WORKERS)
    IMAGESERVICE_WEB_THREADS  threads per worker (4)
    IMAGESERVICE_WEB_TIMEOUT  seconds a request may take before its worker is restarted (60)
    IMAGESERVICE_LOG_LEVEL    gunicorn's log level (info)
    FORWARDED_ALLOW_IPS       proxies whose X-Forwarded-* headers are trusted (loopback); on
                              ECS the VPC range, since the load balancer's nodes live there
"""

from __future__ import annotations

import os

MAX_AUTO_WORKERS = 8
SHARED_MEMORY_DIR = "/dev/shm"


def _int_from_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}")
    return value


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_workers(cpus: int) -> int:
    """Gunicorn's rule of thumb, 2 x CPUs + 1, capped: image conversions run in the workers
    and each one may hold a large decoded image in memory."""
    return min(2 * cpus + 1, MAX_AUTO_WORKERS)


def bind_address() -> str:
    explicit = os.environ.get("IMAGESERVICE_BIND", "").strip()
    if explicit:
        return explicit
    host = os.environ.get("IMAGESERVICE_HOST", "").strip() or "0.0.0.0"
    port = _int_from_env("PORT", 8000)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


bind = [bind_address()]
workers = _int_from_env("IMAGESERVICE_WEB_WORKERS", default_workers(usable_cpus()))
# Threads let a worker wait on S3 and DynamoDB for one request while serving another.
worker_class = "gthread"
threads = _int_from_env("IMAGESERVICE_WEB_THREADS", 4)
timeout = _int_from_env("IMAGESERVICE_WEB_TIMEOUT", 60)
# ECS waits 30 s (StopTimeout) between SIGTERM and SIGKILL; finish in-flight requests before.
graceful_timeout = 25
# Longer than the ALB's 60 s idle timeout, so the ALB, not gunicorn, closes idle connections
# (otherwise a request can race a closing connection and get a 502).
keepalive = 75
# Restart workers now and then: long-lived processes that decode large images fragment memory.
max_requests = 1000
max_requests_jitter = 100

errorlog = "-"
loglevel = os.environ.get("IMAGESERVICE_LOG_LEVEL", "info").lower()
# ops: gunicorn's own lines as JSON on stdout, like the app's (imageservice/logs.py). Its access
# log stays off: the app writes one JSON line per request itself, with the request id.
accesslog = None
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


def post_worker_init(worker):
    """Local mode: each web worker process also runs a job-worker thread (see imageservice.worker)."""
    from imageservice.worker import post_worker_init as start_jobs

    start_jobs(worker)


def worker_exit(server, worker):
    from imageservice.worker import worker_exit as stop_jobs

    stop_jobs(worker)
