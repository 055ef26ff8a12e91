"""imaging.process_image: validation, metadata, orientation, colour, derivatives."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import resource
import subprocess
import sys
import time
import tracemalloc

import imagefactory as f
import pytest
from PIL import Image, ImageCms

from imageservice.core import imaging
from imageservice.core.errors import ImageRejected

PREVIEW = imaging.DerivativeSpec("preview", 1440)
THUMB = imaging.DerivativeSpec("thumb", 256)
SPECS = [PREVIEW, THUMB]


def process(data: bytes, specs=SPECS, limits: imaging.ImagingLimits = imaging.ImagingLimits()):
    return imaging.process_image(data, specs, limits)


def opened(encoded: imaging.EncodedImage) -> Image.Image:
    return f.opened(encoded.data)


def close_to(pixel, colour, tolerance=40) -> bool:
    return f.close_to(pixel, colour, tolerance)


def marker_colours(image: Image.Image) -> tuple:
    """Colours at the centres of the top-left and top-right quadrants and of the bottom half."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    return rgb.getpixel((w // 4, h // 4)), rgb.getpixel((3 * w // 4, h // 4)), rgb.getpixel((w // 2, 3 * h // 4))


def assert_upright_pattern(image: Image.Image) -> None:
    top_left, top_right, bottom = marker_colours(image)
    assert close_to(top_left, f.RED), top_left
    assert close_to(top_right, f.GREEN), top_right
    assert close_to(bottom, f.BLUE), bottom


def rejection(data: bytes, limits: imaging.ImagingLimits = imaging.ImagingLimits()) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        process(data, limits=limits)
    return caught.value


@pytest.fixture(scope="module")
def photo_12mp() -> bytes:
    return f.large_jpeg_bytes(12)


# --- the result -------------------------------------------------------------------------------


def test_result_shape_and_derivative_types():
    result = process(f.jpeg_bytes(640, 480))
    assert set(result.derivatives) == {"preview", "thumb"}
    for encoded in result.derivatives.values():
        assert (encoded.format, encoded.content_type, encoded.extension) == ("webp", "image/webp", "webp")
        image = opened(encoded)
        assert image.format == "WEBP"
        assert image.size == (encoded.width, encoded.height)
    info = result.info
    assert (info.format, info.content_type, info.mode) == ("JPEG", "image/jpeg", "RGB")
    assert (info.width, info.height, info.frames, info.animated) == (640, 480, 1, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.width = 1  # type: ignore[misc]


def test_derivative_sizes_follow_the_long_edge(photo_12mp):
    result = process(photo_12mp)
    assert (result.info.width, result.info.height) == (4000, 3000)
    assert (result.derivatives["preview"].width, result.derivatives["preview"].height) == (1440, 1080)
    assert (result.derivatives["thumb"].width, result.derivatives["thumb"].height) == (256, 192)


def test_portrait_derivatives():
    result = process(f.jpeg_bytes(900, 1800))
    assert (result.derivatives["preview"].width, result.derivatives["preview"].height) == (720, 1440)
    assert (result.derivatives["thumb"].width, result.derivatives["thumb"].height) == (128, 256)


def test_small_images_are_never_upscaled():
    result = process(f.jpeg_bytes(100, 80))
    for encoded in result.derivatives.values():
        assert (encoded.width, encoded.height) == (100, 80)
        assert opened(encoded).size == (100, 80)


def test_derivatives_keyed_by_the_given_names_in_any_order():
    result = process(f.jpeg_bytes(600, 400), [imaging.DerivativeSpec("small", 50), imaging.DerivativeSpec("mid", 300)])
    assert list(result.derivatives) == ["small", "mid"]
    assert result.derivatives["small"].width == 50
    assert result.derivatives["mid"].width == 300


def test_no_derivatives_still_gives_metadata():
    result = process(f.jpeg_bytes(64, 48), [])
    assert result.derivatives == {}
    assert result.info.width == 64 and result.info.blurhash


def test_quality_is_the_spec_quality():
    data = f.large_jpeg_bytes(0.5)
    low = process(data, [imaging.DerivativeSpec("x", 512, quality=20)]).derivatives["x"]
    high = process(data, [imaging.DerivativeSpec("x", 512, quality=95)]).derivatives["x"]
    assert len(low.data) < len(high.data)


def test_invalid_spec_is_a_programming_error():
    with pytest.raises(ValueError):
        imaging.DerivativeSpec("x", 0)
    with pytest.raises(ValueError):
        imaging.DerivativeSpec("x", 10, quality=101)


# --- decode once, at scale, and cascade -------------------------------------------------------


def test_jpeg_is_decoded_once_with_dct_scaling(monkeypatch, photo_12mp):
    decoded_sizes = []
    real = imaging.pixels.decode_scaled

    def spy(image, needed):
        result = real(image, needed)
        decoded_sizes.append(result.size)
        return result

    monkeypatch.setattr(imaging.pixels, "decode_scaled", spy)
    process(photo_12mp)
    # 4000x3000 -> 1440 preview: libjpeg's 1/2 scale (2000x1500) is the smallest that still covers it.
    assert decoded_sizes == [(2000, 1500)]


def test_draft_goes_to_one_eighth_when_that_still_covers_the_preview():
    data = f.jpeg_bytes(6000, 4000, exif=False)
    sizes = []
    real = imaging.pixels.decode_scaled
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imaging.pixels, "decode_scaled", lambda image, needed: sizes.append(real(image, needed).size) or real(image, needed))
        process(data, [THUMB])
    assert sizes[0] == (750, 500)


