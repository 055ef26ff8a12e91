"""Every limit (docs/DESIGN.md "Limits") is a named setting, and each has a test that crosses it."""

from datetime import timedelta
from io import BytesIO

import pytest
from PIL import Image

import imagefactory
from support import ApiClient, assert_error, make_settings
from imageservice.bootstrap import build_components
from imageservice.core.timeutil import utcnow
from imageservice.web import create_app
from imageservice.entrypoints.worker import Worker


def service_with(tmp_path, **limits) -> ApiClient:
    components = build_components(make_settings(tmp_path, **limits))
    client = create_app(components=components).test_client()
    api = ApiClient(client, components.service.create_token("alice"), Worker(components))
    api.components = components
    return api


def test_max_upload_bytes_declared_and_actual(tmp_path):
    api = service_with(tmp_path, max_upload_bytes=5000)
    assert api.call("POST", "/api/images/upload", json={"size": 5000}).status_code == 201
    assert_error(api.call("POST", "/api/images/upload", json={"size": 5001}), 413, "too_large")
    # An object larger than the limit that reached storage anyway (a drop) is rejected, not read.
    api.components.blobs.put("originals/alice/big.png", b"\x89PNG" + b"\0" * 6000, "image/png")
    api.components.pipeline.process_key("originals/alice/big.png")
    records = api.call("GET", "/api/images").get_json()["images"]
    assert [r["error"]["code"] for r in records if r["status"] == "rejected"] == ["too_large"]


def test_max_pixels(tmp_path):
    api = service_with(tmp_path, max_pixels=100 * 100)
    assert api.image(api.upload(imagefactory.png_bytes(100, 100), "image/png"))["status"] == "ready"
    rejected = api.image(api.upload(imagefactory.png_bytes(101, 100), "image/png"))
    assert rejected["status"] == "rejected" and rejected["error"]["code"] == "too_many_pixels"


def test_declared_dimension_bomb_is_refused_before_decoding(api):
    record = api.image(api.upload(imagefactory.png_header_bomb(100_000, 100_000), "image/png"))
    assert record["error"]["code"] == "too_many_pixels"


def test_max_frames(tmp_path):
    api = service_with(tmp_path, max_frames=3)
    assert api.image(api.upload(imagefactory.animated_gif_bytes(frames=3), "image/gif"))["status"] == "ready"
    rejected = api.image(api.upload(imagefactory.animated_gif_bytes(frames=4), "image/gif"))
    assert rejected["error"]["code"] == "too_many_frames"


def test_max_animation_pixels(tmp_path):
    api = service_with(tmp_path, max_animation_pixels=3 * 64 * 48)
    ok = api.image(api.upload(imagefactory.animated_gif_bytes(frames=3), "image/gif"))
    assert ok["status"] == "ready" and ok["animated"] is True and ok["frames"] == 3
    rejected = api.image(api.upload(imagefactory.animated_gif_bytes(frames=4), "image/gif"))
    assert rejected["error"]["code"] in ("too_many_frames", "too_many_pixels")


def test_thumb_and_preview_edges(tmp_path):
    api = service_with(tmp_path, thumb_edge=64, preview_edge=200)
    record = api.image(api.upload(imagefactory.jpeg_bytes(1000, 500)))
    assert record["derivatives"]["thumb"]["width"] == 64 and record["derivatives"]["thumb"]["height"] == 32
    assert record["derivatives"]["preview"]["width"] == 200
    small = api.image(api.upload(imagefactory.jpeg_bytes(50, 40)))
    assert (small["derivatives"]["thumb"]["width"], small["derivatives"]["preview"]["width"]) == (50, 50)


def test_convert_max_edge(tmp_path):
    api = service_with(tmp_path, convert_max_edge=500)
    image_id = api.upload(imagefactory.jpeg_bytes(800, 600))
    ok = api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png", "width": 500})
    assert ok.status_code == 200 and ok.get_json()["width"] == 500
    assert_error(api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png", "width": 501}), 422)
    whole = api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png"}).get_json()
    assert max(whole["width"], whole["height"]) <= 500  # an unsized conversion is bounded too


def test_convert_pixel_limit(tmp_path):
    api = service_with(tmp_path, max_pixels=300 * 300)
    image_id = api.upload(imagefactory.jpeg_bytes(300, 300))
    assert_error(api.call("POST", f"/api/images/{image_id}/convert",
                          json={"format": "png", "width": 301, "height": 300, "fit": "fill"}), 422)


def test_quota_images(tmp_path):
    api = service_with(tmp_path, quota_images=2)
    for _ in range(2):
        api.ticket(content_type="image/png", size=10)
    assert_error(api.call("POST", "/api/images/upload", json={"size": 10}), 409, "quota_exceeded")


def test_quota_bytes(tmp_path):
    api = service_with(tmp_path, quota_bytes=10_000)
    api.ticket(size=6000)
    assert_error(api.call("POST", "/api/images/upload", json={"size": 5000}), 409, "quota_exceeded")
    assert api.call("POST", "/api/images/upload", json={"size": 4000}).status_code == 201


def test_uploads_per_minute(tmp_path):
    api = service_with(tmp_path, uploads_per_minute=3)
    for _ in range(3):
        api.ticket(size=10)
    assert_error(api.call("POST", "/api/images/upload", json={"size": 10}), 429, "rate_limited")


def test_page_size_max(tmp_path):
    api = service_with(tmp_path, page_size_max=5)
    assert api.call("GET", "/api/images?limit=5").status_code == 200
    assert_error(api.call("GET", "/api/images?limit=6"), 400, "invalid_parameter")


@pytest.mark.parametrize("setting", ["upload_url_ttl", "download_url_ttl"])
def test_url_lifetimes(tmp_path, setting):
    api = service_with(tmp_path, **{setting: 120})
    data = imagefactory.png_bytes(20, 20)
    ticket = api.ticket(content_type="image/png", size=len(data))
    assert ticket["expires_at"]
    if setting == "upload_url_ttl":
        expires = ticket["expires_at"]
    else:
        api.put(ticket, data)
        api.process()
        expires = api.call("GET", f"/api/images/{ticket['image_id']}/download").get_json()["expires_at"]
    from imageservice.core.timeutil import from_iso

    remaining = from_iso(expires) - utcnow()
    assert timedelta(seconds=110) < remaining <= timedelta(seconds=121)


def test_expired_download_url_is_refused(tmp_path):
    api = service_with(tmp_path, download_url_ttl=-1)
    image_id = api.upload(imagefactory.png_bytes(20, 20), "image/png")
    url = api.call("GET", f"/api/images/{image_id}/download").get_json()["download_url"]
    assert_error(api.fetch(url), 403, "url_expired")


def test_derivative_quality_setting(tmp_path):
    sizes = []
    for quality in (20, 95):
        api = service_with(tmp_path / str(quality), derivative_quality=quality)
        record = api.image(api.upload(imagefactory.jpeg_bytes(1200, 900)))
        sizes.append(record["derivatives"]["preview"]["bytes"])
        thumb = api.fetch(api.call("GET", f"/api/images/{record['image_id']}/download?variant=thumb")
                          .get_json()["download_url"])
        assert Image.open(BytesIO(thumb.data)).format == "WEBP"
    assert sizes[0] < sizes[1]
