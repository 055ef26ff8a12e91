"""The app under waitress, in each process of ``imageservice serve`` (web/processes.py runs
them under gunicorn's arbiter; docs/SERVER.md).

waitress keeps the app's threads away from slow clients by design: one I/O thread reads every
request in full (a body past ``inbuf_overflow`` spooled to a temporary file) before a task
thread runs the app, and writes every response from its buffers, streaming a
``wsgi.file_wrapper`` (a local blob download) from the file, so a client that reads slowly or
not at all holds a socket and a buffer, never a thread. This module configures it from the
settings and adds what the service needs on top, through waitress's own extension points (the
channel's parser and task classes, the server's ``maintenance``):

- ``BodyGate`` (web/gate.py) runs when the headers are complete, so a body that would be refused
  is never read;
- a request must arrive in full within ``web_request_seconds`` plus its length over
  ``web_min_body_rate``: a client that dribbles its headers or body is cut off, not waited for;
- every answer the server gives itself (a parse error, a refusal) is the JSON error shape;
- a slow-client disconnect, a refusal and the connection limit count in the metrics, and a
  request that waited in the queue longer than ``web_queue_warning_seconds`` is logged;
- SIGTERM closes idle keep-alive connections at once, lets in-flight requests finish (up to
  ``web_graceful_seconds``) and stops the job threads after their current job.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http import HTTPStatus

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask
from waitress.utilities import Error

from ..jsontext import dumps
from ..settings import Settings
from .errors import HTTP_CODES
from .gate import BodyGate, Refusal
from .security import API_HEADERS, NO_STORE

log = logging.getLogger("imageservice.server")

# How often the I/O thread looks for requests past their deadline and idle connections.
MAINTENANCE_SECONDS = 1.0
# Request bodies up to this size stay in memory; larger ones are spooled to a temporary file.
BODY_IN_MEMORY_BYTES = 512 * 1024
# The task thread buffers its whole answer and sends it when done, rather than the I/O thread
# sending every 18 KB (waitress's default) while the task still writes: both sides took the
# channel's buffer lock in turn, and a 20-record listing went out at 200-1000 requests a second
# instead of 2000 (docs/SERVER.md). A download (wsgi.file_wrapper) is streamed by the I/O
# thread after the task ends either way.
SEND_BYTES = 1 << 20
# The most often the server says its request threads are all busy.
SATURATION_WARNING_SECONDS = 10.0
# After answering a request it did not read in full, the server reads and drops what the client
# still sends for this long before it closes (see Channel.handle_close).
LINGER_SECONDS = 2.0


def _first_values(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    values: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(name, value)
    return values


class RefusedRequest(Error):
    """A request the server answers itself: waitress's own errors and the gate's refusals."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.code = status
        self.reason = HTTPStatus(status).phrase
        self.error_code = code


def error_body(status: int, code: str, message: str) -> bytes:
    return dumps({"error": {"code": code, "message": message or HTTPStatus(status).phrase}}).encode()


class JsonErrorTask(ErrorTask):
    """The server's own answers in the service's error shape, with the API's security headers."""

    def execute(self):
        error = self.request.error
        code = getattr(error, "error_code", None) or HTTP_CODES.get(error.code, "error")
        body = error_body(error.code, code, error.body)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), *API_HEADERS, NO_STORE])
        self.set_close_on_finish()
        self.channel.linger = True
        self.content_length = len(body)
        self.write(body)