def test_thumb_is_made_from_the_preview(monkeypatch, photo_12mp):
    calls = []
    real = imaging.pixels.resize

    def spy(image, size, box=None, **options):
        calls.append((image.size, size))
        return real(image, size, box, **options)

    monkeypatch.setattr(imaging.pixels, "resize", spy)
    process(photo_12mp)
    derivative_calls = [call for call in calls if call[1] in ((1440, 1080), (256, 192))]
    assert derivative_calls == [((2000, 1500), (1440, 1080)), ((1440, 1080), (256, 192))]


def test_non_jpeg_large_input_is_reduced_before_resampling(monkeypatch):
    data = f.png_bytes(3000, 2000)
    sizes = []
    real = imaging.pixels.decode_scaled
    monkeypatch.setattr(imaging.pixels, "decode_scaled", lambda image, needed: sizes.append(real(image, needed).size) or real(image, needed))
    result = process(data, [THUMB])
    assert sizes[0][0] < 3000 and sizes[0][0] >= 2 * 256
    assert result.derivatives["thumb"].width == 256


# --- orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation):
    result = process(f.jpeg_bytes(240, 160, orientation=orientation))
    displayed = (160, 240) if orientation >= 5 else (240, 160)
    assert (result.info.width, result.info.height) == displayed
    assert result.info.exif["Orientation"] == orientation
    thumb = opened(result.derivatives["thumb"])
    assert thumb.size == displayed
    assert_upright_pattern(thumb)
    assert_upright_pattern(opened(result.derivatives["preview"]))


def test_orientation_with_draft_reports_full_size():
    result = process(f.jpeg_bytes(4000, 3000, orientation=6, exif=False), [THUMB])
    assert (result.info.width, result.info.height) == (3000, 4000)
    thumb = opened(result.derivatives["thumb"])
    assert thumb.size == (192, 256)
    assert_upright_pattern(thumb)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_webp_orientation(orientation):
    result = process(f.webp_bytes(80, 60, orientation=orientation))
    displayed = (60, 80) if orientation >= 5 else (80, 60)
    assert (result.info.width, result.info.height) == displayed
    assert_upright_pattern(opened(result.derivatives["thumb"]))


@pytest.mark.parametrize("orientation", [3, 6])
def test_avif_orientation_transforms(orientation):
    result = process(f.avif_bytes(80, 60, orientation=orientation))
    displayed = (60, 80) if orientation >= 5 else (80, 60)
    assert (result.info.width, result.info.height) == displayed
    assert_upright_pattern(opened(result.derivatives["thumb"]))


def test_invalid_orientation_values_count_as_upright():
    for value in (0, 9, 65535):
        exif = f.make_exif(camera=False)
        exif[0x0112] = value
        image = f.pattern(80, 60)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", exif=exif.tobytes())
        result = process(buffer.getvalue())
        assert (result.info.width, result.info.height) == (80, 60)
        assert_upright_pattern(opened(result.derivatives["thumb"]))


# --- EXIF and GPS -----------------------------------------------------------------------------


