"""SIGTERM stops ``imageservice serve`` quickly: idle keep-alive connections are closed at once,
a request in flight still gets its answer (docs/SERVER.md)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

import imagefactory
from servers import run_cli, start_service
from slowclients import server_processes

QUICK_STOP_SECONDS = 3.0  # the graceful timeout is 25 s: an idle connection must not wait for it


def stop_and_time(process) -> tuple[float, int]:
    started = time.monotonic()
    process.signal(signal.SIGTERM)
    returncode = process.process.wait(timeout=30)
    return time.monotonic() - started, returncode


def test_an_idle_keep_alive_connection_does_not_hold_up_the_stop(tmp_path):
    process, base = start_service(tmp_path / "data", tmp_path / "server.log")
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as idle:
        idle.sendall(f"GET /healthz HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        took, returncode = stop_and_time(process)
        assert idle.recv(4096) == b""  # the server closed it
    assert returncode == 0, process.log()
    assert took < QUICK_STOP_SECONDS, (took, process.log())


def test_a_request_in_flight_is_answered_before_the_stop(tmp_path):
    process, base = start_service(tmp_path / "data", tmp_path / "server.log")
    try:
        created = run_cli(process.env, "token", "create", "alice")
        auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
        data = imagefactory.jpeg_bytes(3000, 2000)
        ticket = requests.post(f"{base}/api/images/upload", headers=auth, timeout=10,
                               json={"content_type": "image/jpeg", "size": len(data)}).json()
        requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=30).raise_for_status()
        image = f"{base}/api/images/{ticket['image_id']}"
        deadline = time.monotonic() + 60
        while requests.get(image, headers=auth, timeout=5).json()["status"] != "ready":
            assert time.monotonic() < deadline, process.log()
            time.sleep(0.1)
        answers: list = []
        convert = threading.Thread(target=lambda: answers.append(requests.post(
            f"{image}/convert", headers=auth, timeout=30, json={"format": "avif", "quality": 90})))
        convert.start()
        time.sleep(0.3)  # the conversion is under way
        took, returncode = stop_and_time(process)
        convert.join()
    finally:
        process.stop()
    assert answers and answers[0].status_code == 200, (answers, process.log())
    assert returncode == 0 and took < 25, (took, process.log())


def test_a_worker_process_that_dies_is_replaced(tmp_path):
    process, base = start_service(tmp_path / "data", tmp_path / "server.log", IMAGESERVICE_WEB_WORKERS="2")
    try:
        pid = process.process.pid
        # The first worker up answers the readiness probe; the arbiter may still be forking the second.
        started = time.monotonic() + 15
        while len(workers := server_processes(pid)[1:]) < 2 and time.monotonic() < started:
            time.sleep(0.1)
        assert len(workers) == 2, process.log()
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = server_processes(pid)[1:]
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no new worker in place of {workers[0]}: {server_processes(pid)}\n{process.log()}")
        assert all(requests.get(f"{base}/healthz", timeout=2).status_code == 200 for _ in range(10))
    finally:
        process.stop()
