"""Anonymous session workspaces: a page visit gives a visitor cookie, the first write makes the
workspace, CSRF on writes, 24 h from creation."""

from datetime import timedelta

import imagefactory
from support import assert_error
from imageservice.core.timeutil import from_iso, utcnow


def _csrf(client) -> str:
    html = client.get("/").get_data(as_text=True)
    marker = 'name="csrf-token" content="'
    if marker in html:
        return html.split(marker, 1)[1].split('"', 1)[0]
    with client.session_transaction() as session:
        return session["workspace"]["csrf_token"]


def test_workspace_upload_flow_with_csrf(client, worker, settings):
    token = _csrf(client)
    me = client.get("/api/me").get_json()
    assert me["user_id"].startswith("anon-") and me["expires_at"]
    assert_error(client.post("/api/images/upload", json={"content_type": "image/png"}), 403, "csrf_failed")
    assert_error(client.post("/api/images/upload", json={}, headers={"X-CSRF-Token": "wrong"}), 403, "csrf_failed")
    data = imagefactory.png_bytes(50, 50)
    response = client.post("/api/images/upload", json={"content_type": "image/png", "size": len(data)},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 201
    ticket = response.get_json()
    assert "/blobs/sessions/originals/anon-" in ticket["upload_url"]
    url = ticket["upload_url"].split("localhost", 1)[1]
    assert client.put(url, data=data, headers=ticket["upload_headers"]).status_code == 200
    worker.drain()
    record = client.get(f"/api/images/{ticket['image_id']}").get_json()
    assert record["status"] == "ready"
    expires = from_iso(record["expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - utcnow() <= timedelta(hours=24)
    assert client.delete(f"/api/images/{ticket['image_id']}").status_code == 403
    assert client.delete(f"/api/images/{ticket['image_id']}", headers={"X-CSRF-Token": token}).status_code == 204


def test_workspaces_do_not_see_each_other(app, api):
    first, second = app.test_client(), app.test_client()
    token = _csrf(first)
    _csrf(second)
    ticket = first.post("/api/images/upload", json={"content_type": "image/png", "size": 10}, headers={"X-CSRF-Token": token})
    image_id = ticket.get_json()["image_id"]
    assert_error(second.get(f"/api/images/{image_id}"), 404)
    assert second.get("/api/images").get_json()["images"] == []
    assert first.get("/api/me").get_json()["user_id"] != second.get("/api/me").get_json()["user_id"]


def test_workspace_expires_after_its_lifetime(tmp_path):
    from support import make_settings
    from imageservice.bootstrap import build_components
    from imageservice.web import create_app

    components = build_components(make_settings(tmp_path, session_ttl=1))
    client = create_app(components=components).test_client()
    token = _csrf(client)
    assert client.post("/api/images/upload", json={"content_type": "image/png", "size": 10},
                       headers={"X-CSRF-Token": token}).status_code == 201  # makes the workspace
    first = client.get("/api/me").get_json()["user_id"]
    import time

    time.sleep(1.2)
    assert_error(client.get("/api/me"), 401, "unauthenticated")
    client.get("/")
    assert client.get("/api/me").status_code == 200  # a new visit makes a new visitor
    assert client.get("/api/me").get_json()["user_id"] != first


def test_session_cookie_flags(client):
    cookie = client.get("/").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = _csrf(client)
    written = client.post("/api/images/upload", json={"content_type": "image/png", "size": 10},
                          headers={"X-CSRF-Token": token})
    cookie = next(v for k, v in written.headers.items() if k == "Set-Cookie" and "imageservice_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
