"""The gunicorn worker ``imageservice serve`` runs: gunicorn's asyncio worker, whose own answers
carry the JSON error shape like every other error of the service.

gunicorn parses each request before the app sees it. A request it cannot take gets its answer
straight from the parser: a malformed request line, header or ``Content-Length``, a header or
request line past gunicorn's limits (431, 414), or a transfer coding it does not speak (501).
Plain ``requests`` can trigger these, for example with a 9 KB cookie. Without this worker they
would come back as bare text.

The aws container keeps gunicorn's gthread worker and its HTML answers. The load balancer
receives every request first and answers most malformed ones itself; what still reaches the
task is a field between gunicorn's 8190 bytes and the ALB's 16 KB.
"""

from __future__ import annotations

from http import HTTPStatus

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from ..jsontext import dumps
from .errors import HTTP_CODES
from .security import API_HEADERS, NO_STORE


def protocol_error(status: int, message: str, extra_headers=()) -> bytes:
    """A whole HTTP/1.1 response, the connection closing after it: status, the security headers
    of the API and ``{"error": {code, message}}``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    error = {"code": HTTP_CODES.get(status, "error"), "message": message or reason}
    body = dumps({"error": error}).encode()
    headers = (("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               *API_HEADERS, NO_STORE, *extra_headers, ("Connection", "close"))
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n").encode("latin-1") + body


class JsonErrorProtocol(ASGIProtocol):
    """gunicorn's connection handler, with its error answers in the JSON shape."""

    def _send_error_response(self, status, message, extra_headers=()):
        self._safe_write(protocol_error(status, message, extra_headers))


class JsonErrorASGIWorker(gasgi.ASGIWorker):
    def init_process(self):
        # The worker builds each connection's handler from this module name, and no setting
        # picks another: this process serves with ours.
        gasgi.ASGIProtocol = JsonErrorProtocol
        super().init_process()
