"""Slow-client attacks and the prober that watches a server through them: shared by the
attack suite (tests/e2e/test_slow_clients.py) and the server candidates' benchmark
(bench/bench_servers.py). See docs/SERVER.md.

Each attack opens its sockets and returns them; ``run_attack`` holds them open for a while
under the prober (``GET /healthz`` and a Bearer ``GET /api/images`` every half second), closes
them, and reports each probe's time (None: failed or slower than PROBE_TIMEOUT) during the
attack and in the recovery after it.
"""

from __future__ import annotations

import io
import os
from collections import Counter
import random
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from PIL import Image

from procstats import Sampler
from servers import run_cli

ATTACK_SECONDS = 5.0
RECOVERY_SECONDS = 4.0
PROBE_INTERVAL = 0.5
PROBE_TIMEOUT = 1.0
IDLE_TIMEOUT = 5  # the server's IMAGESERVICE_WEB_IDLE_TIMEOUT here
ORIGINAL_BYTES = 15 * 1024 * 1024


def noise_png(min_bytes: int) -> bytes:
    """A PNG of random pixels (nothing compresses): at least ``min_bytes`` long."""
    edge = int((min_bytes / 3) ** 0.5) + 8
    buffer = io.BytesIO()
    Image.frombytes("RGB", (edge, edge), random.Random(7).randbytes(edge * edge * 3)).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def server_processes(pid: int) -> list[int]:
    """``imageservice serve``'s processes: ``pid`` (gunicorn's arbiter) and its children (the
    workers serving requests; the imaging children the workers start are theirs, not counted)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # gone meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # the field after the state: ppid
                children.append(int(entry))
    return [pid, *sorted(children)]


class Server:
    """A server under attack: its base URL, the environment its CLI runs with (for tokens),
    and its process (whose threads and open files are counted)."""

    def __init__(self, base: str, env: dict[str, str], pid: int):
        self.base, self.env, self.pid = base, env, pid
        self.host, self.port = urlsplit(base).hostname, urlsplit(base).port
        created = run_cli(env, "token", "create", "alice")
        assert created.returncode == 0, created.stderr
        self.auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
        admin = run_cli(env, "token", "create", "ops", "--admin")
        self.admin = {"Authorization": f"Bearer {admin.stdout.strip().splitlines()[-1]}"}

    def connect(self, receive_buffer: int | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(5)
        sock.connect((self.host, self.port))
        return sock

    def processes(self) -> list[int]:
        return server_processes(self.pid)

    def threads_and_files(self) -> tuple[int, int]:
        threads = files = 0
        for pid in self.processes():
            proc = Path(f"/proc/{pid}")
            try:
                threads += int(re.search(r"^Threads:\s+(\d+)", (proc / "status").read_text(), re.M).group(1))
                files += len(os.listdir(proc / "fd"))
            except OSError:  # gone meanwhile
                continue
        return threads, files

    def open_files(self) -> list[str]:
        found = []
        for pid in self.processes():
            fds = Path(f"/proc/{pid}/fd")
            try:
                names = os.listdir(fds)
            except OSError:
                continue
            for fd in names:
                try:
                    found.append(os.readlink(fds / fd))
                except OSError:  # closed meanwhile
                    continue
        return sorted(found)

    def metric(self, name: str) -> float:
        text = requests.get(f"{self.base}/metrics", headers=self.admin, timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(f"imageservice_{name}") and not line.startswith("#"))


class Prober(Sampler):
    """Asks the two probes every PROBE_INTERVAL s on a thread; records (when, probe, seconds or None)."""

    def __init__(self, server: Server):
        super().__init__(PROBE_INTERVAL)
        self.server = server
        self.results: list[tuple[float, str, float | None]] = []

    def sample(self) -> None:
        probes = (("healthz", "/healthz", {}), ("list", "/api/images?limit=5", self.server.auth))
        for name, path, headers in probes:
            started = time.monotonic()
            try:
                answer = requests.get(self.server.base + path, headers=headers, timeout=PROBE_TIMEOUT)
                took = time.monotonic() - started if answer.status_code == 200 else None
            except requests.RequestException:
                took = None
            self.results.append((started, name, took))

    def between(self, start: float, end: float) -> list[float | None]:
        return [took for when, _, took in self.results if start <= when < end]


def run_attack(server: Server, open_attack, *, hold: float = ATTACK_SECONDS, settle: bool = True) -> dict:
    """Baseline, then the attack for ``hold`` s under the prober, then its end and the recovery.
    ``settle``: also see the process's threads and open files back at their baseline (a server
    of several processes, measured by bench_servers.py, is only probed)."""
    baseline = settled_usage(server) if settle else server.threads_and_files()
    files_before = server.open_files()
    with Prober(server) as prober:
        time.sleep(1)
        started = time.monotonic()
        sockets = open_attack()
        tick = threading.Event()
        while time.monotonic() - started < hold:
            tick.wait(0.25)
        during_end = time.monotonic()
        for sock in sockets:
            sock.close()
        time.sleep(RECOVERY_SECONDS)
        ended = time.monotonic()
    during = prober.between(started, during_end)
    after = prober.between(during_end, ended)
    settled = wait_for(lambda: back_to(server, baseline, files_before), 10) if settle else None
    return {"during": during, "after": after, "baseline": baseline, "settled": settled,
            "now": server.threads_and_files(), "files_before": files_before, "files_after": server.open_files()}


def warm_every_thread(server: Server, rounds: int = 3, at_once: int = 24) -> None:
    """Each request thread opens its SQLite connections (catalog, metrics) on its first request,
    and the I/O thread its metrics connection on its first count (a refusal): make them all now,
    so the baseline holds those files already."""
    from concurrent.futures import ThreadPoolExecutor

    refused = requests.post(server.base + "/api/images/upload", data=b"{}", timeout=10,
                            headers={"Content-Type": "application/json"})
    assert refused.status_code == 401

    paths = [("/api/images?limit=5", server.auth), ("/metrics", server.admin)] * (at_once // 2)
    with ThreadPoolExecutor(at_once) as pool:
        for _ in range(rounds):
            list(pool.map(lambda call: requests.get(server.base + call[0], headers=call[1], timeout=10), paths))


# A request thread opens its SQLite connections (catalog, metrics) on its first request and keeps
# them: one per thread and database, so bounded. Warming every thread of every worker process
# first cannot be made certain (which worker accepts a connection is the kernel's choice).
PER_THREAD_FILES = (".sqlite3", ".sqlite3-wal", ".sqlite3-shm")


def back_to(server: Server, baseline: tuple[int, int], files_before: list[str]) -> bool:
    """As many threads as before the attack, and no open file the server did not hold before
    but a thread's SQLite connection."""
    threads, _ = server.threads_and_files()
    extra = Counter(server.open_files()) - Counter(files_before)
    return threads <= baseline[0] and all(name.endswith(PER_THREAD_FILES) for name in extra)


