"""The attacks against a real ``imageservice serve`` (waitress, embedded job
threads, the imaging pool), each held to a budget measured from outside: peak RSS of every
process of the server's group, the group's RSS afterwards, growth of the data dir, response
times, stored workspaces, and never a 5xx.

One server for the module, the imaging attacks first (the memory figures want a quiet server).
The figures go to ``test-artifacts/abuse-figures.json``.
"""

from __future__ import annotations

import base64
import socket
import threading
import json
import time
from pathlib import Path

import pytest
import requests

import attacks
import imagefactory
from procstats import GroupMonitor, group_rss, tree_bytes, wait_for_group_rss_below
from servers import run_cli, start_service
from support import REPO, stored_sessions

MIB = 1024 * 1024
PEAK_RSS_LIMIT = 1024 * MIB  # no process of the service above this
SETTLED_RSS_LIMIT = 600 * MIB  # the whole group, within SETTLE_SECONDS after the attacks
SETTLE_SECONDS = 20
TIMEOUT_SECONDS = 20  # IMAGESERVICE_IMAGING_TIMEOUT_SECONDS (the default)
QUICK_SECONDS = 2.0  # what a request that does no imaging may take, on a busy 2-core machine
ANON_PER_CLIENT = 5
UPLOADS_PER_MINUTE = 30
FIGURES = REPO / "test-artifacts" / "abuse-figures.json"
figures: dict = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("abuse")
    data_dir = root / "data"
    process, base = start_service(
        data_dir, root / "server.log",
        IMAGESERVICE_ANON_WORKSPACES_PER_CLIENT=str(ANON_PER_CLIENT),
        IMAGESERVICE_UPLOADS_PER_MINUTE=str(UPLOADS_PER_MINUTE),
    )
    try:
        yield Server(base, process, data_dir)
    finally:
        process.stop()
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        FIGURES.write_text(json.dumps(figures, indent=2))