def test_exif_values_are_json_native():
    info = process(f.jpeg_bytes(exif=True)).info
    assert json.loads(json.dumps(info.exif, allow_nan=False)) == info.exif
    exif = info.exif
    assert exif["Make"] == "Testcam"
    assert exif["Model"] == "TC-1 Mark II"
    assert exif["LensModel"] == "TC 24-70mm f/2.8"
    assert exif["DateTimeOriginal"] == "2024:05:17 10:30:00"
    assert exif["ExposureTime"] == pytest.approx(1 / 250)
    assert exif["FNumber"] == pytest.approx(2.8)
    assert exif["ISOSpeedRatings"] == 200
    assert exif["FocalLength"] == 50 and isinstance(exif["FocalLength"], int)
    assert "GPSInfo" not in exif and "ExifOffset" not in exif


def test_no_exif_gives_empty_dict_and_no_gps():
    info = process(f.jpeg_bytes(exif=False)).info
    assert info.exif == {}
    assert info.gps is None


def test_exif_text_is_cleaned_and_binary_dropped():
    exif = f.make_exif(camera=False)
    exif[0x010F] = "Pentax   "  # Make padded with spaces
    exif[0x0110] = "ION230\x00garbage"  # Model with an embedded NUL
    sub = exif.get_ifd(0x8769)
    sub[0x927C] = b"\x00\x01\x02binary maker note" * 10  # MakerNote: always dropped
    sub[0x9286] = b"ASCII\x00\x00\x00hello there"  # UserComment with charset header
    sub[0xA420] = "x" * 5000  # ImageUniqueID, absurdly long: dropped
    buffer = io.BytesIO()
    f.pattern(32, 32).save(buffer, "JPEG", exif=exif.tobytes())
    info = process(buffer.getvalue()).info
    assert info.exif["Make"] == "Pentax"
    assert info.exif["Model"] == "ION230"
    assert info.exif["UserComment"] == "hello there"
    assert "MakerNote" not in info.exif
    assert "ImageUniqueID" not in info.exif
    json.dumps(info.exif, allow_nan=False)


def test_zero_denominator_rationals_are_left_out():
    from PIL import TiffImagePlugin

    exif = f.make_exif(camera=False)
    exif[0x011A] = TiffImagePlugin.IFDRational(0, 0)  # XResolution 0/0
    buffer = io.BytesIO()
    f.pattern(32, 32).save(buffer, "JPEG", exif=exif.tobytes())
    info = process(buffer.getvalue()).info
    assert "XResolution" not in info.exif
    json.dumps(info.exif, allow_nan=False)


def test_broken_exif_never_rejects():
    result = process(f.exif_broken_jpeg_bytes())
    assert result.info.exif == {} and result.info.gps is None
    assert set(result.derivatives) == {"preview", "thumb"}


@pytest.mark.parametrize(
    "position, expected",
    [
        ((48.8584, 2.2945, 35.0), (48.8584, 2.2945, 35.0)),
        ((-33.8688, 151.2093, 58.0), (-33.8688, 151.2093, 58.0)),
        ((40.7128, -74.006, 10.0), (40.7128, -74.006, 10.0)),
        ((-22.9068, -43.1729, None), (-22.9068, -43.1729, None)),
        ((31.5590, 35.4732, -430.5), (31.5590, 35.4732, -430.5)),  # Dead Sea: below sea level
    ],
)
def test_gps_signs(position, expected):
    gps = process(f.jpeg_bytes(64, 48, gps=position)).info.gps
    assert gps is not None
    assert gps["latitude"] == pytest.approx(expected[0], abs=1e-5)
    assert gps["longitude"] == pytest.approx(expected[1], abs=1e-5)
    if expected[2] is None:
        assert gps["altitude"] is None
    else:
        assert gps["altitude"] == pytest.approx(expected[2], abs=0.01)
    json.dumps(gps, allow_nan=False)


def test_gps_without_longitude_is_none():
    exif = f.make_exif(camera=False)
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (1.0, 2.0, 3.0)
    buffer = io.BytesIO()
    f.pattern(32, 32).save(buffer, "JPEG", exif=exif.tobytes())
    assert process(buffer.getvalue()).info.gps is None


def test_out_of_range_gps_is_none():
    exif = f.make_exif(camera=False)
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (200.0, 0.0, 0.0), "E", (10.0, 0.0, 0.0)
    buffer = io.BytesIO()
    f.pattern(32, 32).save(buffer, "JPEG", exif=exif.tobytes())
    assert process(buffer.getvalue()).info.gps is None


