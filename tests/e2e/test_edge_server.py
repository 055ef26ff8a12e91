"""The edge against the real ``imageservice serve``: who answers an over-long request target.

The app answers targets longer than ``IMAGESERVICE_MAX_URL_LENGTH`` with the JSON error shape;
gunicorn reads the request line before the app exists for that request, and past its own
``limit_request_line`` it answers 414 itself, in HTML: that one is in front of the app.
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


def raw_get(base: str, target: str) -> tuple[int, str, bytes]:
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def test_the_app_answers_long_targets_in_json(base):
    status, content_type, body = raw_get(base, "/api/images?tag=" + "a" * 3000)
    assert status == 414 and content_type.startswith("application/json")
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def test_gunicorn_answers_longer_request_lines_itself(base):
    status, content_type, _ = raw_get(base, "/api/images?tag=" + "a" * 5000)
    # gunicorn's own answer: HTML from the gthread worker (container), plain text from the
    # asyncio worker `serve` runs
    assert status == 414 and content_type.startswith(("text/html", "text/plain"))
