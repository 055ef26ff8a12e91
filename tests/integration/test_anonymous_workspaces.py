"""Anonymous workspaces against real SQLite and the real session store: made on the first write,
never on a GET; budgets per client address and in total, each crossed; a flood is refused (429 +
Retry-After) and never pushes a live session out of the store."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

import support
from support import assert_error, make_settings
from imageservice.bootstrap import build_components
from imageservice.web import create_app
from imageservice.web.sessions import store_threshold
from imageservice.core.timeutil import utcnow
from imageservice.entrypoints.worker import Worker

UPLOAD = {"content_type": "image/png", "size": 100}


def make_app(tmp_path, **overrides):
    settings = make_settings(tmp_path, **overrides)
    app = create_app(components=build_components(settings))
    app.testing = True
    return app, settings


def browser(app, address="203.0.113.7", **headers):
    """A test client that comes from ``address`` (the socket peer), with default headers."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, **{f"HTTP_{k.upper().replace('-', '_')}": v
                                                           for k, v in headers.items()}})
    return client


def csrf(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def first_write(client, size=100):
    return client.post("/api/images/upload", json={**UPLOAD, "size": size}, headers={"X-CSRF-Token": csrf(client)})


def stored_sessions(settings) -> int:
    return support.stored_sessions(settings.data_path)


def test_gets_store_nothing_and_the_first_write_makes_the_workspace(tmp_path):
    app, settings = make_app(tmp_path)
    client = browser(app)
    for path in ("/", "/images/01J00000000000000000000000", "/images/nope", "/no-such-page"):
        response = client.get(path)
        assert not any("imageservice_session=" in v for k, v in response.headers.items() if k == "Set-Cookie")
    # The gallery's own reads work before any write: the (empty) prospective workspace.
    assert client.get("/api/images").get_json() == {"images": [], "next_cursor": None}
    me = client.get("/api/me").get_json()
    assert me["user_id"].startswith("anon-") and me["usage"]["images"] == 0
    assert stored_sessions(settings) == 0

    response = first_write(client)
    assert response.status_code == 201
    assert stored_sessions(settings) == 1
    workspace = client.get("/api/me").get_json()
    assert workspace["user_id"].startswith("anon-") and workspace["usage"]["images"] == 1
    assert len(client.get("/api/images").get_json()["images"]) == 1
    # Once made, the visitor cookie is gone and the session cookie carries the workspace.
    assert "imageservice_visitor" not in {c.key for c in client._cookies.values()}


def _visitor_cookie(client) -> str:
    csrf(client)  # the page visit that hands it out
    return client.get_cookie("imageservice_visitor").value


def _holding(app, visitor_cookie: str, address="203.0.113.7"):
    """Another browser that holds a copy of ``visitor_cookie`` and nothing else."""
    other = browser(app, address)
    other.set_cookie("imageservice_visitor", visitor_cookie)
    return other


def test_a_pages_first_writes_at_once_land_in_one_workspace_and_are_charged_once(tmp_path):
    app, _ = make_app(tmp_path, anon_workspaces_per_client=1)
    page = browser(app)
    token, cookie = csrf(page), _visitor_cookie(page)
    tabs = [_holding(app, cookie) for _ in range(3)]  # one page's three requests, sent together
    barrier = threading.Barrier(len(tabs))

    def drop(tab):
        barrier.wait()
        return tab.post("/api/images/upload", json=UPLOAD, headers={"X-CSRF-Token": token})

    with ThreadPoolExecutor(len(tabs)) as pool:
        answers = list(pool.map(drop, tabs))
    assert [a.status_code for a in answers] == [201, 201, 201]  # one workspace admitted, not three
    owners = {tab.get("/api/me").get_json()["user_id"] for tab in tabs}
    assert len(owners) == 1
    assert len(tabs[0].get("/api/images").get_json()["images"]) == 3


def test_a_copy_of_the_visitor_cookie_reaches_nothing_once_the_workspace_exists(tmp_path):
    app, _ = make_app(tmp_path, visitor_join_seconds=0)
    owner = browser(app)
    token, cookie = csrf(owner), _visitor_cookie(owner)
    image_id = first_write(owner).get_json()["image_id"]
    time.sleep(0.01)

    thief = _holding(app, cookie, "198.51.100.66")
    assert thief.get("/api/images").get_json()["images"] == []
    assert_error(thief.get(f"/api/images/{image_id}"), 404)
    assert thief.get("/api/me").get_json()["usage"]["images"] == 0
    assert_error(thief.delete(f"/api/images/{image_id}", headers={"X-CSRF-Token": token}), 403, "visitor_spent")
    assert_error(thief.post("/api/images/upload", json=UPLOAD, headers={"X-CSRF-Token": token}), 403, "visitor_spent")
    # The owner's workspace is whole.
    assert [i["image_id"] for i in owner.get("/api/images").get_json()["images"]] == [image_id]


def test_cookieless_crawlers_store_nothing(tmp_path):
    app, settings = make_app(tmp_path)
    for _ in range(30):
        assert app.test_client().get("/").status_code == 200
    assert stored_sessions(settings) == 0


def test_a_forged_visitor_cookie_is_refused(tmp_path):
    app, _ = make_app(tmp_path)
    client = browser(app)
    client.set_cookie("imageservice_visitor", "eyJ1c2VyX2lkIjoiYW5vbi14In0.forged.sig")
    assert_error(client.get("/api/me"), 401, "unauthenticated")


def test_workspaces_per_client(tmp_path):
    app, _ = make_app(tmp_path, anon_workspaces_per_client=2)
    for _ in range(2):
        assert first_write(browser(app)).status_code == 201
    refused = first_write(browser(app))
    assert_error(refused, 429, "workspace_limit")
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    # Another address has its own budget; an existing workspace keeps writing.
    assert first_write(browser(app, "198.51.100.9")).status_code == 201


def test_forwarded_for_is_trusted_only_through_the_configured_proxies(tmp_path):
    app, _ = make_app(tmp_path, anon_workspaces_per_client=1)
    # No trusted proxy: a client cannot escape its budget by inventing X-Forwarded-For.
    assert first_write(browser(app, **{"X-Forwarded-For": "192.0.2.1"})).status_code == 201
    assert_error(first_write(browser(app, **{"X-Forwarded-For": "192.0.2.2"})), 429, "workspace_limit")

    app, _ = make_app(tmp_path / "alb", anon_workspaces_per_client=1, trusted_proxies=1)
    alb = "10.0.0.5"  # the socket peer is the load balancer
    assert first_write(browser(app, alb, **{"X-Forwarded-For": "192.0.2.1"})).status_code == 201
    # The left entries are the client's own words: only the one the ALB appended counts.
    assert_error(first_write(browser(app, alb, **{"X-Forwarded-For": "6.6.6.6, 192.0.2.1"})), 429, "workspace_limit")
    assert first_write(browser(app, alb, **{"X-Forwarded-For": "192.0.2.1, 192.0.2.2"})).status_code == 201


def test_workspaces_in_total(tmp_path):
    app, _ = make_app(tmp_path, anon_workspaces_total=3)
    for n in range(3):
        assert first_write(browser(app, f"192.0.2.{n}")).status_code == 201
    refused = first_write(browser(app, "192.0.2.99"))
    assert_error(refused, 429, "workspace_limit")
    assert int(refused.headers["Retry-After"]) >= 1


def test_anonymous_bytes_per_client(tmp_path):
    app, _ = make_app(tmp_path, anon_bytes_per_client=1000)
    client = browser(app)
    assert first_write(client, size=600).status_code == 201
    token = csrf(client)
    refused = client.post("/api/images/upload", json={**UPLOAD, "size": 600}, headers={"X-CSRF-Token": token})
    assert_error(refused, 429, "anonymous_bytes_limit")
    assert "Retry-After" in refused.headers
    assert client.post("/api/images/upload", json={**UPLOAD, "size": 400},
                       headers={"X-CSRF-Token": token}).status_code == 201  # exactly the budget
    # Another address, even in a fresh workspace, has its own budget.
    assert first_write(browser(app, "198.51.100.9"), size=600).status_code == 201


def test_anonymous_storage_in_total(tmp_path):
    # Half the cap per workspace lifetime: what is held never passes the cap.
    app, _ = make_app(tmp_path, anon_storage_bytes=2000, anon_client_share=1)
    assert first_write(browser(app, "192.0.2.1"), size=600).status_code == 201
    assert_error(first_write(browser(app, "192.0.2.2"), size=600), 429, "anonymous_bytes_limit")
    assert first_write(browser(app, "192.0.2.3"), size=400).status_code == 201


def test_a_few_addresses_cannot_spend_everyones_anonymous_bytes(tmp_path):
    # 2 % each: the 10 000 bytes admitted per workspace lifetime take 50 addresses, not 5.
    app, _ = make_app(tmp_path, anon_storage_bytes=20_000, anon_bytes_per_client=10_000)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"):
        client = browser(app, address)
        assert first_write(client, size=200).status_code == 201
        refused = client.post("/api/images/upload", json={**UPLOAD, "size": 1},
                              headers={"X-CSRF-Token": csrf(client)})
        assert_error(refused, 429, "anonymous_bytes_limit")
    assert first_write(browser(app, "198.51.100.1"), size=200).status_code == 201


def _sweep_after_the_urls_lapse(app, settings) -> dict:
    service = app.extensions["imageservice"].service
    later = utcnow() + timedelta(seconds=settings.upload_url_ttl + settings.pending_grace + 1)
    service.clock = lambda: later
    try:
        return service.sweep()
    finally:
        service.clock = utcnow


def test_declared_bytes_never_sent_come_back_when_the_sweep_removes_the_upload(tmp_path):
    # The attack: tickets declaring the whole budget, not one byte sent. Once the sweep has
    # removed them, the address's budget is whole again.
    app, settings = make_app(tmp_path, anon_bytes_per_client=1000)
    attacker = browser(app)
    token = csrf(attacker)
    for _ in range(2):
        assert attacker.post("/api/images/upload", json={**UPLOAD, "size": 500},
                             headers={"X-CSRF-Token": token}).status_code == 201
    neighbour = browser(app)  # another browser behind the same address
    assert_error(first_write(neighbour, size=400), 429, "anonymous_bytes_limit")
    assert _sweep_after_the_urls_lapse(app, settings)["abandoned"] == 2
    assert first_write(neighbour, size=1000).status_code == 201
    # A second sweep finds nothing and gives nothing back twice.
    assert _sweep_after_the_urls_lapse(app, settings)["abandoned"] == 1  # the neighbour's, unsent
    assert first_write(browser(app), size=1000).status_code == 201
    assert_error(first_write(browser(app), size=1), 429, "anonymous_bytes_limit")


def test_a_rejected_upload_gives_its_declared_bytes_back(tmp_path):
    app, settings = make_app(tmp_path, anon_bytes_per_client=1000)
    client = browser(app)
    payload = b"this is not an image at all"
    response = client.post("/api/images/upload", json={**UPLOAD, "size": len(payload)},
                           headers={"X-CSRF-Token": csrf(client)})
    assert response.status_code == 201
    ticket = response.get_json()
    assert support.ApiClient(client, None).put(ticket, payload).status_code == 200
    Worker(app.extensions["imageservice"]).drain()
    assert client.get(f"/api/images/{ticket['image_id']}").get_json()["error"]["code"] == "not_an_image"
    assert first_write(browser(app), size=1000).status_code == 201  # all of the hour's budget


def test_a_refused_upload_spends_no_anonymous_bytes(tmp_path):
    app, _ = make_app(tmp_path, anon_bytes_per_client=1000, uploads_per_minute=1)
    client = browser(app)
    token = csrf(client)
    assert client.post("/api/images/upload", json={**UPLOAD, "size": 300}, headers={"X-CSRF-Token": token}).status_code == 201
    refused = client.post("/api/images/upload", json={**UPLOAD, "size": 300}, headers={"X-CSRF-Token": token})
    assert_error(refused, 429, "rate_limited")
    assert first_write(browser(app), size=700).status_code == 201


def test_token_owners_are_not_anonymous(tmp_path):
    app, settings = make_app(tmp_path, anon_workspaces_per_client=1, anon_bytes_per_client=1)
    token = app.extensions["imageservice"].service.create_token("alice")
    for _ in range(3):
        response = browser(app).post("/api/images/upload", json=UPLOAD, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201
    assert stored_sessions(settings) == 0


def test_a_flood_never_evicts_a_live_session(tmp_path):
    app, settings = make_app(tmp_path, anon_workspaces_total=5, anon_workspaces_per_client=1000)
    real = browser(app, "198.51.100.1")
    assert first_write(real).status_code == 201
    owner = real.get("/api/me").get_json()["user_id"]
    refused = 0
    for n in range(60):  # many clients, each visiting and writing once
        response = first_write(browser(app, f"10.1.{n // 250}.{n % 250}"))
        refused += response.status_code == 429
    assert refused == 60 - 4
    assert stored_sessions(settings) <= 5 < store_threshold(settings)
    assert real.get("/api/me").get_json()["user_id"] == owner
    assert real.post("/api/images/upload", json=UPLOAD, headers={"X-CSRF-Token": csrf(real)}).status_code == 201


@pytest.mark.parametrize("setting", ["anon_workspaces_total"])
def test_the_store_threshold_leaves_room_for_every_admitted_workspace(tmp_path, setting):
    settings = make_settings(tmp_path, **{setting: 7})
    # At most 2 x the per-lifetime admissions are unexpired at once; pruning past the threshold
    # starts with expired entries, so it never reaches a live one.
    assert store_threshold(settings) > 2 * 7


def test_health_probes_and_static_files_leave_the_session_alone(tmp_path):
    """/healthz, /readyz and static files get no session work: no cookie is set or renewed,
    and the workspace is the same afterwards."""
    app, settings = make_app(tmp_path)
    client = browser(app)
    assert first_write(client).status_code == 201
    me = client.get("/api/me").get_json()["user_id"]
    script = client.get("/").get_data(as_text=True).split('<script type="module" src="', 1)[1].split('"', 1)[0]
    for path in ("/healthz", "/readyz", script):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Set-Cookie" not in response.headers, path
    assert client.get("/api/me").get_json()["user_id"] == me
    assert stored_sessions(settings) == 1


def test_the_visitor_cookie_gives_away_neither_the_csrf_token_nor_the_workspace_id(tmp_path):
    """The visitor cookie is signed, not encrypted: its payload is one random value, from which
    only the server (holding the secret key) derives the CSRF token and the workspace id."""
    import base64
    import json

    app, _ = make_app(tmp_path)
    alice = browser(app)
    token = csrf(alice)
    user_id = alice.get("/api/me").get_json()["user_id"]
    visitor = alice.get_cookie("imageservice_visitor").value
    payload = json.loads(base64.urlsafe_b64decode(visitor.split(".")[0] + "=="))
    assert set(payload) == {"v"} and token not in visitor and user_id.removeprefix("anon-") not in visitor