def test_heic_gps_and_exif():
    result = process(f.heic_bytes(64, 48, gps=(-1.5, -2.25, 100.0)))
    assert result.info.format == "HEIF"
    assert result.info.gps["latitude"] == pytest.approx(-1.5)
    assert result.info.gps["longitude"] == pytest.approx(-2.25)
    assert result.info.exif["Make"] == "Testcam"


# --- derivatives carry no metadata --------------------------------------------------------------


def _assert_no_metadata(encoded: imaging.EncodedImage) -> None:
    image = opened(encoded)
    assert len(image.getexif()) == 0
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"):
        assert key not in image.info, key
    for marker in (b"Exif", b"Testcam", b"TC-1", b"<x:xmpmeta", b"ICCP"):
        assert marker not in encoded.data, marker


def test_derivatives_carry_no_exif_gps_xmp_or_icc():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = f.jpeg_bytes(640, 480, orientation=6, gps=(51.5, -0.12, 20.0), icc_profile=srgb)
    result = process(data)
    assert result.info.gps is not None
    for encoded in result.derivatives.values():
        _assert_no_metadata(encoded)


def test_png_text_and_webp_exif_do_not_leak():
    data = f.png_bytes(64, 48, exif=f.make_exif(gps=(1.0, 2.0, 3.0)), text={"Comment": "secret-note"})
    for encoded in process(data).derivatives.values():
        _assert_no_metadata(encoded)
        assert b"secret-note" not in encoded.data


def test_polyglot_payload_does_not_survive():
    data = f.polyglot_jpeg_with_php()
    assert f.PHP_PAYLOAD in data
    try:
        result = process(data)
    except ImageRejected:
        return
    for encoded in result.derivatives.values():
        assert b"<?php" not in encoded.data


# --- colour: modes, bit depths, ICC -----------------------------------------------------------


MODES = {
    "cmyk jpeg": (f.cmyk_jpeg_bytes, "CMYK", "RGB"),
    "grayscale jpeg": (f.grayscale_jpeg_bytes, "L", "RGB"),
    "png rgb": (lambda: f.png_bytes(mode="RGB"), "RGB", "RGB"),
    "png rgba": (lambda: f.png_bytes(mode="RGBA"), "RGBA", "RGBA"),
    "png la": (lambda: f.png_bytes(mode="LA"), "LA", "RGBA"),
    "png grayscale": (lambda: f.png_bytes(mode="L"), "L", "RGB"),
    "png 1-bit": (lambda: f.png_bytes(mode="1"), "1", "RGB"),
    "png palette": (lambda: f.png_bytes(mode="P"), "P", "RGB"),
    "png palette + tRNS": (lambda: f.png_bytes(mode="P", transparent=True), "P", "RGBA"),
    "png 16-bit rgb": (f.png16_bytes, "RGB", "RGB"),
    "png 16-bit gray": (lambda: f.png16_bytes(color=False), "I;16", "RGB"),
    "gif": (f.gif_bytes, "P", "RGB"),
    "webp": (f.webp_bytes, "RGB", "RGB"),
    "webp alpha": (lambda: f.webp_bytes(alpha=True), "RGBA", "RGBA"),
    "tiff": (f.tiff_bytes, "RGB", "RGB"),
    "tiff cmyk": (lambda: f.tiff_bytes(mode="CMYK"), "CMYK", "RGB"),
    "tiff 16-bit": (lambda: f.tiff_bytes(mode="I;16", compression=None), "I;16", "RGB"),
    "bmp": (f.bmp_bytes, "RGB", "RGB"),
    "ico": (f.ico_bytes, "RGBA", "RGB"),  # fully opaque alpha is dropped
    "heic": (f.heic_bytes, "RGB", "RGB"),
    "avif": (f.avif_bytes, "RGB", "RGB"),
    "avif alpha": (lambda: f.avif_bytes(alpha=True), "RGBA", "RGBA"),
}


@pytest.mark.parametrize("make, input_mode, output_mode", MODES.values(), ids=MODES.keys())
def test_every_mode_gives_rgb_or_rgba_webp(make, input_mode, output_mode):
    result = process(make())
    assert result.info.mode == input_mode
    for encoded in result.derivatives.values():
        image = opened(encoded)
        assert image.format == "WEBP"
        assert image.mode == output_mode


