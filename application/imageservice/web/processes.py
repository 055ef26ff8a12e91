"""``imageservice serve``: gunicorn's arbiter runs ``web_workers`` processes, each serving the
shared listening socket with waitress as web/server.py guards it (docs/SERVER.md).

gunicorn does what a process manager must (pre-fork, replace a worker that dies or stops
answering its heartbeat, forward SIGTERM and wait ``graceful_timeout``); waitress does the HTTP
in each worker, where its I/O thread keeps the app's threads away from slow clients. One
process of waitress alone holds one core: the app's Python work (a listing, a page) needs both.

The worker class is the one piece between the two: gunicorn's ``Worker`` whose ``run`` is
web/server.py's ``Service`` on the sockets gunicorn opened, plus a heartbeat thread.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Callable

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

from ..ports import Metrics
from ..settings import Settings
from .gate import BodyGate
from .server import Service

log = logging.getLogger("imageservice.server")

SERVING = "imageservice.serving"  # the app's extension: what its worker serves it with
# The arbiter replaces a worker whose heartbeat stops for this long (a wedged process).
HEARTBEAT_TIMEOUT_SECONDS = 30


@dataclass
class Serving:
    """What a worker process needs besides the app: the settings, the gate and metrics of its
    server, and what to start beside it (local mode's job threads) and stop after it."""

    settings: Settings
    gate: BodyGate
    metrics: Metrics
    start_beside: Callable[[], Callable[[], None]] | None = None


class WaitressWorker(Worker):
    """A gunicorn worker that serves its sockets with the guarded waitress Service."""

    service: Service | None = None

    def run(self) -> None:
        serving: Serving = self.wsgi.extensions[SERVING]
        self.service = Service(self.wsgi, serving.settings, sockets=[listener.sock for listener in self.sockets],
                               gate=serving.gate, metrics=serving.metrics)
        if not self.alive:  # SIGTERM came while the app loaded, before there was a service to stop
            self.service.stop()
        stop_beside = serving.start_beside() if serving.start_beside else None
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        for host, port in self.service.addresses:
            log.info("serving on http://%s:%s (%d threads, process %d)", host, port, serving.settings.web_threads,
                     os.getpid())
        try:
            self.service.run()
        finally:
            if stop_beside is not None:
                stop_beside()

    def _heartbeat(self) -> None:
        """Tell the arbiter this process lives; stop serving if the arbiter has gone."""
        interval = max(0.5, self.timeout / 4)
        stopping = self.service.stopping
        while not stopping.wait(interval):
            if os.getppid() != self.ppid:
                log.warning("the arbiter %s has gone; stopping", self.ppid)
                self.service.stop()
                return
            self.notify()

    def handle_exit(self, sig, frame) -> None:
        """SIGTERM: stop accepting, close idle connections, let requests in flight finish."""
        self.alive = False
        if self.service is not None:
            self.service.stop()


class JsonLogs(Logger):
    """gunicorn's own lines (the arbiter, worker boots and exits) go through the app's JSON
    handler on the root logger (logs.py), not a handler and format of gunicorn's."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True
        self.error_log.setLevel(self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO))


class ServeApplication(BaseApplication):
    """gunicorn's arbiter configured from the settings, loading ``make_app`` in each worker."""

    def __init__(self, make_app: Callable[[], object], settings: Settings, host: str, port: int):
        self.make_app, self.settings, self.host, self.port = make_app, settings, host, port
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        host = f"[{self.host}]" if ":" in self.host else self.host
        for name, value in {
            "bind": [f"{host}:{self.port}"],
            "workers": s.web_workers,
            "worker_class": f"{__name__}.WaitressWorker",
            "timeout": HEARTBEAT_TIMEOUT_SECONDS,
            "graceful_timeout": math.ceil(s.web_graceful_seconds),
            "proc_name": "imageservice",
            "loglevel": s.log_level.lower(),
            "accesslog": None,  # each request's line is the app's (web/access_line.py)
            "logger_class": f"{__name__}.JsonLogs",
            "control_socket_disable": True,  # no gunicornc socket in the home directory
        }.items():
            self.cfg.set(name, value)

    def load(self):
        return self.make_app()


def serve(make_app: Callable[[], object], settings: Settings, host: str, port: int) -> int:
    """Run the arbiter until SIGTERM or SIGINT; ``make_app`` runs in each worker and returns an
    app whose ``extensions[SERVING]`` is a ``Serving``."""
    ServeApplication(make_app, settings, host, port).run()
    return 0
