"""The edge against the real ``imageservice serve``: requests the app never sees still get the
JSON error shape.

The app answers targets longer than ``IMAGESERVICE_MAX_URL_LENGTH``. gunicorn reads the request
line and headers before the app exists for that request. Past its own ``limit_request_line``,
its header limits, or on a request it cannot parse, gunicorn answers itself, through
``web/asgi_worker.py``.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from servers import start_service


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    server, base = start_service(root / "data", root / "server.log")
    yield base
    server.stop()


def raw_exchange(base: str, request: bytes) -> tuple[int, dict, bytes]:
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def raw_get(base: str, target: str, extra: str = "") -> tuple[int, dict, bytes]:
    host = urlsplit(base).netloc
    return raw_exchange(base, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())


def assert_json_error(answer: tuple[int, dict, bytes], status: int, code: str) -> None:
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]


def test_the_app_answers_long_targets_in_json(base):
    answer = raw_get(base, "/api/images?tag=" + "a" * 3000)
    assert_json_error(answer, 414, "uri_too_long")
    assert "x-request-id" in answer[1]  # the app's answer: it went through the envelope


def test_gunicorn_answers_longer_request_lines_in_json_too(base):
    answer = raw_get(base, "/api/images?tag=" + "a" * 5000)
    assert_json_error(answer, 414, "uri_too_long")
    assert "x-request-id" not in answer[1]  # gunicorn's own answer: the app never saw it


@pytest.mark.parametrize("extra", [
    "Cookie: session=" + "a" * 9000 + "\r\n",  # one field past limit_request_field_size
    "".join(f"X-Header-{i}: v\r\n" for i in range(120)),  # more fields than limit_request_fields
])
def test_oversized_headers_get_431_in_json(base, extra):
    assert_json_error(raw_get(base, "/api/images", extra), 431, "headers_too_large")


@pytest.mark.parametrize("request_text", [
    "POST /api/images/upload HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\nConnection: close\r\n\r\n",
    "POST /api/images/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello",
    " /api/images HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "GET /api/images HTTP/1.1\r\nHost: h\r\nBad Header Name: x\r\nConnection: close\r\n\r\n",
])
def test_unparseable_requests_get_400_in_json(base, request_text):
    assert_json_error(raw_exchange(base, request_text.encode()), 400, "bad_request")


def test_an_unknown_transfer_coding_gets_501_in_json(base):
    answer = raw_exchange(base, b"POST /api/images/upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x-unknown, chunked\r\n"
                                b"Connection: close\r\n\r\n0\r\n\r\n")
    assert_json_error(answer, 501, "not_implemented")
