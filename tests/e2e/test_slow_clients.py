"""Slow clients against the real ``imageservice serve`` (docs/SERVER.md).

Each attack (tests/slowclients.py) runs for a few seconds while a prober asks ``GET /healthz``
and a Bearer ``GET /api/images`` every half second: at least 95 % of the probes answer within
1 s during the attack, and every probe of the 4 s after it does. After each attack the server
process's threads and open files are back to what they were before it.

The attacks: slow readers (a signed download of a 15 MB original asked for on sockets with a
4 KiB receive buffer, never read), slow bodies (with the visitor cookie only, and with a
token), headers dribbled a line at a time (slowloris), and hundreds of idle keep-alive
connections. The server runs with short deadlines so that what cuts slow clients off shows
within the test: a request must arrive within 3 s plus its length at 1 MB/s, an idle
connection is closed after 5 s.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

import slowclients
from servers import start_service
from slowclients import IDLE_TIMEOUT, PROBE_TIMEOUT, Server, run_attack


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("slow-clients")
    process, base = start_service(root / "data", root / "server.log",
                                  IMAGESERVICE_WEB_REQUEST_SECONDS="3", IMAGESERVICE_WEB_MIN_BODY_RATE="1000000",
                                  IMAGESERVICE_WEB_IDLE_TIMEOUT=str(IDLE_TIMEOUT))
    try:
        yield Server(base, process.env, process.process.pid)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def download_url(server):
    """A signed download of a 15 MB original."""
    return slowclients.signed_download(server)


def assert_held_up(figures: dict) -> None:
    during, after = figures["during"], figures["after"]
    answered = [took for took in during if took is not None and took <= PROBE_TIMEOUT]
    assert during and len(answered) >= 0.95 * len(during), figures
    assert after and all(took is not None and took <= PROBE_TIMEOUT for took in after), figures
    kept = sorted((Counter(figures["files_after"]) - Counter(figures["files_before"])).elements())
    assert figures["settled"], f"threads/files {figures['now']} did not return to {figures['baseline']}: {kept}"


def test_slow_readers_hold_sockets_not_threads(server, download_url):
    stalled_before = server.metric("server_slow_clients")
    assert_held_up(run_attack(server, lambda: slowclients.slow_readers(server, download_url), hold=IDLE_TIMEOUT + 3))
    # Held past the 5 s idle timeout, the stalled answers were cut off and counted.
    assert server.metric("server_slow_clients") > stalled_before


@pytest.mark.parametrize("who", ["visitor", "token"])
def test_slow_bodies_hold_no_thread(server, who):
    assert_held_up(run_attack(server, lambda: slowclients.slow_bodies(server, who)))


def test_slowloris_headers_hold_no_thread(server):
    cut_before = server.metric("server_slow_clients")
    assert_held_up(run_attack(server, lambda: slowclients.slowloris(server, 100)))
    assert server.metric("server_slow_clients") >= cut_before + 100  # each cut off at its 3 s deadline


def test_idle_keep_alive_connections_hold_no_thread(server):
    assert_held_up(run_attack(server, lambda: slowclients.idle_keep_alive(server), hold=4))


def test_a_body_that_does_not_arrive_by_its_deadline_is_cut_off(server):
    sock = server.connect()
    sock.sendall(f"POST /api/images/upload HTTP/1.1\r\nHost: {server.host}\r\n"
                 f"Authorization: {server.auth['Authorization']}\r\nContent-Type: application/json\r\n"
                 "Content-Length: 100\r\n\r\n{".encode())
    started = time.monotonic()
    sock.settimeout(10)
    try:
        closed = sock.recv(4096) == b""
    except ConnectionResetError:
        closed = True
    took = time.monotonic() - started
    sock.close()
    assert closed and 2 < took < 6, took  # 3 s + 100 bytes at 1 MB/s, found within the 1 s sweep
