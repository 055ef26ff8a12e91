"""The edge against the real ``imageservice serve``: requests the app never sees still get the
JSON error shape.

The app answers targets longer than ``IMAGESERVICE_MAX_URL_LENGTH``. The server (waitress)
reads the request line and headers before the app exists for that request. Past
``IMAGESERVICE_WEB_MAX_HEADER_BYTES``, on a request it cannot parse, or on one the header gate
refuses, it answers itself, through ``web/server.py``'s JsonErrorTask.
"""

from __future__ import annotations

import json
import socket
import time
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


def test_the_server_answers_request_lines_past_its_header_limit_in_json_too(base):
    answer = raw_get(base, "/api/images?tag=" + "a" * 40_000)
    assert_json_error(answer, 431, "headers_too_large")
    assert "x-request-id" not in answer[1]  # the server's own answer: the app never saw it


@pytest.mark.parametrize("extra", [
    "Cookie: session=" + "a" * 40_000 + "\r\n",  # one field past web_max_header_bytes
    "".join(f"X-Header-{i}: {'v' * 20}\r\n" for i in range(1500)),  # many fields, past it together
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


# ----------------------------------------------------------- refused before the body is read

def headers_only(base: str, head: str) -> tuple[int, dict, bytes]:
    """Send a request's headers announcing a body, and none of the body: the answer must come
    from the headers alone (a server that waited for the body would time out here)."""
    host = urlsplit(base).netloc
    return raw_exchange(base, f"{head}Host: {host}\r\n\r\n".encode())


@pytest.mark.parametrize("head, status, code", [
    ("POST /api/images/upload HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n",
     401, "unauthorized"),
    ("POST /api/images/upload HTTP/1.1\r\nCookie: imageservice_session=x\r\nContent-Type: application/json\r\n"
     "Content-Length: 5000\r\n", 403, "csrf_failed"),
    ("POST //api/images/upload HTTP/1.1\r\nCookie: imageservice_session=x\r\n"
     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n", 403, "csrf_failed"),
    ("POST /api/images/upload HTTP/1.1\r\nAuthorization: Bearer x\r\nContent-Type: text/plain\r\n"
     "Content-Length: 5000\r\n", 415, "unsupported_media_type"),
    ("POST /api/images/upload HTTP/1.1\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\n"
     "Content-Length: 2000000\r\n", 413, "too_large"),
    ("POST /api/images/upload HTTP/1.1\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n", 411, "length_required"),
    ("PUT /blobs/originals/alice/01H?X-Expires=1&X-Signature=forged HTTP/1.1\r\nContent-Type: image/png\r\n"
     "Content-Length: 40000000\r\n", 403, "invalid_signature"),
    ("PUT /blobs/originals/alice/01H HTTP/1.1\r\nContent-Type: image/png\r\nContent-Length: 99999999999\r\n",
     413, "too_large"),
])
def test_a_body_is_refused_from_its_headers_without_being_read(base, head, status, code):
    started = time.monotonic()
    assert_json_error(headers_only(base, head), status, code)
    assert time.monotonic() - started < 2


def test_a_refused_client_still_sending_its_body_gets_the_answer(base):
    """The server answers before the body and then drains it (it does not reset the connection),
    so an ordinary client that sends the whole body reads the JSON refusal."""
    import requests

    for size, status, code in ((900_000, 401, "unauthorized"), (3_000_000, 413, "too_large")):
        answer = requests.post(f"{base}/api/images/upload", data=b"x" * size, timeout=10,
                               headers={"Content-Type": "application/json"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
