"""Every ImagingLimits field, crossed from just under to just over with small custom limits."""

from __future__ import annotations

import imagefactory as f
import pytest

from imageservice.core import imaging
from imageservice.core.conversions import conversion_request_from
from imageservice.core.errors import ImageRejected, Unprocessable

THUMB = [imaging.DerivativeSpec("thumb", 32)]
W, H = 64, 48  # every fixture below is 64x48 = 3072 pixels a frame
PIXELS = W * H


def convert(data: bytes, limits: imaging.ImagingLimits = imaging.ImagingLimits(), **params) -> imaging.EncodedImage:
    return imaging.convert_image(data, conversion_request_from(params), limits)


def accepted(data: bytes, limits: imaging.ImagingLimits) -> imaging.ProcessedImage:
    return imaging.process_image(data, THUMB, limits)


def refused(data: bytes, limits: imaging.ImagingLimits) -> str:
    with pytest.raises(ImageRejected) as caught:
        imaging.process_image(data, THUMB, limits)
    return caught.value.code


def test_defaults_match_the_design():
    limits = imaging.ImagingLimits()
    assert limits.max_pixels == 100_000_000
    assert limits.max_animation_pixels == 1_000_000_000
    assert limits.max_frames == 1000
    assert limits.convert_max_edge == 8192


# --- max_pixels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [f.jpeg_bytes, f.png_bytes, f.webp_bytes, f.gif_bytes, f.tiff_bytes, f.bmp_bytes, f.avif_bytes, f.heic_bytes],
    ids=["jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "heic"],
)
def test_max_pixels(make):
    data = make(W, H)
    accepted(data, imaging.ImagingLimits(max_pixels=PIXELS))
    assert refused(data, imaging.ImagingLimits(max_pixels=PIXELS - 1)) == "too_many_pixels"


def test_max_pixels_applies_to_convert_input():
    with pytest.raises(ImageRejected) as caught:
        convert(f.jpeg_bytes(W, H), format="png", width=10, limits=imaging.ImagingLimits(max_pixels=PIXELS - 1))
    assert caught.value.code == "too_many_pixels"


def test_max_pixels_applies_to_convert_output():
    limits = imaging.ImagingLimits(max_pixels=100 * 100)
    data = f.jpeg_bytes(60, 60)
    convert(data, format="png", width=100, height=100, fit="fill", enlarge=True, limits=limits)
    with pytest.raises(Unprocessable) as caught:
        convert(data, format="png", width=101, height=100, fit="fill", enlarge=True, limits=limits)
    assert (caught.value.code, caught.value.status) == ("limit_exceeded", 422)
    with pytest.raises(Unprocessable):  # width alone can imply too many pixels as well
        convert(f.jpeg_bytes(60, 120), format="png", width=100, enlarge=True, limits=limits)


# --- max_frames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [f.animated_gif_bytes, f.animated_webp_bytes, f.animated_png_bytes], ids=["gif", "webp", "apng"]
)
def test_max_frames(make):
    data = make(frames=5, width=W, height=H)
    assert accepted(data, imaging.ImagingLimits(max_frames=5)).info.frames == 5
    assert refused(data, imaging.ImagingLimits(max_frames=4)) == "too_many_frames"


def test_max_frames_for_tiff_pages():
    data = f.tiff_bytes(W, H, pages=3)
    assert accepted(data, imaging.ImagingLimits(max_frames=3)).info.frames == 3
    assert refused(data, imaging.ImagingLimits(max_frames=2)) == "too_many_frames"


def test_max_frames_default_refuses_a_frame_bomb():
    assert refused(f.gif_frame_bomb(frames=1001), imaging.ImagingLimits()) == "too_many_frames"
    assert accepted(f.gif_frame_bomb(frames=1000), imaging.ImagingLimits()).info.frames == 1000


# --- max_animation_pixels ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [f.animated_gif_bytes, f.animated_webp_bytes, f.animated_png_bytes], ids=["gif", "webp", "apng"]
)
def test_max_animation_pixels(make):
    data = make(frames=3, width=W, height=H)
    accepted(data, imaging.ImagingLimits(max_animation_pixels=3 * PIXELS))
    assert refused(data, imaging.ImagingLimits(max_animation_pixels=3 * PIXELS - 1)) == "too_many_frames"


def test_max_animation_pixels_does_not_apply_to_stills():
    accepted(f.jpeg_bytes(W, H), imaging.ImagingLimits(max_animation_pixels=1))


# --- convert_max_edge -------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["width", "height"])
def test_convert_max_edge(side):
    limits = imaging.ImagingLimits(convert_max_edge=100)
    data = f.jpeg_bytes(W, W)  # square, so the implied side equals the given one
    assert convert(data, format="png", enlarge=True, limits=limits, **{side: 100}).width == 100
    with pytest.raises(Unprocessable) as caught:
        convert(data, format="png", enlarge=True, limits=limits, **{side: 101})
    assert (caught.value.code, caught.value.status) == ("limit_exceeded", 422)


def test_convert_max_edge_applies_to_the_implied_side():
    limits = imaging.ImagingLimits(convert_max_edge=100)
    with pytest.raises(Unprocessable):
        convert(f.jpeg_bytes(40, 200), format="png", width=30, limits=limits)  # height would be 150


def test_original_larger_than_convert_max_edge_is_scaled_down_to_fit():
    encoded = convert(f.jpeg_bytes(640, 480), format="png", limits=imaging.ImagingLimits(convert_max_edge=320))
    assert (encoded.width, encoded.height) == (320, 240)


def test_max_animation_pixels_smaller_than_one_frame_still_refuses_animations():
    data = f.animated_gif_bytes(frames=3, width=W, height=H)
    assert refused(data, imaging.ImagingLimits(max_animation_pixels=PIXELS // 2)) == "too_many_frames"


def test_a_webp_canvas_over_max_pixels_is_refused_before_libwebp_allocates_it():
    # Pillow's WebP plugin decodes while it opens; under a memory ceiling libwebp's refused
    # allocation would read as a broken file. The declared canvas is checked first.
    import attacks

    with pytest.raises(ImageRejected) as caught:
        imaging.process_image(attacks.lossless_webp_bomb(12000), [], imaging.ImagingLimits())
    assert caught.value.code == "too_many_pixels"
    assert "12000x12000" in caught.value.message
