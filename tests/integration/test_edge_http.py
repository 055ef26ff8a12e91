"""The HTTP edge through Flask's test client: Retry-After on every 429, no-store on pages,
the JSON error shape on /api routing redirects, and the request-target length limit (414)."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import TooManyRequests as WerkzeugTooManyRequests

from support import ApiClient, assert_error, make_settings
from imageservice.bootstrap import build_components
from imageservice.core.errors import TooManyRequests
from imageservice.web import create_app
from imageservice.web.errors import DEFAULT_RETRY_AFTER


def _app(tmp_path, **overrides):
    components = build_components(make_settings(tmp_path, **overrides))
    app = create_app(components=components)
    app.testing = True
    return app, components


def test_service_429_carries_its_retry_after(tmp_path):
    app, components = _app(tmp_path, uploads_per_minute=1)
    api = ApiClient(app.test_client(), components.service.create_token("alice"))
    api.ticket(content_type="image/png", size=10)
    response = api.call("POST", "/api/images/upload", json={"content_type": "image/png", "size": 10})
    assert_error(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("raised, expected", [
    (TooManyRequests("slow down", retry_after=7), "7"),
    (TooManyRequests("slow down", code="workspaces_exhausted", retry_after=3600), "3600"),
    (WerkzeugTooManyRequests(), str(DEFAULT_RETRY_AFTER)),
    (WerkzeugTooManyRequests(retry_after=12), "12"),
])
def test_every_429_has_retry_after(tmp_path, raised, expected):
    app, _ = _app(tmp_path)

    def refuse():
        raise raised

    app.add_url_rule("/api/test-refuse", "refuse", refuse)
    app.add_url_rule("/test-refuse", "refuse-page", refuse)
    for path in ("/api/test-refuse", "/test-refuse"):
        response = app.test_client().get(path)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == expected
    assert_error(app.test_client().get("/api/test-refuse"), 429)


@pytest.mark.parametrize("path", ["/", "/images/01J00000000000000000000000", "/images/nope", "/no-such-page"])
def test_pages_are_not_cached(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"


def test_static_assets_keep_their_caching(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers["Cache-Control"]


@pytest.mark.parametrize("path, location", [
    ("/api//images", "/api/images"),
    ("/api/images//01J00000000000000000000000", "/api/images/01J00000000000000000000000"),
])
def test_api_routing_redirects_answer_the_json_shape(api, path, location):
    response = api.call("GET", path)
    assert response.status_code == 308
    assert response.headers["Location"].endswith(location)
    assert response.get_json() == {"error": {"code": "moved_permanently", "message": response.get_json()["error"]["message"]}}
    assert location in response.get_json()["error"]["message"]


def test_long_request_targets_are_refused_in_the_json_shape(tmp_path):
    app, components = _app(tmp_path, max_url_length=100)
    api = ApiClient(app.test_client(), components.service.create_token("alice"))
    prefix = "/api/images?tag="
    assert api.call("GET", prefix + "a" * (100 - len(prefix))).status_code == 200
    assert_error(api.call("GET", prefix + "a" * (101 - len(prefix))), 414, "uri_too_long")
    # Before authentication and routing: no token, an unknown path, still 414.
    assert_error(app.test_client().get("/api/" + "x" * 200), 414, "uri_too_long")
    page = app.test_client().get("/" + "x" * 200, headers={"Accept": "text/html"})
    assert page.status_code == 414 and page.mimetype == "text/html"


def test_default_url_limit_sits_below_the_servers_header_limit(tmp_path):
    """The app answers a long target itself (414 in the JSON shape) well before the server's
    limit on the request line and headers together (431)."""
    settings = make_settings(tmp_path)
    assert settings.max_url_length + len("DELETE  HTTP/1.1") < settings.web_max_header_bytes


def test_a_doubled_leading_slash_gets_the_headers_of_its_route(tmp_path):
    """``//api/...`` and ``//blobs/...`` route as their one-slash forms, and so they carry those
    routes' headers: no-store on the API's answers, the sandboxing CSP on blobs."""
    from urllib.parse import urlsplit

    from imageservice.web.security import BLOB_CSP

    app, components = _app(tmp_path)
    api = ApiClient(app.test_client(), components.service.create_token("alice"))
    # PATH_INFO as a server passes it (the test client would read "//api" as a host name)
    created = api.call("POST", "/", json={"content_type": "image/png", "size": 10},
                       environ_overrides={"PATH_INFO": "//api/images/upload"})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    components.blobs.put("originals/alice/x", b"<svg onload=alert(1)>", "image/png")
    signed = urlsplit(components.blobs.presign_download("originals/alice/x", expires_in=60, filename="x.png",
                                                        content_type="image/png", attachment=True).url)
    blob = app.test_client().get("/", query_string=signed.query, environ_overrides={"PATH_INFO": "/" + signed.path})
    assert blob.status_code == 200, blob.get_data(as_text=True)
    assert blob.headers["Content-Security-Policy"] == BLOB_CSP
