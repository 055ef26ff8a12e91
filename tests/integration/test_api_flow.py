"""The README's curl flow through the API, in-process: ticket, PUT, process, list, download, convert, delete."""

import re
from io import BytesIO
from pathlib import Path

from PIL import Image

import imagefactory
from support import assert_error


def _files(settings) -> list[str]:
    root = Path(settings.data_dir) / "blobs"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_upload_with_query_params(api, client, token):
    data = imagefactory.jpeg_bytes(800, 600)
    response = client.post(
        f"/api/images/upload?content_type=image/jpeg&size={len(data)}&filename=cat.jpg&tags=pets,cats",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    ticket = response.get_json()
    assert ticket["upload_method"] == "PUT" and ticket["status"] == "pending"
    assert ticket["upload_headers"] == {"Content-Type": "image/jpeg", "If-None-Match": "*"}  # single-use URL
    assert api.put(ticket, data).status_code == 200
    api.process()
    record = api.image(ticket["image_id"])
    assert record["status"] == "ready"
    assert record["tags"] == ["pets", "cats"] and record["filename"] == "cat.jpg"


def test_full_flow_with_json_body(api, settings):
    data = imagefactory.jpeg_bytes(1600, 1200, gps=(48.8584, 2.2945, 35.0))
    ticket = api.ticket(content_type="image/jpeg", size=len(data), filename="tower.jpg",
                        tags=["paris"], description="Eiffel")
    assert api.call("GET", f"/api/images/{ticket['image_id']}").get_json()["status"] == "pending"
    assert api.put(ticket, data).status_code == 200
    api.process()
    image_id = ticket["image_id"]
    record = api.image(image_id)
    assert record["status"] == "ready", record
    assert (record["width"], record["height"], record["format"]) == (1600, 1200, "JPEG")
    assert record["content_type"] == "image/jpeg" and record["size"] == len(data)
    assert record["exif"]["Model"] and record["gps"]["latitude"] > 48
    assert record["derivatives"]["thumb"]["width"] == 256
    assert record["derivatives"]["preview"]["width"] == 1440
    assert record["blurhash"] and record["sha256"] and record["processed_at"] and record["uploaded_at"]
    assert set(record) >= {"image_id", "user_id", "expires_at", "error", "frames", "animated", "mode"}
    assert "original_key" not in record and "lease_until" not in record

    listed = api.call("GET", "/api/images?tag=paris").get_json()
    assert [i["image_id"] for i in listed["images"]] == [image_id] and listed["next_cursor"] is None
    assert api.call("GET", "/api/images?tag=london").get_json()["images"] == []

    original = api.call("GET", f"/api/images/{image_id}/download").get_json()
    fetched = api.fetch(original["download_url"])
    assert fetched.status_code == 200 and fetched.data == data
    assert fetched.headers["Content-Type"] == "image/jpeg"
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="tower.jpg"')
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"

    thumb = api.fetch(api.call("GET", f"/api/images/{image_id}/download?variant=thumb").get_json()["download_url"])
    thumb_image = Image.open(BytesIO(thumb.data))
    assert thumb_image.format == "WEBP" and max(thumb_image.size) == 256
    assert not thumb_image.getexif() and "exif" not in thumb_image.info

    redirect = api.call("GET", f"/api/images/{image_id}/download?variant=preview&redirect=1")
    assert redirect.status_code == 302 and "/blobs/" in redirect.headers["Location"]

    converted = api.call("POST", f"/api/images/{image_id}/convert",
                         json={"format": "png", "width": 300, "height": 200, "fit": "fill"}).get_json()
    assert (converted["format"], converted["width"], converted["height"]) == ("png", 300, 200)
    body = api.fetch(converted["download_url"])
    assert 'filename="tower-300x200.png"' in body.headers["Content-Disposition"]
    out = Image.open(BytesIO(body.data))
    assert out.format == "PNG" and out.size == (300, 200) and not out.getexif()
    assert len(body.data) == converted["bytes"]
    again = api.call("POST", f"/api/images/{image_id}/convert",
                     json={"format": "png", "width": 300, "height": 200, "fit": "fill"}).get_json()
    assert again["bytes"] == converted["bytes"]
    conversions = [f for f in _files(settings) if f.startswith("conversions/")]
    assert len([f for f in conversions if f.endswith(".png")]) == 1  # cached, not made twice

    patched = api.call("PATCH", f"/api/images/{image_id}", json={"tags": "a, B ,a", "description": " new "})
    assert patched.status_code == 200 and patched.get_json()["tags"] == ["a", "b"]
    assert patched.get_json()["description"] == "new"

    assert api.call("DELETE", f"/api/images/{image_id}").status_code == 204
    assert_error(api.call("GET", f"/api/images/{image_id}"), 404, "image_not_found")
    assert _files(settings) == []
    assert api.fetch(original["download_url"]).status_code == 404


def test_complete_and_upload_event_together_process_once(api, components, settings):
    data = imagefactory.png_bytes(300, 200)
    ticket = api.ticket(content_type="image/png", size=len(data), filename="a.png")
    assert_error(api.call("POST", f"/api/images/{ticket['image_id']}/complete"), 409, "upload_missing")
    api.put(ticket, data)
    response = api.call("POST", f"/api/images/{ticket['image_id']}/complete")
    assert response.status_code == 202 and response.get_json()["status"] == "pending"
    assert components.queue.depth() == 2  # the upload's own job and complete's
    api.process()
    assert components.queue.depth() == 0
    record = api.image(ticket["image_id"])
    assert record["status"] == "ready"
    derivative_files = [f for f in _files(settings) if f.startswith("derivatives/")]
    assert len(derivative_files) == 2
    assert api.call("POST", f"/api/images/{ticket['image_id']}/complete").get_json()["status"] == "ready"


def test_listing_pages_newest_first_with_date_filters(api):
    ids = [api.upload(imagefactory.png_bytes(40, 30), "image/png", f"{n}.png", process=False) for n in range(7)]
    seen, cursor = [], None
    while True:
        page = api.call("GET", "/api/images?limit=3" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [i["image_id"] for i in page["images"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    first = api.image(ids[0])["created_at"]
    last = api.image(ids[-1])["created_at"]
    since = api.call("GET", f"/api/images?since={last}").get_json()["images"]
    assert ids[-1] in [i["image_id"] for i in since] and ids[0] not in [i["image_id"] for i in since] or first == last
    assert api.call("GET", "/api/images?until=2000-01-01T00:00:00Z").get_json()["images"] == []
    assert len(api.call("GET", "/api/images?status=pending&limit=100").get_json()["images"]) == 7
    assert api.call("GET", "/api/images?status=ready").get_json()["images"] == []


def test_rejected_upload_keeps_a_reason_and_no_bytes(api, settings):
    image_id = api.upload(imagefactory.html_as_jpg_bytes(), "image/jpeg", "page.jpg")
    record = api.image(image_id)
    assert record["status"] == "rejected"
    assert record["error"]["code"] == "not_an_image" and record["error"]["message"]
    assert _files(settings) == []
    assert_error(api.call("GET", f"/api/images/{image_id}/download"), 409, "not_ready")


def test_openapi_spec_is_valid_and_docs_need_no_cdn(client):
    from openapi_spec_validator import validate

    spec = client.get("/api/openapi.json").get_json()
    validate(spec)
    for path in ("/api/images/upload", "/api/images", "/api/images/{image_id}", "/api/images/{image_id}/convert",
                 "/api/images/{image_id}/download", "/api/images/{image_id}/complete"):
        assert path in spec["paths"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    html = docs.get_data(as_text=True)
    assert "http://" not in html.replace("http://localhost", "") and "https://" not in html
    assert "<script>" not in html  # the CSP allows no inline script: Swagger UI starts from a module
    assets = re.findall(r'(?:href|src)="(/api/docs/swagger-ui/[^"]+)"', html)
    assert len(assets) == 2, assets
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.data) > 100_000, asset
        assert "immutable" in answer.headers["Cache-Control"]
        assert b"https://cdn" not in answer.data
    assert client.get(assets[0].rsplit("/", 2)[0] + "/0.0.1/swagger-ui.css").status_code == 404  # an old version
    assert client.get(assets[0].rsplit("/", 1)[0] + "/index.html").status_code == 404  # only the two files


def test_health_and_readiness(client, caplog):
    with caplog.at_level("INFO", logger="imageservice.access"):
        live = client.get("/healthz", headers={"X-Request-Id": "probe-1"})
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    # Answered in front of Flask, yet in the same envelope as every response.
    assert live.headers["X-Request-Id"] == "probe-1" and live.headers["X-Content-Type-Options"] == "nosniff"
    assert [r.path for r in caplog.records if r.name == "imageservice.access"] == ["/healthz"]
    head = client.head("/healthz")
    assert head.status_code == 200 and head.data == b""
    refused = client.post("/healthz")
    assert refused.status_code == 405 and refused.get_json()["error"]["code"] == "method_not_allowed"
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and set(ready["checks"]) == {"blobs", "catalog", "queue"}


def test_security_headers_everywhere(client, api):
    for path in ("/", "/api/images", "/healthz", "/api/docs", "/nope"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["Referrer-Policy"], path
        csp = headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, path


def test_the_ticket_shows_the_tags_as_stored(api):
    # The page's new card shows these, so the tag rule lives only in the server (core/text.py).
    ticket = api.ticket(content_type="image/jpeg", size=10, tags=" Holiday ,holiday,  Cafe\u0301  Nord ")
    assert ticket["tags"] == ["holiday", "caf\u00e9 nord"]
    assert api.image(ticket["image_id"])["tags"] == ticket["tags"]
