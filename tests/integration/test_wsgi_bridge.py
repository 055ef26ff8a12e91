"""The WSGI-to-ASGI bridge of ``imageservice serve`` (web/asgi.py), driven as gunicorn's asyncio
worker drives it: ASGI messages in, ASGI messages out, around a real Flask app.

The bridge reads small bodies on the event loop and sends small responses in one go (each
crossing between the loop and a pool thread costs more than an API call); large bodies and
responses still cross piece by piece, so they never sit whole in memory."""

from __future__ import annotations

import asyncio
import json

import pytest
from flask import Flask, Response, request

from imageservice.web.asgi import WsgiBridge


def make_app() -> Flask:
    app = Flask(__name__)

    @app.post("/echo")
    def echo():
        return {"length": len(request.get_data()), "head": request.get_data()[:8].decode()}

    @app.post("/refuse")
    def refuse():  # answers without looking at the body
        return {"refused": True}, 413

    @app.get("/big")
    def big():
        return Response((b"x" * 1000 for _ in range(int(request.args["pieces"]))), mimetype="text/plain")

    @app.get("/headers")
    def headers():
        return {"forwarded": request.headers.get("X-Forwarded-For"), "accept": request.headers.get("Accept"),
                "client": request.remote_addr, "path": request.path, "query": request.query_string.decode()}

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = True
    return app


def scope(method: str, path: str, headers=(), query: bytes = b"") -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": list(headers),
            "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("10.0.0.7", 5555)}


class Exchange:
    """One request: the body as ASGI messages (counted as the app takes them), the answer kept."""

    def __init__(self, body_pieces: list[bytes], disconnect_after: int | None = None):
        self.pieces = list(body_pieces)
        self.received = 0
        self.disconnect_after = disconnect_after
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.disconnect_after is not None and self.received >= self.disconnect_after:
            return {"type": "http.disconnect"}
        piece = self.pieces[self.received] if self.received < len(self.pieces) else b""
        self.received += 1
        return {"type": "http.request", "body": piece, "more_body": self.received < len(self.pieces)}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.sent[0]["headers"]).get(name)


@pytest.fixture
def bridge():
    bridge = WsgiBridge(make_app(), threads=2, buffer_limit=64, response_limit=4096)
    yield bridge
    bridge.executor.shutdown()


def run(bridge, request_scope, exchange):
    asyncio.run(bridge(request_scope, exchange.receive, exchange.send))
    return exchange


def test_a_small_body_is_read_first_and_a_small_answer_goes_in_one_message(bridge):
    exchange = run(bridge, scope("POST", "/echo", [(b"content-length", b"20"), (b"content-type", b"text/plain")]),
                   Exchange([b"0123456789", b"abcdefghij"]))
    assert exchange.status == 200
    assert json.loads(exchange.body) == {"length": 20, "head": "01234567"}
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert not exchange.sent[1].get("more_body", False)


def test_a_large_body_reaches_the_app_whole_in_pieces(bridge):
    pieces = [bytes([65 + i]) * 50 for i in range(10)]  # 500 bytes: past the 64-byte buffer limit
    exchange = run(bridge, scope("POST", "/echo", [(b"content-length", b"500")]), Exchange(pieces))
    assert exchange.status == 200
    assert json.loads(exchange.body) == {"length": 500, "head": "AAAAAAAA"}
    assert exchange.received == 10


def test_a_large_body_the_app_refuses_is_never_read(bridge):
    exchange = run(bridge, scope("POST", "/refuse", [(b"content-length", b"100000")]), Exchange([b"x" * 1000] * 100))
    assert exchange.status == 413
    assert exchange.received == 0


def test_a_client_that_goes_away_mid_body_is_a_bad_request_not_a_hang(bridge):
    exchange = run(bridge, scope("POST", "/echo", [(b"content-length", b"30")]),
                   Exchange([b"0123456789"] * 3, disconnect_after=1))
    assert exchange.status == 400  # Werkzeug: fewer bytes than Content-Length said
    assert exchange.received == 1


def test_a_large_answer_streams_in_pieces_and_a_small_one_does_not(bridge):
    big = run(bridge, scope("GET", "/big", query=b"pieces=20"), Exchange([]))
    assert big.status == 200 and big.body == b"x" * 20_000
    bodies = [m for m in big.sent if m["type"] == "http.response.body"]
    assert len(bodies) > 2 and all(m.get("more_body") for m in bodies[:-1]) and not bodies[-1].get("more_body")
    assert max(len(m["body"]) for m in bodies) <= 4096 + 1000  # never more than the limit and a piece at once

    small = run(bridge, scope("GET", "/big", query=b"pieces=2"), Exchange([]))
    assert small.body == b"x" * 2000 and len(small.sent) == 2


def test_headers_become_the_environ_and_underscored_names_are_dropped(bridge):
    exchange = run(bridge, scope("GET", "/headers", [(b"x_forwarded_for", b"6.6.6.6"), (b"accept", b"a/b"),
                                                     (b"accept", b"c/d")], query=b"q=1"), Exchange([]))
    assert json.loads(exchange.body) == {
        "forwarded": None,  # an underscored name must not pass for X-Forwarded-For
        "accept": "a/b,c/d", "client": "10.0.0.7", "path": "/headers", "query": "q=1",
    }


def test_an_exception_reaches_the_server(bridge):
    with pytest.raises(RuntimeError, match="boom"):
        run(bridge, scope("GET", "/boom"), Exchange([]))


def test_lifespan_is_acknowledged(bridge):
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    asyncio.run(bridge({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