def settled_usage(server: Server) -> tuple[int, int]:
    """Threads and open files once two readings a second apart agree (the imaging pool starts its
    spare child in the background after a job), every request thread warmed first."""
    warm_every_thread(server)
    last = server.threads_and_files()
    for _ in range(10):
        time.sleep(1)
        now = server.threads_and_files()
        if now == last:
            return now
        last = now
    return last


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()




def signed_download(server: Server) -> str:
    """A signed download of a 15 MB original (uploaded and processed here)."""
    data = noise_png(ORIGINAL_BYTES)
    ticket = requests.post(f"{server.base}/api/images/upload", headers=server.auth, timeout=10,
                           json={"content_type": "image/png", "size": len(data), "filename": "noise.png"}).json()
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=30)
    assert put.status_code in (200, 201, 204), put.text
    image = f"{server.base}/api/images/{ticket['image_id']}"
    assert wait_for(lambda: requests.get(image, headers=server.auth, timeout=5).json()["status"] == "ready", 60)
    link = requests.get(f"{image}/download", headers=server.auth, timeout=10)
    assert link.status_code == 200, link.text
    return link.json()["download_url"]


# -- the attacks: each opens its sockets and returns them ------------------------------------


def slow_readers(server: Server, download_url: str, count: int = 60) -> list[socket.socket]:
    """Ask for a large signed download on sockets with a 4 KiB receive buffer; never read."""
    path = download_url[len(server.base):]
    sockets = []
    for _ in range(count):
        sock = server.connect(receive_buffer=4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        sockets.append(sock)
    return sockets


def slow_bodies(server: Server, who: str, count: int = 24) -> list[socket.socket]:
    """Announce a 1 MB upload request body (``who``: with the visitor cookie of a page visit, or
    a token) and send one byte of it."""
    if who == "visitor":
        page = requests.get(server.base + "/", timeout=10)
        headers = f"Cookie: {'; '.join(f'{k}={v}' for k, v in page.cookies.items())}\r\n" \
                  "Content-Type: application/x-www-form-urlencoded\r\n"
    else:
        headers = f"Authorization: {server.auth['Authorization']}\r\nContent-Type: application/json\r\n"
    request = (f"POST /api/images/upload HTTP/1.1\r\nHost: {server.host}\r\n{headers}"
               f"Content-Length: 1000000\r\n\r\n{{").encode()
    sockets = [server.connect() for _ in range(count)]
    for sock in sockets:
        sock.sendall(request)
    return sockets


def slowloris(server: Server, count: int = 100) -> list[socket.socket]:
    """Headers begun and never finished."""
    sockets = [server.connect() for _ in range(count)]
    for sock in sockets:
        sock.sendall(f"GET /api/images HTTP/1.1\r\nHost: {server.host}\r\nX-a: b\r\n".encode())
    return sockets


def idle_keep_alive(server: Server, count: int = 300) -> list[socket.socket]:
    """Connections that asked once and stay open, idle."""
    sockets = []
    for _ in range(count):
        sock = server.connect()
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sockets.append(sock)
    return sockets
