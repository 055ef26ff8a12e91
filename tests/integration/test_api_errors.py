"""Every malformed request answers the JSON error shape with the right status."""

import pytest

import imagefactory
from support import ApiClient, assert_error

MISSING = "01J00000000000000000000000"


@pytest.fixture
def ready_image(api):
    return api.upload(imagefactory.jpeg_bytes(320, 240))


@pytest.mark.parametrize("method, path, kwargs, status, code", [
    ("POST", "/api/images/upload", {"data": "{", "content_type": "application/json"}, 400, "invalid_json"),
    ("POST", "/api/images/upload", {"json": [1, 2]}, 400, "invalid_json"),
    ("POST", "/api/images/upload", {"json": {"content_type": "text/html", "size": 10}}, 415, "unsupported_format"),
    ("POST", "/api/images/upload", {"json": {"content_type": "image/svg+xml", "size": 10}}, 415, "unsupported_format"),
    ("POST", "/api/images/upload", {"json": {"size": 60 * 1024 * 1024}}, 413, "too_large"),
    ("POST", "/api/images/upload", {"json": {"size": -1}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": "big"}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"content_type": "image/png"}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload?content_type=image/png", {}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": True}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": 1.5}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": 10, "tags": {"a": 1}}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": 10, "tags": ["x" * 65]}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": 10, "description": 5}}, 400, "invalid_parameter"),
    ("POST", "/api/images/upload", {"json": {"size": 10, "user_id": "bob"}}, 403, "forbidden_user"),
    ("GET", "/api/images?limit=101", {}, 400, "invalid_parameter"),
    ("GET", "/api/images?limit=0", {}, 400, "invalid_parameter"),
    ("GET", "/api/images?since=yesterday", {}, 400, "invalid_parameter"),
    ("GET", "/api/images?since=2025-02-01&until=2025-01-01", {}, 400, "invalid_parameter"),
    ("GET", "/api/images?status=done", {}, 400, "invalid_parameter"),
    ("GET", "/api/images?cursor=%%%", {}, 400, "invalid_cursor"),
    ("GET", "/api/images?user_id=bob", {}, 403, "forbidden_user"),
    ("GET", f"/api/images/{MISSING}", {}, 404, "image_not_found"),
    ("GET", "/api/images/not-an-id", {}, 404, "image_not_found"),
    ("DELETE", f"/api/images/{MISSING}", {}, 404, "image_not_found"),
    ("POST", f"/api/images/{MISSING}/complete", {}, 404, "image_not_found"),
    ("GET", f"/api/images/{MISSING}/download", {}, 404, "image_not_found"),
    ("POST", f"/api/images/{MISSING}/convert", {"json": {"format": "png"}}, 404, "image_not_found"),
    ("PATCH", f"/api/images/{MISSING}", {}, 400, "invalid_json"),
    ("GET", "/api/nothing-here", {}, 404, "not_found"),
    ("PUT", "/api/images", {}, 405, "method_not_allowed"),
    ("POST", "/api/images/upload", {"data": b"x" * (2 * 1024 * 1024), "content_type": "application/json"},
     413, "too_large"),
])
def test_malformed_requests(api, method, path, kwargs, status, code):
    assert_error(api.call(method, path, **kwargs), status, code)


@pytest.mark.parametrize("body, status, code", [
    ({"format": "psd"}, 400, "invalid_parameter"),
    ({}, 400, "invalid_parameter"),
    ({"format": "png", "fit": "stretch"}, 400, "invalid_parameter"),
    ({"format": "png", "width": 0}, 400, "invalid_parameter"),
    ({"format": "png", "width": "wide"}, 400, "invalid_parameter"),
    ({"format": "jpeg", "quality": 101}, None, None),
    ({"format": "png", "width": 9000}, 422, None),
])
def test_bad_conversions(api, ready_image, body, status, code):
    response = api.call("POST", f"/api/images/{ready_image}/convert", json=body)
    assert response.status_code in ((status,) if status else (400, 422))
    assert_error(response, response.status_code, code)


def test_bad_variant_and_patch_fields(api, ready_image):
    assert_error(api.call("GET", f"/api/images/{ready_image}/download?variant=huge"), 400, "invalid_parameter")
    assert_error(api.call("PATCH", f"/api/images/{ready_image}", json={"status": "ready"}), 400, "invalid_parameter")


def test_not_ready_answers_409(api):
    image_id = api.ticket(content_type="image/png", size=10)["image_id"]
    assert_error(api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png"}), 409, "not_ready")
    assert_error(api.call("GET", f"/api/images/{image_id}/download"), 409, "not_ready")


def test_authentication_errors(client):
    assert_error(client.get("/api/images"), 401, "unauthenticated")
    assert_error(client.get("/api/images", headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
    assert_error(client.get("/api/images", headers={"Authorization": "Basic abc"}), 401, "invalid_token")
    assert_error(client.post("/api/images/upload", json={}), 401, "unauthenticated")


def test_browsers_get_an_html_error_page(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    main = response.get_data(as_text=True).split("<main", 1)[1].split(">", 1)[1].split("</main>")[0]
    assert "{" not in main  # the page's words, not a JSON error body


def test_owner_isolation(client, components, worker, api):
    image_id = api.upload(imagefactory.jpeg_bytes(200, 100))
    bob = ApiClient(client, components.service.create_token("bob"), worker)
    for method, path in [("GET", f"/api/images/{image_id}"), ("DELETE", f"/api/images/{image_id}"),
                         ("GET", f"/api/images/{image_id}/download"), ("POST", f"/api/images/{image_id}/complete"),
                         ("PATCH", f"/api/images/{image_id}")]:
        kwargs = {"json": {"tags": ["x"]}} if method == "PATCH" else {}
        assert_error(bob.call(method, path, **kwargs), 404, "image_not_found")
    assert_error(bob.call("POST", f"/api/images/{image_id}/convert", json={"format": "png"}), 404)
    assert bob.call("GET", "/api/images").get_json()["images"] == []
    assert api.image(image_id)["status"] == "ready"


def test_admin_acts_for_any_user(client, components, worker, api):
    image_id = api.upload(imagefactory.jpeg_bytes(200, 100, gps=(10.0, 20.0, 0.0)))
    admin = ApiClient(client, components.service.create_token("root", admin=True), worker)
    assert_error(admin.call("GET", f"/api/images/{image_id}"), 404)
    record = admin.call("GET", f"/api/images/{image_id}?user_id=alice").get_json()
    assert record["user_id"] == "alice" and record["gps"] is not None
    listed = admin.call("GET", "/api/images?user_id=alice").get_json()["images"]
    assert [r["image_id"] for r in listed] == [image_id]
    ticket = admin.ticket(user_id="carol", content_type="image/png", size=10)
    assert admin.call("GET", f"/api/images/{ticket['image_id']}?user_id=carol").get_json()["user_id"] == "carol"
    assert admin.call("DELETE", f"/api/images/{image_id}?user_id=alice").status_code == 204


def test_the_upload_path_is_not_an_image_id(client, api):
    # /images/upload names the upload call only: its OPTIONS and 405 list POST alone.
    assert set(client.options("/api/images/upload").headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert_error(api.call("GET", "/api/images/upload"), 405, "method_not_allowed")
    assert "PATCH" in client.options("/api/images/01J00000000000000000000000").headers["Allow"]
