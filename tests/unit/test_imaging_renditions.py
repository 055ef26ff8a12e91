"""Renditions through the imaging code: what core.renditions promises is what convert_image makes,
and nothing embedded in an upload (EXIF, GPS, XMP, ICC, comments) reaches a public rendition."""

from __future__ import annotations

import imagefactory as f
import pytest
from PIL import ImageCms

from imageservice.core import imaging
from imageservice.core import renditions as r

GPS = (48.8584, 2.2945, 35.0)
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.5N" '
       b'exif:GPSLongitude="2,17.67E">secret-xmp</rdf:Description></rdf:RDF></x:xmpmeta>')
MARKERS = (b"Exif\x00", b"Testcam", b"TC-1", b"xmpmeta", b"secret-xmp", b"GPSLatitude", b"secret-comment", b"ICCP")


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = f.jpeg_bytes(800, 600, orientation=6, gps=GPS, xmp=XMP, comment=b"secret-comment", icc_profile=srgb)
    source = f.opened(data)
    assert {"exif", "xmp", "comment", "icc_profile"} <= set(source.info) and source.getexif().get_ifd(0x8825)
    return data


def rendition(data: bytes, width: int, fmt: str) -> imaging.EncodedImage:
    return imaging.convert_image(data, r.rendition_request(width, fmt))


@pytest.mark.parametrize("fmt", r.RENDITION_FORMATS)
def test_no_exif_gps_xmp_icc_or_comment_survives(fmt, camera_jpeg):
    encoded = rendition(camera_jpeg, 384, fmt)
    image = f.opened(encoded.data)
    assert image.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}[fmt]
    assert len(image.getexif()) == 0
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"):
        assert key not in image.info, key
    for marker in MARKERS:
        assert marker not in encoded.data, marker


@pytest.mark.parametrize("fmt", r.RENDITION_FORMATS)
def test_a_rendition_is_upright_and_of_the_promised_size(fmt, camera_jpeg):
    # Stored 800x600 with orientation 6: displayed 600x800, the red quadrant top-left.
    shape = r.Renditions(600, 800, imaging.ImagingLimits().convert_max_edge)
    encoded = rendition(camera_jpeg, 384, fmt)
    assert (encoded.width, encoded.height) == shape.size_at(384) == f.opened(encoded.data).size
    assert (encoded.format, encoded.content_type) == (fmt, f"image/{fmt}")
    assert f.close_to(f.opened(encoded.data).convert("RGB").getpixel((96, 100)), f.RED)


def test_every_width_the_core_allows_is_made_at_the_size_it_promises():
    data = f.jpeg_bytes(1000, 667, exif=False)
    shape = r.Renditions(1000, 667, imaging.ImagingLimits().convert_max_edge)
    for width in shape.widths():
        encoded = rendition(data, width, "png")
        assert (encoded.width, encoded.height) == shape.size_at(width), width


def test_alpha_stays_in_png_webp_and_avif():
    data = f.png_bytes(256, 192, "RGBA")  # bottom-right quadrant fully transparent
    for fmt in ("png", "webp", "avif"):
        image = f.opened(rendition(data, 128, fmt).data)
        assert image.mode == "RGBA", fmt
        assert image.getpixel((120, 90))[3] < 16 and image.getpixel((10, 10))[3] > 240, fmt


def test_avif_is_encoded_at_the_measured_speed(monkeypatch):
    # The speed decides whether a 3840 px AVIF fits the imaging budget (docs/RENDITIONS.md).
    from PIL import Image

    seen = {}
    real_save = Image.Image.save

    def spying_save(self, fp, format=None, **params):
        seen.update(format=format, **params)
        return real_save(self, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", spying_save)
    rendition(f.jpeg_bytes(64, 48, exif=False), 64, "avif")
    assert seen["format"] == "AVIF"
    assert seen["speed"] == imaging.encoding.AVIF_SPEED and seen["quality"] == r.RENDITION_QUALITY["avif"]