class Server:
    def __init__(self, base: str, process, data_dir: Path):
        self.base, self.process, self.data_dir = base, process, data_dir
        self.pgid = process.process.pid  # started in its own session: its pid is the group's id
        self._tokens: dict[str, dict] = {}

    def headers(self, user: str = "alice", admin: bool = False) -> dict:
        if user not in self._tokens:
            created = run_cli(self.process.env, "token", "create", user, *(["--admin"] if admin else []))
            assert created.returncode == 0, created.stderr
            self._tokens[user] = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
        return self._tokens[user]

    def call(self, method: str, path: str, *, limit: float = QUICK_SECONDS, **kwargs) -> requests.Response:
        """One request, held to the suite's rules: answered within ``limit`` s, never a 5xx, and
        every 4xx of the API in the JSON error shape."""
        kwargs.setdefault("timeout", limit + 30)
        started = time.monotonic()
        response = requests.request(method, self.base + path, **kwargs)
        elapsed = time.monotonic() - started
        assert response.status_code < 500, (method, path, response.status_code, response.text[:500], self.process.log())
        assert elapsed < limit, (method, path, f"{elapsed:.2f}s")
        if response.status_code >= 400 and path.startswith("/api"):
            error = response.json()["error"]
            assert set(error) == {"code", "message"}, error
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
        return response

    def upload(self, data: bytes, content_type: str, filename: str = "attack", user: str = "alice") -> str:
        ticket = self.call("POST", "/api/images/upload", headers=self.headers(user), json={
            "content_type": content_type, "size": len(data), "filename": filename}).json()
        put = self.call("PUT", ticket["upload_url"].removeprefix(self.base), data=data, headers=ticket["upload_headers"])
        assert put.status_code == 200, put.text
        return ticket["image_id"]

    def wait_processed(self, image_id: str, user: str = "alice", timeout: float = 2 * TIMEOUT_SECONDS + 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            record = self.call("GET", f"/api/images/{image_id}", headers=self.headers(user)).json()
            if record["status"] in ("ready", "rejected") or time.monotonic() > deadline:
                return record
            time.sleep(0.1)


# --- 1. imaging: memory and time ------------------------------------------------------------


def test_imaging_attacks_stay_within_the_memory_and_time_budget(server):
    results, highest, group_peak = {}, None, 0
    for attack in attacks.attacks():
        with GroupMonitor(server.pgid) as monitor:
            results[attack.name] = run_imaging_attack(server, attack)
        top = monitor.highest()
        results[attack.name]["peak_rss_mib"] = top.peak // MIB
        if highest is None or top.peak > highest.peak:
            highest = top
        group_peak = max(group_peak, monitor.max_total)
    settled = wait_for_group_rss_below(server.pgid, SETTLED_RSS_LIMIT, SETTLE_SECONDS)
    figures["imaging"] = {
        "attacks": results,
        "highest_peak_rss_mib": highest.peak // MIB, "highest_peak_process": highest.command[:100],
        "group_peak_rss_mib": group_peak // MIB,
        "settled_below_600_mib_after_seconds": round(settled, 1),
        "group_rss_after_mib": group_rss(server.pgid) // MIB,
    }
    assert highest.peak < PEAK_RSS_LIMIT, (highest, results)


def run_imaging_attack(server: Server, attack: attacks.Attack) -> dict:
    """Upload, wait for processing, convert: each step within budget, never a 5xx."""
    started = time.monotonic()
    image_id = server.upload(attack.data, attack.content_type, attack.name)
    record = server.wait_processed(image_id)
    result = {"bytes": len(attack.data), "processing": record["status"],
              "processing_code": (record["error"] or {}).get("code"),
              "processing_seconds": round(time.monotonic() - started, 2)}
    assert record["status"] in ("ready", "rejected"), record
    if record["status"] == "rejected":
        assert record["error"]["code"] in ("too_expensive", "too_many_pixels", "too_many_frames"), record
        return result
    started = time.monotonic()
    converted = server.call("POST", f"/api/images/{image_id}/convert", headers=server.headers(),
                            json=attack.convert, limit=TIMEOUT_SECONDS + 10)
    result.update(conversion=converted.status_code, conversion_seconds=round(time.monotonic() - started, 2))
    if converted.status_code != 200:
        result["conversion_code"] = code = converted.json()["error"]["code"]
        assert (converted.status_code, code) in {
            (422, "too_expensive"), (422, "output_too_large"), (422, "limit_exceeded")}, converted.text
    return result


def test_repeated_conversions_cannot_fill_the_disk(server):
    image_id = server.upload(imagefactory.png_bytes(16, 16), "image/png", "tiny.png")
    assert server.wait_processed(image_id)["status"] == "ready"
    before = tree_bytes(server.data_dir)
    for quality in (1, 2, 3):
        server.call("POST", f"/api/images/{image_id}/convert", headers=server.headers(), limit=TIMEOUT_SECONDS + 10,
                    json={"format": "bmp", "width": 6000, "height": 6000, "fit": "fill", "quality": quality})
    growth = tree_bytes(server.data_dir) - before
    figures["conversion_disk_growth_bytes"] = growth
    assert growth <= 50 * MIB, growth  # at most one output, of at most max_upload_bytes


# --- 2. anonymous workspaces ----------------------------------------------------------------


def test_cookieless_gets_make_no_workspace_and_a_flood_of_first_writes_is_refused(server):
    before = stored_sessions(server.data_dir)
    for n in range(60):
        for path in ("/", f"/images/nope-{n}", "/no-such-page", "/api/images"):
            server.call("GET", path)
    assert stored_sessions(server.data_dir) == before

    answers = []
    for _ in range(ANON_PER_CLIENT + 5):
        visitor = requests.Session()
        page = server.call("GET", "/", cookies=visitor.cookies)
        visitor.cookies.update(page.cookies)
        csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        answers.append(server.call("POST", "/api/images/upload", cookies=visitor.cookies,
                                   headers={"X-CSRF-Token": csrf},
                                   json={"content_type": "image/png", "size": 100}).status_code)
    assert answers[:ANON_PER_CLIENT] == [201] * ANON_PER_CLIENT, answers
    assert set(answers[ANON_PER_CLIENT:]) == {429}, answers
    made = stored_sessions(server.data_dir) - before
    figures["workspaces"] = {"cookieless_gets": 240, "first_writes": len(answers), "workspaces_made": made}
    assert made == ANON_PER_CLIENT


# --- 3. inputs that used to answer 500 ------------------------------------------------------


def cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def json_body(**fields) -> dict:
    """A raw JSON body: ``json.dumps`` writes lone surrogates as \\u escapes, as an attacker would."""
    return {"data": json.dumps({"content_type": "image/png", "size": 100, **fields}),
            "headers": {"Content-Type": "application/json"}}


def case(name: str, caller: str | None, method: str, path: str, kwargs: dict, marks=()):
    """One hostile request: its name, who sends it (a token's user, or nobody), and how."""
    return pytest.param(name, caller, method, path, kwargs, marks=marks, id=name)


HOSTILE = [
    case("deep_json_unauthenticated", None, "POST", "/api/images/upload",
         {"data": DEEP_JSON, "headers": {"Content-Type": "application/json"}}),
    case("deep_json", "alice", "POST", "/api/images/upload",
         {"data": DEEP_JSON, "headers": {"Content-Type": "application/json"}}),
    case("surrogate_filename", "alice", "POST", "/api/images/upload", json_body(filename="a\ud800.png")),
    case("surrogate_description", "alice", "POST", "/api/images/upload", json_body(description="x\udfff")),
    case("surrogate_tags", "alice", "POST", "/api/images/upload", json_body(tags=["ok", "\ud83d"])),
    case("cursor_list", "alice", "GET", "/api/images", {"params": {"cursor": cursor([1])}}),
    case("cursor_object", "alice", "GET", "/api/images", {"params": {"cursor": cursor({"a": 1})}}),
    case("cursor_garbage", "alice", "GET", "/api/images", {"params": {"cursor": "%%%"}}),
    case("admin_user_id_number", "root", "POST", "/api/images/upload", json_body(user_id=5)),
    case("admin_user_id_list", "root", "POST", "/api/images/upload", json_body(user_id=["alice"])),
    case("admin_user_id_object", "root", "POST", "/api/images/upload", json_body(user_id={"id": "alice"})),
    case("long_url", "alice", "GET", "/api/images", {"params": {"tag": "x" * 3000}}),
]


@pytest.mark.parametrize("name, caller, method, path, kwargs", HOSTILE)
def test_hostile_input_gets_a_4xx_in_the_json_shape(server, name, caller, method, path, kwargs):
    headers = dict(kwargs.get("headers", {}))
    if caller:
        headers.update(server.headers(caller, admin=caller == "root"))
    response = server.call(method, path, **{**kwargs, "headers": headers})
    figures.setdefault("hostile_inputs", {})[name] = response.status_code
    assert 400 <= response.status_code < 500, response.text


def test_filenames_lose_control_and_bidi_characters_and_pages_are_not_cached(server):
    image_id = server.upload(imagefactory.png_bytes(8, 8), "image/png", "invoice\u202egnp.exe\x00.png")
    filename = server.call("GET", f"/api/images/{image_id}", headers=server.headers()).json()["filename"]
    assert "\u202e" not in filename and "\x00" not in filename, filename
    # Pages carrying a CSRF token are never cached.
    assert "no-store" in server.call("GET", "/").headers.get("Cache-Control", "")


def test_every_429_says_when_to_come_back(server):
    headers = server.headers("flooder")
    answers = [server.call("POST", "/api/images/upload", headers=headers,
                           json={"content_type": "image/png", "size": 100}).status_code
               for _ in range(UPLOADS_PER_MINUTE + 3)]
    assert answers[-1] == 429, answers  # Retry-After is checked on every 429 by Server.call


# --- 4. storage: single-use upload URLs and the byte quota ----------------------------------


def test_an_upload_url_cannot_replace_a_validated_original(server):
    data = imagefactory.png_bytes(32, 32)
    ticket = server.call("POST", "/api/images/upload", headers=server.headers(),
                         json={"content_type": "image/png", "size": len(data), "filename": "once.png"}).json()
    url = ticket["upload_url"].removeprefix(server.base)
    assert server.call("PUT", url, data=data, headers=ticket["upload_headers"]).status_code == 200
    assert server.wait_processed(ticket["image_id"])["status"] == "ready"
    other = imagefactory.png_bytes(32, 32, "L")[:len(data)].ljust(len(data), b"\0")  # same length and type
    replay = server.call("PUT", url, data=other, headers=ticket["upload_headers"])
    assert 400 <= replay.status_code < 500, replay.status_code


def test_an_upload_without_a_size_is_refused(server):
    response = server.call("POST", "/api/images/upload", headers=server.headers(),
                           json={"content_type": "image/png", "filename": "sizeless.png"})
    assert response.status_code == 400, response.text


def test_a_truncated_png_is_rejected_corrupt(server):
    whole = imagefactory.png_bytes(256, 256)
    cut = whole[: len(whole) * 2 // 3]  # IDAT cut short, IEND gone
    record = server.wait_processed(server.upload(cut, "image/png", "cut.png"))
    assert (record["status"], (record["error"] or {}).get("code")) == ("rejected", "corrupt"), record


# --- 5. slow clients --------------------------------------------------------------------------

SLOW_CLIENTS = 50


def test_healthz_answers_within_a_second_under_slow_clients(server):
    host, port = server.base.removeprefix("http://").split(":")
    sockets = []
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            for sock in list(sockets):
                try:
                    sock.send(b"X")
                except OSError:
                    sockets.remove(sock)
            stop.wait(0.5)

    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(sock)
        dribbler = threading.Thread(target=dribble, daemon=True)
        dribbler.start()
        time.sleep(1.0)  # every worker thread now holds a dribbling client
        latencies = []
        for _ in range(3):
            started = time.monotonic()
            try:
                answered = requests.get(f"{server.base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                answered = False
            latencies.append(round(time.monotonic() - started, 3) if answered else None)
        figures["healthz_under_slow_clients_seconds"] = latencies
        assert all(latency is not None and latency < 1.0 for latency in latencies), latencies
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