@pytest.mark.parametrize("make", [f.png16_bytes, lambda: f.png16_bytes(color=False)], ids=["rgb", "gray"])
def test_16_bit_is_scaled_not_clipped(make):
    thumb = opened(process(make()).derivatives["thumb"]).convert("RGB")
    top_left = thumb.getpixel((thumb.width // 4, thumb.height // 4))
    # 16-bit values clipped to 255 would come out white.
    assert top_left != (255, 255, 255)
    assert sum(top_left) < 3 * 200


def test_cmyk_colours_survive():
    thumb = opened(process(f.cmyk_jpeg_bytes(64, 48)).derivatives["thumb"])
    assert_upright_pattern(thumb)


def test_palette_transparency_is_kept():
    thumb = opened(process(f.png_bytes(64, 48, mode="P", transparent=True)).derivatives["thumb"])
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((32, 40))[3] == 0  # the bottom half was the transparent colour
    assert thumb.getpixel((10, 10))[3] == 255


def test_broken_icc_profile_is_ignored():
    result = process(f.jpeg_bytes(64, 48, icc_profile=b"\x00\x00\x01\x00not a real profile" * 4))
    assert_upright_pattern(opened(result.derivatives["thumb"]))


def test_icc_profile_is_applied():
    # A LAB-encoded "profile" would be wrong for RGB data: the conversion is skipped, not failed.
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert_upright_pattern(opened(process(f.jpeg_bytes(64, 48, icc_profile=lab)).derivatives["thumb"]))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert_upright_pattern(opened(process(f.jpeg_bytes(64, 48, icc_profile=srgb)).derivatives["thumb"]))


# --- frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, fmt",
    [(f.animated_gif_bytes, "GIF"), (f.animated_webp_bytes, "WEBP"), (f.animated_png_bytes, "PNG")],
    ids=["gif", "webp", "apng"],
)
def test_animations_report_frames_and_get_a_still(make, fmt):
    result = process(make(frames=4))
    assert (result.info.format, result.info.frames, result.info.animated) == (fmt, 4, True)
    for encoded in result.derivatives.values():
        image = opened(encoded)
        assert getattr(image, "n_frames", 1) == 1
        assert close_to(image.convert("RGB").getpixel((40, 30)), f.RED)  # the first frame


def test_still_formats_are_not_animated():
    info = process(f.gif_bytes()).info
    assert (info.frames, info.animated) == (1, False)


def test_multipage_tiff_has_frames_but_is_not_animated():
    info = process(f.tiff_bytes(pages=3)).info
    assert (info.frames, info.animated) == (3, False)


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: f.truncated(f.jpeg_bytes(640, 480), 0.5),
        lambda: f.truncated(f.jpeg_bytes(640, 480), 0.05),
        lambda: f.truncated(f.large_jpeg_bytes(0.3), 0.7),
        lambda: f.truncated(f.png_bytes(300, 200), 0.6),
        lambda: f.truncated(f.webp_bytes(300, 200), 0.5),
        lambda: f.truncated(f.tiff_bytes(300, 200, compression=None), 0.5),
        lambda: f.truncated(f.heic_bytes(300, 200), 0.5),
        lambda: f.truncated(f.avif_bytes(300, 200), 0.5),
        lambda: f.jpeg_bytes()[:2] + b"\xff" + b"\x00" * 50,
    ],
    ids=["jpeg-half", "jpeg-head", "jpeg-large", "png", "webp", "tiff", "heic", "avif", "jpeg-garbage"],
)
def test_truncated_and_broken_files_are_corrupt(make):
    assert rejection(make()).code == "corrupt"


@pytest.mark.parametrize(
    "data, code",
    [
        (f.html_as_jpg_bytes(), "not_an_image"),
        (f.pdf_bytes(), "not_an_image"),
        (f.zip_bytes(), "not_an_image"),
        (b"", "not_an_image"),
        (f.svg_bytes(), "unsupported_format"),
        (b"8BPS\x00\x01" + b"\x00" * 40, "unsupported_format"),
    ],
    ids=["html", "pdf", "zip", "empty", "svg", "psd"],
)
def test_non_images_are_refused_before_pillow(data, code):
    assert rejection(data).code == code


def test_header_declared_bomb_is_refused_quickly_without_allocating():
    data = f.png_header_bomb(100_000, 100_000)
    assert len(data) < 200
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = rejection(data)
    finally:
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert error.code == "too_many_pixels"
    assert elapsed < 1.0
    assert python_peak < 5 * 1024 * 1024
    assert (peak_after - peak_before) * 1024 < 50 * 1024 * 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # pytest resets filters per test
