"""imaging.convert_image: formats, boxes, metadata stripping, animation, parameter checks."""

from __future__ import annotations

import io

import imagefactory as f
import pytest
from PIL import Image

from imageservice.core import imaging
from imageservice.core.errors import BadRequest, ImageRejected, Unprocessable

PILLOW_NAME = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF", "gif": "GIF", "tiff": "TIFF", "bmp": "BMP"}
CONTENT_TYPE = {
    "jpeg": ("image/jpeg", "jpg"), "png": ("image/png", "png"), "webp": ("image/webp", "webp"),
    "avif": ("image/avif", "avif"), "gif": ("image/gif", "gif"), "tiff": ("image/tiff", "tif"),
    "bmp": ("image/bmp", "bmp"),
}


def opened(encoded: imaging.EncodedImage) -> Image.Image:
    return f.opened(encoded.data)


def close_to(pixel, colour, tolerance=45) -> bool:
    return f.close_to(pixel, colour, tolerance)


@pytest.fixture(scope="module")
def photo() -> bytes:
    return f.jpeg_bytes(640, 480, gps=(48.85, 2.29, 35.0))


@pytest.mark.parametrize("fmt", imaging.CONVERT_FORMATS)
def test_each_format_opens_back_as_itself(fmt, photo):
    encoded = imaging.convert_image(photo, format=fmt)
    image = opened(encoded)
    assert image.format == PILLOW_NAME[fmt]
    assert image.size == (640, 480) == (encoded.width, encoded.height)
    assert encoded.format == fmt
    assert (encoded.content_type, encoded.extension) == CONTENT_TYPE[fmt]
    assert close_to(image.convert("RGB").getpixel((160, 120)), f.RED)


@pytest.mark.parametrize("fmt", imaging.CONVERT_FORMATS)
def test_output_never_carries_exif_or_gps(fmt, photo):
    encoded = imaging.convert_image(photo, format=fmt, width=200)
    image = opened(encoded)
    exif = image.getexif()
    for tag in (0x010F, 0x0110, 0x0112, 0x8769, 0x8825):  # Make, Model, Orientation, Exif IFD, GPS IFD
        assert tag not in exif
    assert "exif" not in image.info and "xmp" not in image.info and "icc_profile" not in image.info
    assert b"Testcam" not in encoded.data and b"Exif\x00" not in encoded.data


@pytest.mark.parametrize(
    "fit, expected", [("contain", (267, 200)), ("cover", (300, 200)), ("fill", (300, 200))]
)
def test_fit_sizes(fit, expected, photo):
    encoded = imaging.convert_image(photo, format="png", width=300, height=200, fit=fit)
    assert (encoded.width, encoded.height) == expected == opened(encoded).size


def test_contain_fits_inside_a_tall_box(photo):
    encoded = imaging.convert_image(photo, format="png", width=100, height=400, fit="contain")
    assert (encoded.width, encoded.height) == (100, 75)


def test_contain_may_scale_up_to_the_box():
    encoded = imaging.convert_image(f.jpeg_bytes(64, 48), format="png", width=640, height=640)
    assert (encoded.width, encoded.height) == (640, 480)


def test_cover_crops_the_centre():
    # 640x480 into 100x100: the centre 480x480 is kept; its top-left is still red, top-right green.
    encoded = imaging.convert_image(f.jpeg_bytes(640, 480), format="png", width=100, height=100, fit="cover")
    image = opened(encoded).convert("RGB")
    assert close_to(image.getpixel((25, 25)), f.RED)
    assert close_to(image.getpixel((75, 25)), f.GREEN)
    assert close_to(image.getpixel((50, 80)), f.BLUE)


def test_fill_stretches():
    encoded = imaging.convert_image(f.jpeg_bytes(640, 480), format="png", width=100, height=400, fit="fill")
    image = opened(encoded).convert("RGB")
    assert image.size == (100, 400)
    assert close_to(image.getpixel((25, 100)), f.RED)
    assert close_to(image.getpixel((75, 100)), f.GREEN)


