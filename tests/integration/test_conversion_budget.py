"""Conversions within budgets, and watermarks, through the API.

The attack of the issue: a 16x16 PNG converted to BMP 6000x6000 ``fill`` answered a 108 MB file,
and quality 1, 2, 3 wrote a new one each time, while /api/me still said 82 bytes.
"""

import time
from pathlib import Path

import pytest

import imagefactory
from support import ApiClient, assert_error, make_settings
from imageservice.bootstrap import build_components
from imageservice.web import create_app
from imageservice.entrypoints.worker import Worker


def service_with(tmp_path: Path, **settings) -> ApiClient:
    components = build_components(make_settings(tmp_path, **settings))
    api = ApiClient(create_app(components=components).test_client(), components.service.create_token("alice"),
                    Worker(components))
    api.components = components
    return api


def conversion_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "data").rglob("*") if p.is_file() and "conversions" in p.parts
            and p.suffix != ".json"]


def used_bytes(api) -> int:
    return api.call("GET", "/api/me").get_json()["usage"]["bytes"]


def convert(api, image_id, **body):
    return api.call("POST", f"/api/images/{image_id}/convert", json=body)


def test_the_enlargement_attack_makes_no_huge_file(api, tmp_path):
    image_id = api.upload(imagefactory.png_bytes(16, 16), "image/png", "tiny.png")
    response = convert(api, image_id, format="bmp", width=6000, height=6000, fit="fill")
    assert response.status_code == 200, response.get_json()
    result = response.get_json()  # never larger than the source unless asked
    assert (result["width"], result["height"]) == (16, 16) and result["bytes"] < 4096
    assert all(p.stat().st_size < 4096 for p in conversion_files(tmp_path))
    assert used_bytes(api) < 4096  # what /api/me reports is what is stored
    # Asked for explicitly, at most twice the source's long edge.
    enlarged = convert(api, image_id, format="bmp", width=6000, height=6000, fit="fill", enlarge=True).get_json()
    assert (enlarged["width"], enlarged["height"]) == (32, 32)


def test_quality_variants_of_a_lossless_format_share_one_file(api, tmp_path):
    image_id = api.upload(imagefactory.png_bytes(40, 30), "image/png", "a.png")
    urls = set()
    for quality in (1, 2, 3, None):
        body = {"format": "bmp", "width": 20} | ({"quality": quality} if quality else {})
        response = convert(api, image_id, **body)
        assert response.status_code == 200, response.get_json()
        urls.add(response.get_json()["bytes"])
    assert len(conversion_files(tmp_path)) == 1
    # Lossy formats keep quality in the key: two qualities, two files.
    for quality in (10, 90):
        assert convert(api, image_id, format="jpeg", quality=quality).status_code == 200
    assert len(conversion_files(tmp_path)) == 3


def test_outputs_count_in_usage_and_are_released_with_the_image(api):
    image_id = api.upload(imagefactory.png_bytes(64, 48), "image/png", "a.png")
    before = used_bytes(api)
    made = convert(api, image_id, format="bmp").get_json()
    assert used_bytes(api) == before + made["bytes"]
    assert convert(api, image_id, format="bmp").get_json()["bytes"] == made["bytes"]  # cached: not counted again
    assert used_bytes(api) == before + made["bytes"]
    assert api.call("DELETE", f"/api/images/{image_id}").status_code == 204
    assert used_bytes(api) == 0


def test_outputs_are_refused_past_the_byte_quota(tmp_path):
    data = imagefactory.png_bytes(64, 64)
    api = service_with(tmp_path, quota_bytes=len(data) + 5000)
    image_id = api.upload(data, "image/png", "a.png")
    assert_error(convert(api, image_id, format="bmp"), 409, "quota_exceeded")  # 64*64*3 > 5000
    assert conversion_files(tmp_path) == []
    assert used_bytes(api) == len(data)
    assert convert(api, image_id, format="png", width=8).status_code == 200  # a small one still fits


