"""Share links through the API and the public side (docs/DESIGN.md "Share links"): every field,
every error, the width ladder, format negotiation, validators and 304, no metadata in a
rendition, no cookie under /s/, revocation, deletion, and the budget of renditions a link may
have made."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from PIL import Image

import imagefactory
from support import ApiClient, assert_error, in_process_clients, make_settings, served_in_mode


LADDER = (64, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840)
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
CURL = "*/*"


@pytest.fixture(params=["local", "aws"])
def service(request, tmp_path):
    _, client, (owner, other) = served_in_mode(request, tmp_path, "alice", "bob", share_links_per_image=3,
                                               rendition_misses_per_minute=6)
    return owner, other, client


@pytest.fixture
def photo(service):
    owner, _, _ = service
    data = imagefactory.jpeg_bytes(1000, 750, gps=(48.8584, 2.2945, 35.0))
    return owner.upload(data, filename="tower.jpg"), data


def _link(api: ApiClient, image_id: str, **body) -> dict:
    response = api.call("POST", f"/api/images/{image_id}/links", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_link_answers_every_field(service, photo):
    owner, _, _ = service
    image_id, _ = photo
    link = _link(owner, image_id, expires_in=3600)
    assert set(link) == {"link_id", "image_id", "url", "srcset", "embed_html", "original", "created_at",
                         "expires_at", "views"}
    assert link["image_id"] == image_id and link["original"] is False and link["views"] == 0
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", link["link_id"]) and image_id not in link["link_id"]
    assert link["url"] == f"http://localhost/s/{link['link_id']}"
    widths = [int(part.split()[1][:-1]) for part in link["srcset"].split(", ")]
    assert widths == [w for w in LADDER if w <= 1000] + [1000]  # the ladder it can fill, and its own
    assert all(part.startswith(link["url"] + "/w/") for part in link["srcset"].split(", "))
    tag = link["embed_html"]
    assert tag.startswith("<img ") and 'width="1000"' in tag and 'height="750"' in tag and 'alt="tower"' in tag
    assert f'srcset="{link["srcset"]}"' in tag and 'sizes="' in tag
    listed = owner.call("GET", f"/api/images/{image_id}/links").get_json()
    assert listed == {"links": [link]}
    assert owner.image(image_id)["shared_until"] == link["expires_at"]  # the gallery's "shared" badge
    [card] = owner.call("GET", "/api/images").get_json()["images"]
    assert card["shared_until"] == link["expires_at"]


@pytest.mark.parametrize("body, where", [
    ({"expires_in": 59}, "expires_in"), ({"expires_in": 2592001}, "expires_in"), ({"expires_in": "soon"}, "expires_in"),
    ({"expires_in": True}, "expires_in"), ({"original": "yes"}, "original"), ({"colour": "red"}, "colour"),
])
def test_a_malformed_link_request_is_a_bad_request(service, photo, body, where):
    owner, _, _ = service
    error = assert_error(owner.call("POST", f"/api/images/{photo[0]}/links", json=body), 400, "invalid_parameter")
    assert where in error["message"]


def test_links_need_a_ready_image_of_ones_own_and_room(service, photo):
    owner, other, _ = service
    image_id, _ = photo
    assert_error(other.call("POST", f"/api/images/{image_id}/links", json={}), 404, "image_not_found")
    assert_error(other.call("GET", f"/api/images/{image_id}/links"), 404, "image_not_found")
    pending = owner.ticket(content_type="image/png", size=100, filename="later.png")["image_id"]
    assert_error(owner.call("POST", f"/api/images/{pending}/links", json={}), 409, "not_ready")
    for _ in range(3):
        _link(owner, image_id)
    assert_error(owner.call("POST", f"/api/images/{image_id}/links", json={}), 409, "link_limit")
    assert_error(owner.call("POST", "/api/images/01J00000000000000000000000/links", json={}), 404, "image_not_found")


def test_the_share_page_is_public_noindex_counted_and_sets_no_cookie(service, photo):
    owner, _, client = service
    link = _link(owner, photo[0])
    for _ in range(2):
        page = client.get(_path(link["url"]), headers={"Cookie": "imageservice_visitor=forged"})
        assert page.status_code == 200 and "Set-Cookie" not in page.headers
    html = page.get_data(as_text=True)
    assert '<meta name="robots" content="noindex">' in html
    assert f'<meta property="og:image" content="{link["url"]}/w/1000">' in html  # narrower than 1200: its own
    assert 'name="twitter:card" content="summary_large_image"' in html
    assert f'srcset="{link["srcset"]}"' in html and "1000 × 750" in html and "tower.jpg" in html
    assert page.headers["Cache-Control"] == "no-store"
    [listed] = owner.call("GET", f"/api/images/{photo[0]}/links").get_json()["links"]
    assert listed["views"] == 2


@pytest.mark.parametrize("accept, forced, expected", [
    (CHROME, None, ("image/avif", "AVIF")), (SAFARI_15, None, ("image/webp", "WEBP")),
    (CURL, None, ("image/jpeg", "JPEG")), (None, None, ("image/jpeg", "JPEG")),
    ("image/avif;q=0,image/webp", None, ("image/webp", "WEBP")), (CHROME, "jpeg", ("image/jpeg", "JPEG")),
    (CURL, "png", ("image/png", "PNG")), (CURL, "webp", ("image/webp", "WEBP")),
])
def test_a_rendition_negotiates_its_format_and_carries_no_metadata(service, photo, accept, forced, expected):
    owner, _, client = service
    link = _link(owner, photo[0])
    url = _path(link["url"]) + "/w/640" + (f"?format={forced}" if forced else "")
    response = client.get(url, headers={"Accept": accept} if accept else {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == expected[0] and response.headers["Vary"] == "Accept"
    assert response.headers["X-Content-Type-Options"] == "nosniff" and "Set-Cookie" not in response.headers
    cache = response.headers["Cache-Control"]
    assert "public" in cache and int(re.search(r"(?<!s-)max-age=(\d+)", cache).group(1)) <= 600 and "s-maxage=" in cache
    assert response.headers["Content-Disposition"].startswith("inline;")
    image = Image.open(BytesIO(response.data))
    assert image.format == expected[1] and image.size == (640, 480)
    assert not image.getexif() and not {"exif", "xmp", "XML:com.adobe.xmp"} & set(image.info)
    assert b"Exif" not in response.data[:4096] and b"GPS" not in response.data


def test_an_image_with_alpha_falls_back_to_png_not_jpeg(service):
    owner, _, client = service
    image_id = owner.upload(imagefactory.png_bytes(400, 300, mode="RGBA"), content_type="image/png", filename="a.png")
    response = client.get(_path(_link(owner, image_id)["url"]) + "/w/384", headers={"Accept": CURL})
    assert response.headers["Content-Type"] == "image/png" and Image.open(BytesIO(response.data)).mode == "RGBA"


def test_a_rendition_validates_and_answers_304(service, photo):
    owner, _, client = service
    url = _path(_link(owner, photo[0])["url"]) + "/w/384"
    first = client.get(url, headers={"Accept": CHROME})
    tag = first.headers["ETag"]
    assert re.fullmatch(r'"[A-Za-z0-9_-]+"', tag)  # strong
    again = client.get(url, headers={"Accept": CHROME, "If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    other_format = client.get(url, headers={"Accept": CURL, "If-None-Match": tag})
    assert other_format.status_code == 200 and other_format.headers["ETag"] != tag


def test_only_ladder_widths_the_image_can_fill_exist(service, photo):
    owner, _, client = service
    base = _path(_link(owner, photo[0])["url"])
    for width in (64, 828, 1000):
        assert client.get(f"{base}/w/{width}").status_code == 200, width
    for width in (100, 1080, 3840, 0, 999):
        assert_error(client.get(f"{base}/w/{width}"), 404)
    assert_error(client.get(f"{base}/w/640?format=tiff"), 400, "invalid_parameter")
    for width in ("abc", "0640", "+640", "640.0", "99999999"):  # one URL per rendition
        assert_error(client.get(f"{base}/w/{width}"), 404)


def test_the_original_is_public_only_when_the_link_says_so(service, photo):
    owner, _, client = service
    image_id, data = photo
    plain = _link(owner, image_id)
    assert_error(client.get(_path(plain["url"]) + "/original"), 404, "link_not_found")
    shared = _link(owner, image_id, original=True)
    original = client.get(_path(shared["url"]) + "/original")
    assert original.status_code == 200 and original.data == data
    assert original.headers["Content-Disposition"].startswith("attachment;")


def test_revoked_unknown_and_deleted_links_look_the_same(service, photo):
    owner, other, client = service
    image_id, _ = photo
    link = _link(owner, image_id)
    base = _path(link["url"])
    assert client.get(base + "/w/64").status_code == 200
    assert_error(other.call("DELETE", f"/api/links/{link['link_id']}"), 404, "link_not_found")
    assert owner.call("DELETE", f"/api/links/{link['link_id']}").status_code == 204
    assert owner.image(image_id)["shared_until"] is None
    assert_error(owner.call("DELETE", f"/api/links/{link['link_id']}"), 404, "link_not_found")
    unknown = "/s/" + "A" * 24
    for path in (base, unknown):
        page = client.get(path)
        assert page.status_code == 404 and page.content_type.startswith("text/html")
    for path in (base + "/w/64", unknown + "/w/64", base + "/original"):
        assert assert_error(client.get(path), 404)["code"] == "link_not_found"
    second = _link(owner, image_id)
    assert owner.call("DELETE", f"/api/images/{image_id}").status_code == 204
    assert_error(client.get(_path(second["url"]) + "/w/64"), 404, "link_not_found")


def test_renditions_not_made_yet_are_rate_limited_per_link_and_made_ones_are_not(service, photo):
    owner, _, client = service
    base = _path(_link(owner, photo[0])["url"])
    made = [f"{base}/w/{w}?format={fmt}" for w in (64, 128, 256) for fmt in ("jpeg", "webp")]
    for url in made:  # six misses: the budget
        assert client.get(url).status_code == 200
    refused = client.get(f"{base}/w/384?format=jpeg")
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    for url in made * 3:  # hits cost nothing
        assert client.get(url).status_code == 200


class RecordingEdgeCache:
    def __init__(self) -> None:
        self.invalidated: list[str] = []

    def invalidate_link(self, link_id: str) -> None:
        self.invalidated.append(link_id)


def test_revoking_or_deleting_tells_the_cdn_which_links_ended(tmp_path):
    components, _, (owner,) = in_process_clients(make_settings(tmp_path), "alice")
    edge = components.service.edge_cache = RecordingEdgeCache()
    shared = owner.upload(imagefactory.jpeg_bytes(300, 200), filename="a.jpg")
    plain = owner.upload(imagefactory.jpeg_bytes(300, 200), filename="b.jpg")
    first, second = _link(owner, shared), _link(owner, shared)
    assert owner.call("DELETE", f"/api/links/{first['link_id']}").status_code == 204
    assert edge.invalidated == [first["link_id"]]
    assert owner.call("DELETE", f"/api/images/{plain}").status_code == 204  # never shared: nothing to drop
    assert owner.call("DELETE", f"/api/images/{shared}").status_code == 204
    assert edge.invalidated == [first["link_id"], second["link_id"]]