def test_bomb_just_over_our_limit_but_under_pillows_is_still_refused():
    # 100_001 x 1000 is over the 100 MP default but well under Pillow's own 179 MP error.
    assert rejection(f.png_header_bomb(100_001, 1000)).code == "too_many_pixels"


def test_gif_frame_bomb_is_refused_quickly():
    data = f.gif_frame_bomb(frames=200_000)
    started = time.perf_counter()
    assert rejection(data).code == "too_many_frames"
    assert time.perf_counter() - started < 2.0


def test_apng_declaring_a_million_frames_is_refused():
    assert rejection(f.apng_frame_count_bomb(1_000_000)).code == "too_many_frames"


def _gif_with_frame_size(frames: int, width: int, height: int) -> bytes:
    """A tiny-canvas GIF whose frame descriptors all claim ``width`` x ``height``."""
    data = bytearray(f.gif_frame_bomb(frames=frames))
    position = 0
    for _ in range(frames):
        position = data.index(b",\x00\x00\x00\x00\x01\x00\x01\x00", position + 1)
        data[position + 5 : position + 9] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    return bytes(data)


def test_gif_with_a_frame_bigger_than_the_limit_is_refused():
    # Pillow grows the canvas to fit an overflowing frame: 65535 x 65535 of them.
    assert rejection(_gif_with_frame_size(2, 65535, 65535)).code == "too_many_pixels"


def test_gif_whose_frames_outgrow_the_canvas_count_against_the_animation_limit():
    # 1x1 canvas, but 200 frames of 100x100 are decoded at 100x100 each.
    limits = imaging.ImagingLimits(max_animation_pixels=100 * 100 * 150)
    assert rejection(_gif_with_frame_size(200, 100, 100), limits).code == "too_many_frames"


# --- blurhash ---------------------------------------------------------------------------------


_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _decode83(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 83 + _BASE83.index(ch)
    return value


def test_blurhash_format_and_average_colour():
    image = f.jpeg_bytes(64, 48, color=(200, 120, 40))
    blurhash = process(image).info.blurhash
    assert len(blurhash) == 28  # 1 size flag + 1 max AC + 4 DC + 11 AC components x 2
    assert re.fullmatch(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]+", blurhash)
    assert _decode83(blurhash[0]) == (4 - 1) + (3 - 1) * 9


def test_blurhash_dc_of_a_solid_image_is_its_colour():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(buffer, "PNG")
    blurhash = process(buffer.getvalue()).info.blurhash
    dc = _decode83(blurhash[2:6])
    assert (dc >> 16, (dc >> 8) & 255, dc & 255) == (200, 120, 40)


def test_blurhash_differs_between_images():
    first = process(f.jpeg_bytes(64, 48)).info.blurhash
    other = process(f.jpeg_bytes(64, 48, color=(250, 250, 250))).info.blurhash
    assert first != other


# --- module hygiene ---------------------------------------------------------------------------


def test_import_does_no_work_and_pulls_in_no_web_or_cloud_libraries():
    code = (
        "import sys; from PIL import Image; before = Image.MAX_IMAGE_PIXELS\n"
        "import imageservice.core.imaging\n"
        "assert 'pillow_heif' not in sys.modules, 'pillow_heif imported at import time'\n"
        "assert not any(m.split('.')[0] in ('flask', 'boto3', 'botocore') for m in sys.modules)\n"
        "assert Image.MAX_IMAGE_PIXELS == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pillow_global_pixel_limit_is_left_alone():
    before = Image.MAX_IMAGE_PIXELS
    process(f.jpeg_bytes(64, 48))
    assert Image.MAX_IMAGE_PIXELS == before


def test_truncated_images_flag_is_not_set():
    from PIL import ImageFile

    process(f.jpeg_bytes(64, 48))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_math_of_fit_long_edge():
    assert imaging.pixels.fit_long_edge((4000, 3000), 1440) == (1440, 1080)
    assert imaging.pixels.fit_long_edge((1000, 1), 256) == (256, 1)
    assert imaging.pixels.fit_long_edge((10, 10), 256) == (10, 10)
    assert math.isclose(imaging.pixels.fit_long_edge((3000, 4000), 256)[0], 192)


def test_blurhash_matches_the_reference_encoder():
    # Expected value produced by the reference Python encoder (PyPI "blurhash" 1.1.5,
    # components 4x3) for exactly this 32x24 image.
    assert imaging.blurhash.encode(f.pattern(32, 24)) == "LrD]lU@#njO;^V+KnkS_s*njjabF"
