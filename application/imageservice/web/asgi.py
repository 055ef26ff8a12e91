"""The app as ASGI, for gunicorn's asyncio worker (``imageservice serve``).

The asyncio worker reads every request's headers on its event loop, so a client that dribbles
its headers holds a socket, not a thread (gunicorn's gthread worker gives a connection a thread
as soon as its first byte arrives: ten slow sockets stopped /healthz). The Flask app runs in a
thread pool behind ``WsgiBridge``.

Every crossing between the event loop and a pool thread is a wake-up of the other side, and on
a busy worker such a crossing costs more than a whole API call. So the bridge crosses as little
as it can: a body up to ``buffer_limit`` bytes (every API body) is read on the loop before the
app runs; a response is gathered in the thread and sent by the loop once the app is done. Only
larger bodies (an original PUT to the local blob endpoint) are read, and large responses (a blob
download) sent, piece by piece across the boundary, so they never sit whole in memory and a
request refused early never has its body read.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

from ..settings import Settings

# Request bodies up to this size are read before the app runs: every API call's JSON, while a
# thousand open connections sending such bodies still hold no more than 64 MiB.
BUFFERED_BODY_LIMIT = 64 * 1024
# Responses up to this size are sent in one go after the app returns; larger ones stream.
BUFFERED_RESPONSE_LIMIT = 256 * 1024

Message = dict[str, Any]


class StreamedBody(io.RawIOBase):
    """``wsgi.input`` for a large body: each read asks the event loop for the next piece."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Callable):
        self._loop = loop
        self._receive = receive
        self._buffer = bytearray()
        self._more = True

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer and self._more:
            message = asyncio.run_coroutine_threadsafe(self._receive(), self._loop).result()
            self._buffer.extend(message.get("body", b""))
            self._more = message.get("type") == "http.request" and message.get("more_body", False)
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        del self._buffer[:size]
        return size


class _Response:
    """What the app said, gathered in the pool thread."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.streaming = False

    def start(self, status: str, headers: list[tuple[str, str]], exc_info=None):
        if exc_info is not None and self.streaming:
            raise exc_info[1].with_traceback(exc_info[2])  # headers are out: too late to change them
        self.status = int(status.split(" ", 1)[0])
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        return self.chunks.append  # WSGI's write(): rare, kept in order with the body

    def start_message(self) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}


class WsgiBridge:
    """A WSGI app as an ASGI app, running in a pool of ``threads`` threads."""

    def __init__(self, app: Callable, threads: int, *, buffer_limit: int = BUFFERED_BODY_LIMIT,
                 response_limit: int = BUFFERED_RESPONSE_LIMIT):
        self.app = app
        self.buffer_limit = buffer_limit
        self.response_limit = response_limit
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        loop = asyncio.get_running_loop()
        environ = _environ(scope)
        length = environ.get("CONTENT_LENGTH", "")
        if (length.isdigit() and int(length) <= self.buffer_limit) or \
                (not length and "HTTP_TRANSFER_ENCODING" not in environ):
            environ["wsgi.input"] = io.BytesIO(await _read_body(receive))
        else:
            environ["wsgi.input"] = io.BufferedReader(StreamedBody(loop, receive))
        context = contextvars.copy_context()
        response = await loop.run_in_executor(self.executor, context.run, self._run, environ, loop, send)
        if not response.streaming:
            await send(response.start_message())
            await send({"type": "http.response.body", "body": b"".join(response.chunks)})

    def _run(self, environ: dict, loop: asyncio.AbstractEventLoop, send: Callable) -> _Response:
        """The app, in a pool thread: a small response comes back whole; past the limit, the
        start and each piece go to the loop as they come."""
        response = _Response()
        body: Iterable[bytes] = self.app(environ, response.start)
        try:
            for chunk in body:
                if response.streaming:
                    _send_from_thread(loop, send, {"type": "http.response.body", "body": chunk, "more_body": True})
                    continue
                response.chunks.append(chunk)
                response.size += len(chunk)
                if response.size > self.response_limit:
                    response.streaming = True
                    _send_from_thread(loop, send, response.start_message())
                    _send_from_thread(loop, send, {"type": "http.response.body",
                                                   "body": b"".join(response.chunks), "more_body": True})
                    response.chunks.clear()
            if response.streaming:
                _send_from_thread(loop, send, {"type": "http.response.body", "body": b""})
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return response

    @staticmethod
    async def _lifespan(receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _send_from_thread(loop: asyncio.AbstractEventLoop, send: Callable, message: Message) -> None:
    # Waiting for each send keeps a slow reader's download from piling up in memory.
    asyncio.run_coroutine_threadsafe(send(message), loop).result()


async def _read_body(receive: Callable) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the app sees what arrived
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _environ(scope: dict) -> dict:
    """PEP 3333's environ from an ASGI HTTP scope (headers and paths as latin-1 strings)."""
    root = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path = scope["path"].encode("utf-8").decode("latin-1")
    if root and path.startswith(root):
        path = path[len(root):]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper()
        if "_" in name:
            continue  # would pass for a dashed name (X_Forwarded_For as X-Forwarded-For): dropped, as gunicorn does
        name = name.replace("-", "_")
        if name not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
            name = "HTTP_" + name
        value = raw_value.decode("latin-1")
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    return environ


def create_asgi_app(settings: Settings | None = None) -> WsgiBridge:
    """``imageservice.web.asgi:create_asgi_app()``: the Flask app behind the bridge, with
    ``web_threads`` threads."""
    from . import create_app, server_settings

    settings = settings or server_settings()
    return WsgiBridge(create_app(settings), settings.web_threads)