def test_each_output_is_capped_at_max_upload_bytes(tmp_path):
    api = service_with(tmp_path, max_upload_bytes=5000)
    image_id = api.upload(imagefactory.png_bytes(64, 64), "image/png", "a.png")
    assert_error(convert(api, image_id, format="bmp"), 422, "output_too_large")
    assert conversion_files(tmp_path) == []


def test_conversions_have_their_own_rate_limit(tmp_path):
    api = service_with(tmp_path, conversions_per_minute=2)
    image_id = api.upload(imagefactory.png_bytes(32, 32), "image/png", "a.png")
    frozen = time.time() // 60 * 60 + 1  # one fixed minute window for the whole test
    api.components.catalog.clock = lambda: frozen
    for width in (10, 11):
        assert convert(api, image_id, format="png", width=width).status_code == 200
    refused = convert(api, image_id, format="png", width=12)
    assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert convert(api, image_id, format="png", width=10).status_code == 200  # a cached answer is free
    assert api.call("POST", "/api/images/upload", json={"size": 10}).status_code == 201  # uploads unaffected


# -- watermarks ----------------------------------------------------------------------------------


class RecordingRunner:
    """The real runner, remembering what each conversion was handed."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def process(self, *args, **kwargs):
        return self.inner.process(*args, **kwargs)

    def convert(self, data, request, limits, **kwargs):
        self.calls.append((request, kwargs))
        return self.inner.convert(data, request, limits, **kwargs)


@pytest.mark.parametrize("watermark", [
    "hi", {}, {"text": "a", "image_id": "01J00000000000000000000000"}, {"text": "x" * 101},
    {"text": "a", "position": "middle"}, {"text": "a", "opacity": 0.01}, {"text": "a", "opacity": 2},
    {"text": "a", "scale": 0}, {"text": "a", "scale": 1.5}, {"text": "a", "font": "serif"},
])
def test_bad_watermarks_answer_400(api, watermark):
    image_id = api.upload(imagefactory.png_bytes(32, 32), "image/png", "a.png")
    assert_error(convert(api, image_id, format="png", watermark=watermark), 400, "invalid_parameter")


def test_a_logo_must_be_a_ready_image_of_the_same_owner(client, components, worker, api):
    image_id = api.upload(imagefactory.png_bytes(64, 64), "image/png", "a.png")
    bob = ApiClient(client, components.service.create_token("bob"), worker)
    bobs_logo = bob.upload(imagefactory.png_bytes(16, 16), "image/png", "logo.png")
    for logo in ("01J00000000000000000000000", "not-an-id", bobs_logo):
        assert_error(convert(api, image_id, format="png", watermark={"image_id": logo}), 404, "image_not_found")
    pending = api.ticket(content_type="image/png", size=10)["image_id"]
    assert_error(convert(api, image_id, format="png", watermark={"image_id": pending}), 409, "not_ready")


def test_the_logos_original_bytes_reach_the_imaging_runner(components, api):
    runner = components.service.imaging = RecordingRunner(components.service.imaging)
    logo_bytes = imagefactory.png_bytes(16, 16)
    image_id = api.upload(imagefactory.png_bytes(64, 64), "image/png", "a.png")
    logo_id = api.upload(logo_bytes, "image/png", "logo.png")
    mark = {"image_id": logo_id, "position": "top-left", "opacity": 0.8, "scale": 0.25}
    assert convert(api, image_id, format="png", watermark=mark).status_code == 200
    request, kwargs = runner.calls[-1]
    assert kwargs["logo"] == logo_bytes
    assert (request.watermark.image_id, request.watermark.position, request.watermark.opacity) == (logo_id, "top-left", 0.8)
    assert kwargs["max_output_bytes"] == components.settings.max_upload_bytes
    # The watermark is part of the cache key: another mark is another output; the same one is cached.
    assert convert(api, image_id, format="png", watermark={"text": "© alice"}).status_code == 200
    assert runner.calls[-1][0].watermark.text == "© alice" and runner.calls[-1][1]["logo"] is None
    calls = len(runner.calls)
    assert convert(api, image_id, format="png", watermark={"text": "© alice"}).status_code == 200
    assert len(runner.calls) == calls