def test_width_only_keeps_aspect(photo):
    encoded = imaging.convert_image(photo, format="jpeg", width=320)
    assert (encoded.width, encoded.height) == (320, 240)


def test_height_only_keeps_aspect(photo):
    encoded = imaging.convert_image(photo, format="jpeg", height=120)
    assert (encoded.width, encoded.height) == (160, 120)


def test_no_size_keeps_the_original_size(photo):
    encoded = imaging.convert_image(photo, format="webp")
    assert (encoded.width, encoded.height) == (640, 480)


def test_quality_changes_the_size():
    data = f.large_jpeg_bytes(0.3)
    for fmt in ("jpeg", "webp", "avif"):
        low = imaging.convert_image(data, format=fmt, quality=20)
        high = imaging.convert_image(data, format=fmt, quality=95)
        assert len(low.data) < len(high.data), fmt


def test_orientation_is_applied(photo):
    encoded = imaging.convert_image(f.jpeg_bytes(240, 160, orientation=6), format="png")
    image = opened(encoded).convert("RGB")
    assert image.size == (160, 240)
    assert close_to(image.getpixel((40, 60)), f.RED)
    assert close_to(image.getpixel((120, 60)), f.GREEN)


def test_orientation_and_cover_with_draft():
    data = f.jpeg_bytes(4000, 3000, orientation=8, exif=False)
    encoded = imaging.convert_image(data, format="png", width=200, height=200, fit="cover")
    image = opened(encoded).convert("RGB")
    assert image.size == (200, 200)
    assert close_to(image.getpixel((50, 50)), f.RED)
    assert close_to(image.getpixel((150, 50)), f.GREEN)


def test_jpeg_draft_is_used_for_small_outputs(monkeypatch):
    sizes = []
    real = imaging.pixels.decode_scaled
    monkeypatch.setattr(imaging.pixels, "decode_scaled", lambda image, needed: sizes.append(real(image, needed).size) or real(image, needed))
    imaging.convert_image(f.jpeg_bytes(4000, 3000, exif=False), format="webp", width=400)
    assert sizes == [(500, 375)]


def test_alpha_is_flattened_onto_white_for_jpeg_and_bmp():
    data = f.png_bytes(64, 48, mode="RGBA")  # bottom-right quadrant fully transparent
    for fmt in ("jpeg", "bmp"):
        image = opened(imaging.convert_image(data, format=fmt)).convert("RGB")
        assert image.mode == "RGB"
        assert close_to(image.getpixel((56, 40)), (255, 255, 255), 10), fmt


@pytest.mark.parametrize("fmt", ["png", "webp", "avif", "tiff", "gif"])
def test_alpha_is_kept_where_the_format_has_it(fmt):
    image = opened(imaging.convert_image(f.png_bytes(64, 48, mode="RGBA"), format=fmt)).convert("RGBA")
    assert image.getpixel((56, 40))[3] == 0
    assert image.getpixel((8, 8))[3] == 255


def test_gif_output_is_palette():
    image = opened(imaging.convert_image(f.jpeg_bytes(64, 48), format="gif"))
    assert image.mode == "P"


def test_cmyk_input_becomes_rgb():
    image = opened(imaging.convert_image(f.cmyk_jpeg_bytes(), format="jpeg"))
    assert image.mode == "RGB"
    assert close_to(image.getpixel((16, 12)), f.RED)


def test_sixteen_bit_to_png_is_eight_bit():
    image = opened(imaging.convert_image(f.png16_bytes(), format="png"))
    assert image.mode == "RGB"
    assert close_to(image.getpixel((16, 12)), f.RED, 3)