class SaturationLog:
    """Stands in for waitress's ``waitress.queue`` logger, which warns on every request that
    finds no idle thread: under load that is a WARNING line per request, and each WARNING
    flushes the log at once (measured: 4x fewer uploads per second). One line per
    SATURATION_WARNING_SECONDS says the same, with the deepest queue seen."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0.0
        self._deepest = 0

    def warning(self, message: str, depth: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._deepest = max(self._deepest, depth)
            if now < self._next:
                return
            deepest, self._deepest, self._next = self._deepest, 0, now + SATURATION_WARNING_SECONDS
        log.warning("the request pool is saturated: up to %d requests waited for a thread", deepest)


class GuardedServer(TcpWSGIServer):
    """A waitress TCP server with the service's gate, deadlines, metrics and stop."""

    def __init__(self, application, *, adj: Adjustments, sock: socket.socket, dispatcher, map, settings: Settings,
                 gate: BodyGate, metrics):
        """Serve ``sock``, opened and bound by gunicorn's arbiter (web/processes.py)."""
        self.settings, self.gate, self.metrics = settings, gate, metrics
        self.channel_class = self._channel_class()
        self._was_full = False
        super().__init__(application, map=map, dispatcher=dispatcher, adj=adj, _sock=sock, bind_socket=False,
                         sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))

    def _channel_class(self):
        server = self

        class Parser(HTTPRequestParser):
            def __init__(self, adj):
                super().__init__(adj)
                self.started = time.time()
                self.deadline = self.started + server.settings.web_request_seconds
                self.received_at = None

            def parse_header(self, header_plus):
                super().parse_header(header_plus)
                if self.body_rcv is None:
                    return
                length = None if self.chunked else self.content_length
                if length:
                    self.deadline += length / server.settings.web_min_body_rate
                headers = self.headers
                refusal = server.gate.check(self.command, self.path, _first_values(self.query),
                                            lambda name: headers.get(name.upper().replace("-", "_")), length)
                if refusal is not None:
                    server.count("server_requests_refused", code=refusal.code)
                    self.refuse(refusal)

            def refuse(self, refusal: Refusal):
                self.error = RefusedRequest(refusal.status, refusal.code, refusal.message)
                self.expect_continue = False  # no "100 Continue" invites a body that is not wanted
                self.completed = True

            def received(self, data):
                consumed = super().received(data)
                if self.completed and self.received_at is None:
                    self.received_at = time.time()
                return consumed

        class Task(WSGITask):
            def service(self):
                waited = time.time() - (self.request.received_at or time.time())
                if waited > server.settings.web_queue_warning_seconds:
                    log.warning("a request waited %.1f s for a free thread (%s %s): the request pool is saturated",
                                waited, self.request.command, self.request.path)
                super().service()

        class Channel(HTTPChannel):
            parser_class = Parser
            task_class = Task
            error_task_class = JsonErrorTask
            linger = False  # set by an answer given before the request was read in full
            lingering_until = None

            def writable(self):
                # While a task runs on this channel, handle_write sends nothing until the
                # answer reaches send_bytes (the task flushes the rest itself when it ends). Yet
                # waitress reports the channel writable as soon as a byte is buffered, so its
                # loop would spin on select(), holding the GIL the task needs.
                if (self.requests and self.total_outbufs_len < self.adj.send_bytes
                        and not (self.will_close or self.close_when_flushed)):
                    return False
                return super().writable()

            def handle_close(self):
                # Closing with the client's bytes unread makes the kernel reset the connection,
                # and a client still sending its body would get the reset instead of our answer
                # (a 413, a 401): shut our side, then read and drop theirs for a moment.
                if self.linger and self.connected and self.lingering_until is None:
                    try:
                        self.socket.shutdown(socket.SHUT_WR)
                    except OSError:  # the client is already gone: nothing to wait for
                        return super().handle_close()
                    self.lingering_until = time.time() + LINGER_SECONDS
                    self.will_close = False
                    return None
                return super().handle_close()

            def handle_read(self):
                if self.lingering_until is None:
                    return super().handle_read()
                try:
                    data = self.recv(self.adj.recv_bytes)
                except OSError:
                    data = b""
                if not data and self.connected:
                    super().handle_close()

        return Channel

    def count(self, name: str, **dimensions: str) -> None:
        try:
            self.metrics.increment(name, **dimensions)
        except Exception:  # a metrics store that cannot be written must not break serving
            log.exception("could not count %s", name)

    def maintenance(self, now):
        """Closes connections idle past ``channel_timeout`` (waitress's rule) and those whose
        request has not arrived in full by its deadline; counts the slow clients among them."""
        idle_cutoff = now - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            if channel.lingering_until is not None:
                if now > channel.lingering_until:
                    # Closed by the loop, not here: this runs while the loop is gathering the
                    # sockets to select() on, and a socket closed now would still be among them.
                    channel.linger = False
                    channel.will_close = True
                continue
            partial = channel.request
            if partial is not None and not partial.completed and now > partial.deadline:
                log.warning("closing %s: its request did not arrive in full within its deadline", channel.addr[0])
                channel.will_close = True
                self.count("server_slow_clients", reason="request_deadline")
            elif not channel.requests and channel.last_activity < idle_cutoff:
                if channel.total_outbufs_len:
                    self.count("server_slow_clients", reason="response_stalled")
                channel.will_close = True

    def readable(self):
        accepting = super().readable()
        if self.in_connection_overflow and not self._was_full:
            self.count("server_connection_limit_reached")
        self._was_full = self.in_connection_overflow
        return accepting


