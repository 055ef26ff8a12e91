"""core.renditions: the width ladder, Accept negotiation, srcset/sizes/embed HTML, caching headers.

The Accept strings of real browsers are in test_cloudfront_function.py, which holds this module
and the CloudFront Function to the same answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from imageservice.core import renditions as r
from imageservice.core.errors import BadRequest
from imageservice.core.timeutil import to_iso

PAGE = "https://img.example/s/AbC-123_xyz"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def shape(width: int, height: int, max_edge: int = 8192) -> r.Renditions:
    return r.Renditions(width, height, max_edge)


# --- widths ------------------------------------------------------------------------------------


def test_a_12_megapixel_photo_serves_the_whole_ladder_and_its_own_width():
    assert shape(4000, 3000).widths() == (*r.WIDTH_LADDER, 4000)


def test_only_ladder_widths_the_image_can_fill_plus_its_own():
    assert shape(1000, 750).widths() == (64, 128, 256, 384, 640, 750, 828, 1000)
    assert shape(1080, 720).widths() == (64, 128, 256, 384, 640, 750, 828, 1080)  # its own is on the ladder
    assert shape(40, 30).widths() == (40,)


@pytest.mark.parametrize("width, allowed", [
    (640, True), (3840, True), (4000, True),  # a ladder width, the largest, its own
    (641, False), (4096, False), (8000, False), (0, False), (-64, False), (1, False),
])
def test_any_other_width_is_no_rendition(width, allowed):
    assert shape(4000, 3000).allows(width) is allowed


def test_widths_whose_output_would_pass_the_longest_side_are_left_out():
    # A panorama's own width, and a strip whose height at its own width, pass convert_max_edge:
    # the conversion would refuse them, so they are no renditions.
    assert shape(12000, 2000).widths() == r.WIDTH_LADDER
    assert shape(100, 9000).widths() == (64,)  # 64 wide is 5760 tall; 100 wide would be 9000
    assert shape(1, 10000).widths() == ()
    assert shape(1, 10000).full_width() is None


def test_size_at_keeps_the_aspect_ratio_as_the_conversion_rounds_it():
    assert shape(4000, 3000).size_at(1080) == (1080, 810)
    assert shape(1000, 667).size_at(64) == (64, 43)
    assert shape(5000, 10).size_at(64) == (64, 1)  # never 0 tall


def test_full_width_and_closest_width():
    photo = shape(4000, 3000)
    assert photo.full_width() == 4000
    assert photo.closest_width(r.OG_IMAGE_WIDTH) == 1200
    assert photo.closest_width(1100) == 1200
    assert shape(1000, 750).closest_width(r.OG_IMAGE_WIDTH) == 1000
    assert shape(1, 10000).closest_width(r.OG_IMAGE_WIDTH) is None


@pytest.mark.parametrize("text, width", [
    ("640", 640), ("3840", 3840), ("99999", 99999),
    ("0640", None), ("+640", None), ("-640", None), ("640 ", None), (" 640", None), ("6.4e2", None),
    ("", None), ("0", None), ("123456", None), ("١٢٣", None),  # Arabic-Indic digits: int() takes them
])
def test_a_width_in_a_url_has_one_spelling(text, width):
    assert r.parse_width(text) == width


# --- Accept -----------------------------------------------------------------------------------


def test_parse_accept_reads_q_values_and_ignores_other_parameters():
    pairs = r.parse_accept(" Image/AVIF;codecs=av01 ; Q=0.5 ,image/webp,*/*;q=0.8,, ")
    assert pairs == [("image/avif", 0.5), ("image/webp", 1.0), ("*/*", 0.8)]


@pytest.mark.parametrize("q", ["abc", "1.5", "2", "-1", "0.1234", "", ".5", "1.001"])
def test_an_element_with_a_malformed_q_accepts_nothing(q):
    assert r.parse_accept(f"image/avif;q={q},image/webp") == [("image/webp", 1.0)]


@pytest.mark.parametrize("q", ["0", "0.", "0.0", "0.000"])
def test_q_zero_refuses(q):
    assert r.accept_class(f"image/avif;q={q},image/webp") == "webp"


def test_a_type_named_twice_is_refused_if_refused_once():
    assert r.accept_class("image/avif,image/avif;q=0") == "other"


@pytest.mark.parametrize("header", ["image/*", "*/*", "image/*,*/*;q=0.8", "image/avif-sequence", "image/avifx"])
def test_wildcards_and_other_types_do_not_count(header):
    assert r.accept_class(header) == "other"


def test_the_server_prefers_avif_whatever_the_client_q_values():
    assert r.accept_class("image/webp;q=1,image/avif;q=0.1") == "avif"


# --- format ----------------------------------------------------------------------------------


@pytest.mark.parametrize("accept, alpha, fmt", [
    ("image/avif,image/webp,*/*", False, "avif"),
    ("image/avif,image/webp,*/*", True, "avif"),
    ("image/webp,*/*", True, "webp"),
    ("*/*", False, "jpeg"),
    ("*/*", True, "png"),
    (None, False, "jpeg"),
])
def test_negotiated_format(accept, alpha, fmt):
    assert r.negotiate_format(accept, alpha=alpha) == fmt


@pytest.mark.parametrize("forced", r.RENDITION_FORMATS)
def test_a_forced_format_wins_over_accept(forced):
    assert r.negotiate_format("image/avif,image/webp", alpha=True, forced=forced) == forced


@pytest.mark.parametrize("forced", ["gif", "JPEG", "jpg", "tiff", "", "webp "])
def test_any_other_forced_format_is_refused(forced):
    with pytest.raises(BadRequest) as caught:
        r.negotiate_format("*/*", alpha=False, forced=forced)
    assert caught.value.code == "invalid_parameter"


@pytest.mark.parametrize("mode, alpha", [("RGBA", True), ("LA", True), ("PA", True), ("RGB", False),
                                         ("P", False), ("L", False), ("CMYK", False), (None, False)])
def test_has_alpha(mode, alpha):
    assert r.has_alpha(mode) is alpha


@pytest.mark.parametrize("fmt", r.RENDITION_FORMATS)
def test_a_rendition_is_a_width_only_conversion_at_the_format_quality(fmt):
    request = r.rendition_request(640, fmt)
    assert (request.format, request.width, request.height, request.enlarge) == (fmt, 640, None, False)
    assert request.quality == r.RENDITION_QUALITY[fmt]
    assert request.watermark is None


# --- markup ------------------------------------------------------------------------------------


def test_srcset_lists_absolute_urls_with_w_descriptors():
    assert r.srcset(PAGE, shape(700, 500)) == ", ".join(
        f"{PAGE}/w/{w} {w}w" for w in (64, 128, 256, 384, 640, 700))
    assert r.srcset(PAGE + "/", shape(40, 30)) == f"{PAGE}/w/40 40w"


def test_sizes_is_the_viewport_below_the_layout_width():
    assert r.sizes(shape(4000, 3000)) == "(max-width: 1200px) 100vw, 1200px"
    assert r.sizes(shape(500, 400)) == "(max-width: 500px) 100vw, 500px"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parsed(markup: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(markup)
    return parser.tags


def test_embed_html_is_one_img_with_every_attribute():
    markup = r.embed_html(PAGE, shape(4000, 3000), "Sunset")
    assert _parsed(markup) == [("img", {
        "src": f"{PAGE}/w/1200", "srcset": r.srcset(PAGE, shape(4000, 3000)),
        "sizes": "(max-width: 1200px) 100vw, 1200px", "width": "1200", "height": "900", "alt": "Sunset",
    })]


def test_embed_html_escapes_everything():
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2) a=\'&'
    markup = r.embed_html(PAGE + '"&<', shape(300, 200), hostile)
    assert "<script" not in markup and markup.count("<") == 1 and markup.count('"') == 12
    (tag, attrs), = _parsed(markup)
    assert attrs["alt"] == hostile
    assert attrs["src"] == PAGE + '"&</w/300'


def test_embed_html_of_an_image_without_renditions_is_empty():
    assert r.embed_html(PAGE, shape(1, 10000), "strip") == ""


# --- answers ---------------------------------------------------------------------------------


def test_cache_control_keeps_browsers_briefly_and_the_cdn_long():
    week = to_iso(NOW + timedelta(days=7))
    assert r.cache_control(week, NOW) == f"public, max-age=600, s-maxage={7 * 24 * 3600}"


def test_cache_control_never_outlives_the_link():
    assert r.cache_control(to_iso(NOW + timedelta(seconds=90)), NOW) == "public, max-age=90, s-maxage=90"
    assert r.cache_control(to_iso(NOW - timedelta(seconds=5)), NOW) == "public, max-age=0, s-maxage=0"


def test_cdn_max_age_is_capped():
    far = to_iso(NOW + timedelta(days=800))
    assert r.cache_control(far, NOW) == f"public, max-age={r.BROWSER_MAX_AGE}, s-maxage={r.CDN_MAX_AGE}"
    assert r.BROWSER_MAX_AGE <= 600


def test_the_etag_is_strong_and_changes_with_each_part():
    etag = r.rendition_etag("01HX", 640, "webp", "abc")
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert etag == r.rendition_etag("01HX", 640, "webp", "abc")
    others = {r.rendition_etag(*parts) for parts in [("01HY", 640, "webp", "abc"), ("01HX", 750, "webp", "abc"),
                                                     ("01HX", 640, "avif", "abc"), ("01HX", 640, "webp", "abd")]}
    assert len(others) == 4 and etag not in others


def test_rendition_headers():
    headers = r.rendition_headers(fmt="jpeg", etag='"x"', filename='../ho"li\x00day.HEIC', width=640,
                                  expires_at=to_iso(NOW + timedelta(hours=1)), now=NOW)
    assert headers == {
        "Content-Type": "image/jpeg",
        "Vary": "Accept",
        "ETag": '"x"',
        "Cache-Control": "public, max-age=600, s-maxage=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline; filename=\"ho_liday-640.jpg\"; filename*=UTF-8''ho%27liday-640.jpg",
    }