# --- animation --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [f.animated_gif_bytes, f.animated_webp_bytes, f.animated_png_bytes], ids=["gif", "webp", "apng"])
@pytest.mark.parametrize("fmt", ["gif", "webp", "png"])
def test_animation_stays_animated(make, fmt):
    encoded = imaging.convert_image(make(frames=3, duration=120), format=fmt, width=32)
    image = Image.open(io.BytesIO(encoded.data))
    assert image.n_frames == 3
    assert image.size == (32, 24)
    durations = []
    colours = []
    for index in range(3):
        image.seek(index)
        image.load()
        durations.append(image.info.get("duration"))
        colours.append(image.convert("RGB").getpixel((24, 18)))
    assert durations == [120, 120, 120]
    assert close_to(colours[0], f.RED) and close_to(colours[1], f.GREEN) and close_to(colours[2], f.BLUE)
    assert image.info.get("loop") == 0


def test_play_once_gif_stays_play_once():
    encoded = imaging.convert_image(f.animated_gif_bytes(frames=3, loop=None), format="gif")
    image = Image.open(io.BytesIO(encoded.data))
    assert image.n_frames == 3
    assert "loop" not in image.info


@pytest.mark.parametrize("fmt", ["jpeg", "bmp", "tiff", "avif"])
def test_animation_to_a_still_format_is_the_first_frame(fmt):
    encoded = imaging.convert_image(f.animated_gif_bytes(frames=3), format=fmt)
    image = opened(encoded)
    assert getattr(image, "n_frames", 1) == 1
    assert close_to(image.convert("RGB").getpixel((40, 30)), f.RED)


def test_animation_frame_limits_apply():
    with pytest.raises(ImageRejected) as caught:
        imaging.convert_image(f.animated_gif_bytes(frames=5), format="webp", limits=imaging.ImagingLimits(max_frames=4))
    assert caught.value.code == "too_many_frames"


def test_animated_output_is_bounded_in_total_pixels():
    limits = imaging.ImagingLimits(max_animation_pixels=3 * 64 * 48)
    imaging.convert_image(f.animated_gif_bytes(frames=3), format="webp", limits=limits)
    with pytest.raises(Unprocessable) as caught:
        imaging.convert_image(f.animated_gif_bytes(frames=3), format="webp", width=128, limits=limits)
    assert caught.value.code == "limit_exceeded"


# --- parameters and limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"format": "jxl"},
        {"format": "svg"},
        {"format": ""},
        {"format": None},
        {"format": "png", "fit": "stretch"},
        {"format": "png", "width": 0},
        {"format": "png", "width": -5},
        {"format": "png", "height": 0},
        {"format": "png", "width": "100"},
        {"format": "png", "width": 10.5},
        {"format": "png", "width": True},
        {"format": "jpeg", "quality": 0},
        {"format": "jpeg", "quality": 101},
        {"format": "jpeg", "quality": "high"},
    ],
)
def test_bad_parameters_are_bad_requests(kwargs, photo):
    with pytest.raises(BadRequest) as caught:
        imaging.convert_image(photo, **kwargs)
    assert caught.value.code == "invalid_parameter"
    assert caught.value.status == 400


def test_format_is_case_insensitive(photo):
    assert imaging.convert_image(photo, format="PNG").format == "png"


def test_bad_parameters_are_checked_before_the_input():
    with pytest.raises(BadRequest):
        imaging.convert_image(b"not an image", format="nope")


def test_input_problems_are_rejections():
    with pytest.raises(ImageRejected) as caught:
        imaging.convert_image(f.html_as_jpg_bytes(), format="png")
    assert caught.value.code == "not_an_image"
    with pytest.raises(ImageRejected) as caught:
        imaging.convert_image(f.truncated(f.jpeg_bytes()), format="png")
    assert caught.value.code == "corrupt"
    with pytest.raises(ImageRejected) as caught:
        imaging.convert_image(f.png_header_bomb(), format="png", width=10)
    assert caught.value.code == "too_many_pixels"