def adjustments(settings: Settings, sockets: list[socket.socket]) -> Adjustments:
    """waitress's settings from ours, serving ``sockets`` (opened by gunicorn's arbiter:
    web/processes.py)."""
    options = dict(
        sockets=sockets,
        threads=settings.web_threads,
        connection_limit=settings.web_connection_limit,
        channel_timeout=settings.web_idle_timeout,
        cleanup_interval=MAINTENANCE_SECONDS,
        max_request_header_size=settings.web_max_header_bytes,
        max_request_body_size=settings.max_upload_bytes + 1,  # the gate's limits are the real ones
        inbuf_overflow=BODY_IN_MEMORY_BYTES,
        send_bytes=SEND_BYTES,
        ident="",  # no Server header naming the software
        clear_untrusted_proxy_headers=False,  # the app reads X-Forwarded-For itself (trusted_proxies)
        expose_tracebacks=False,
    )
    if settings.trusted_proxies:
        # Behind the load balancer, which ends TLS: the scheme it saw is the request's.
        options.update(trusted_proxy="*", trusted_proxy_count=settings.trusted_proxies,
                       trusted_proxy_headers={"x-forwarded-proto"})
    return Adjustments(**options)


class Service:
    """The listening servers, their task threads and (local mode) the job threads."""

    def __init__(self, app, settings: Settings, *, sockets: list[socket.socket], gate: BodyGate, metrics):
        self.settings = settings
        self.adj = adjustments(settings, sockets)
        self.map: dict = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.queue_logger = SaturationLog()
        self.dispatcher.set_thread_count(self.adj.threads)
        self.servers = [GuardedServer(app, adj=self.adj, sock=sock, dispatcher=self.dispatcher, map=self.map,
                                      settings=settings, gate=gate, metrics=metrics)
                        for sock in self.adj.sockets]
        self.stopping = threading.Event()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(server.effective_host, server.effective_port) for server in self.servers]

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler or another thread, and more than
        once: a stop signal to the process group reaches a worker from the arbiter too)."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.servers:
            self.servers[0].pull_trigger()

    def run(self) -> None:
        """Serve until ``stop``; then close idle connections at once and let the others finish."""
        timeout = self.adj.asyncore_loop_timeout
        while not self.stopping.is_set():
            wasyncore.loop(timeout=timeout, map=self.map, use_poll=self.adj.asyncore_use_poll, count=1)
        for server in self.servers:
            server.accepting = False
            server.del_channel()
            server.socket.close()
        deadline = time.monotonic() + self.settings.web_graceful_seconds
        while self._channels() and time.monotonic() < deadline:
            for channel in self._channels():
                if not channel.requests and not channel.total_outbufs_len and channel.request is None:
                    channel.will_close = True  # idle keep-alive: nothing to finish
            wasyncore.loop(timeout=0.05, map=self.map, use_poll=self.adj.asyncore_use_poll, count=1)
        self.dispatcher.shutdown(cancel_pending=True, timeout=max(0.0, deadline - time.monotonic()))
        for server in self.servers:
            server.trigger.close()

    def _channels(self) -> list[HTTPChannel]:
        return [channel for channel in self.map.values() if isinstance(channel, HTTPChannel)]


def serve(settings: Settings, host: str, port: int) -> int:
    """The ``imageservice serve`` command: ``web_workers`` processes of the app (web/processes.py);
    in local mode one of them at a time also runs the job threads."""
    from .. import logs
    from . import processes

    logs.configure(settings.log_level.upper(), buffered=True)
    return processes.serve(lambda: _serving_app(settings), settings, host, port)


def _serving_app(settings: Settings):
    """The app of one worker process, with what its server needs (web/processes.py)."""
    from . import API_BODY_LIMIT, components_of, create_app
    from .processes import SERVING, Serving

    app = create_app(settings)
    components = components_of(app)
    gate = BodyGate(api_body_limit=API_BODY_LIMIT, upload_limit=settings.max_upload_bytes,
                    blob_endpoint=components.blob_endpoint if settings.backend == "local" else None)
    app.extensions[SERVING] = Serving(settings, gate, components.metrics, start_beside=lambda: _jobs(components))
    return app


def _jobs(components):
    """Start local mode's job threads in whichever process leads; returns what stops them."""
    from ..entrypoints.worker import start_job_leadership

    leadership = start_job_leadership(components)
    return leadership.stop if leadership is not None else (lambda: None)
