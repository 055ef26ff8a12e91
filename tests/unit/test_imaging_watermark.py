"""Watermarks: where the mark goes, how big and how strong, and that nothing else changes.

Every check compares a marked output with the same conversion unmarked, pixel by pixel (PNG,
so lossless): the mark must change pixels in its box and nowhere else.
"""

from __future__ import annotations

import io

import imagefactory as f
import pytest
from PIL import Image, ImageChops, ImageStat

from imageservice.core import imaging
from imageservice.core.conversions import ConversionRequest, WatermarkSpec
from imageservice.core.errors import BadRequest, ImageRejected
from imageservice.core.imaging import watermark

PHOTO = f.jpeg_bytes(640, 480)
SIZE = (400, 300)  # the outputs below: 640x480 at width 400


def pixels_of(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")  # (getbbox of an RGBA difference reads only alpha)


def converted(data: bytes = PHOTO, mark: WatermarkSpec | None = None, *, logo: bytes | None = None,
              fmt: str = "png", **params) -> Image.Image:
    request = ConversionRequest(fmt, width=params.pop("width", 400), watermark=mark, **params)
    return pixels_of(imaging.convert_image(data, request, logo=logo).data)


def changed_box(mark: WatermarkSpec, data: bytes = PHOTO, **options) -> tuple[int, int, int, int]:
    plain, marked = converted(data, **options), converted(data, mark, **options)
    assert plain.size == marked.size
    box = ImageChops.difference(plain, marked).getbbox()
    assert box is not None, "the mark changed nothing"
    return box


def margin_for(size: tuple[int, int]) -> int:
    return max(watermark.MIN_MARGIN, round(min(size) * watermark.MARGIN_FRACTION))


@pytest.mark.parametrize("position", ["top-left", "top-right", "bottom-left", "bottom-right", "center"])
def test_the_mark_changes_its_corner_and_nowhere_else(position):
    left, top, right, bottom = changed_box(WatermarkSpec(text="© Alice 2026", position=position))
    width, height = SIZE
    margin = margin_for(SIZE)
    # inside the output with a margin
    assert left >= margin and top >= margin and right <= width - margin and bottom <= height - margin
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    expected_x = {"left": width * 0.25, "right": width * 0.75}
    expected_y = {"top": height * 0.25, "bottom": height * 0.75}
    if position == "center":
        assert abs(centre_x - width / 2) < 4 and abs(centre_y - height / 2) < 4
    else:
        vertical, horizontal = position.split("-")
        assert (centre_x < width / 2) == (horizontal == "left")
        assert (centre_y < height / 2) == (vertical == "top")
        assert abs(centre_x - expected_x[horizontal]) < width / 4 + 1
        assert abs(centre_y - expected_y[vertical]) < height / 4 + 1


def test_the_default_is_bottom_right():
    left, top, _, _ = changed_box(WatermarkSpec(text="mark"))
    assert left > SIZE[0] / 2 and top > SIZE[1] / 2


@pytest.mark.parametrize("scale", [0.05, 0.2, 0.5, 1.0])
def test_scale_is_the_marks_width_over_the_outputs(scale):
    left, _, right, _ = changed_box(WatermarkSpec(text="Watermark text", scale=scale))
    room = SIZE[0] - 2 * margin_for(SIZE)
    expected = min(room, round(SIZE[0] * scale))
    # the outermost columns of the outline are faint: a few pixels may not differ visibly
    assert abs((right - left) - expected) <= max(3, expected * 0.08), (right - left, expected)


def test_opacity_sets_how_strongly_the_mark_shows():
    plain = converted()
    strengths = []
    for opacity in (0.05, 0.5, 1.0):
        marked = converted(mark=WatermarkSpec(text="MARK", opacity=opacity, scale=0.5))
        strengths.append(sum(ImageStat.Stat(ImageChops.difference(plain, marked).convert("L")).sum))
    assert 0 < strengths[0] < strengths[1] < strengths[2]


@pytest.mark.parametrize("text", ["Привет, мир", "Καλημέρα", "Tiếng Việt", "Grüße"])
def test_non_latin_text_renders_real_glyphs(text):
    # A missing glyph draws the same empty box for every letter: different letters of the same
    # script must look different.
    marks = [watermark.prepare(WatermarkSpec(text=letter, scale=0.3), SIZE) for letter in text[:2]]
    assert all(mark is not None for mark in marks)
    first, second = (mark.image.getchannel("A") for mark in marks)
    assert first.getbbox() is not None
    if first.size == second.size:
        assert ImageChops.difference(first, second).getbbox() is not None


def test_the_font_ships_with_a_declared_dependency():
    path = watermark.font_path()
    assert path.is_file() and "fontpkg_noto_sans" in path.parts


def test_a_logo_keeps_its_transparency():
    # Left half of the logo fully transparent, right half opaque red.
    logo_image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    logo_image.paste((255, 0, 0, 255), (100, 0, 200, 100))
    logo = f._save(logo_image, "PNG")  # noqa: SLF001 - the factory's own encoder
    mark = WatermarkSpec(image_id="01LOGO", opacity=1.0, scale=0.5)
    left, top, right, bottom = changed_box(mark, logo=logo)
    assert right - left <= 0.5 * SIZE[0] / 2 + 2  # only the opaque half shows
    marked = converted(mark=mark, logo=logo)
    assert f.close_to(marked.getpixel(((left + right) // 2, (top + bottom) // 2))[:3], (255, 0, 0), 10)


def test_a_logo_that_is_not_an_image_is_rejected():
    with pytest.raises(ImageRejected) as caught:
        converted(mark=WatermarkSpec(image_id="01LOGO"), logo=b"not an image at all")
    assert caught.value.code == "not_an_image"


def test_the_mark_goes_on_after_orientation():
    # Stored 240x160 with orientation 6: displayed 160x240, the mark in the displayed corner.
    data = f.jpeg_bytes(240, 160, orientation=6)
    left, top, right, bottom = changed_box(WatermarkSpec(text="upright"), data, width=160)
    assert right <= 160 and bottom <= 240 and top > 120 and left > 80


def test_every_frame_of_an_animation_is_marked():
    data = f.animated_gif_bytes(frames=3, width=200, height=150)
    request = ConversionRequest("png", watermark=WatermarkSpec(text="anim", opacity=1.0, scale=0.5))
    plain = Image.open(io.BytesIO(imaging.convert_image(data, ConversionRequest("png")).data))
    marked = Image.open(io.BytesIO(imaging.convert_image(data, request).data))
    assert marked.n_frames == plain.n_frames == 3
    for index in range(3):
        plain.seek(index)
        marked.seek(index)
        box = ImageChops.difference(plain.convert("RGB"), marked.convert("RGB")).getbbox()
        assert box is not None and box[0] >= 200 * 0.4 and box[1] > 150 / 2  # the bottom-right half-width mark


def test_the_watermark_is_part_of_the_cache_key():
    plain = ConversionRequest("png", width=100)
    marked = ConversionRequest("png", width=100, watermark=WatermarkSpec(text="a"))
    other = ConversionRequest("png", width=100, watermark=WatermarkSpec(text="a", position="center"))
    assert len({plain.cache_key(), marked.cache_key(), other.cache_key()}) == 3


@pytest.mark.parametrize(
    "values",
    [{"text": "x" * 101}, {"text": "a", "opacity": 0.01}, {"text": "a", "opacity": 1.5},
     {"text": "a", "scale": 0}, {"text": "a", "scale": 2}, {"text": "a", "position": "middle"},
     {"text": "a", "image_id": "01X"}],
)
def test_bad_watermark_values_are_bad_requests(values):
    with pytest.raises(BadRequest) as caught:
        WatermarkSpec(**values)
    assert caught.value.code == "invalid_parameter"


# --- derivatives -------------------------------------------------------------------------------


def test_a_derivative_watermark_marks_that_derivative_only():
    data = f.jpeg_bytes(1600, 1200)
    mark = WatermarkSpec(text="preview only", opacity=1.0)
    plain = imaging.process_image(data, [imaging.DerivativeSpec("preview", 800), imaging.DerivativeSpec("thumb", 200)])
    marked = imaging.process_image(
        data, [imaging.DerivativeSpec("preview", 800, watermark=mark), imaging.DerivativeSpec("thumb", 200)]
    )
    difference = ImageChops.difference(
        pixels_of(plain.derivatives["preview"].data), pixels_of(marked.derivatives["preview"].data)
    ).convert("L")
    # WebP is lossy: an encoder's choices move every block a little, the mark moves its own a lot.
    box = difference.point(lambda value: 255 if value > 48 else 0).getbbox()
    assert box is not None and box[0] > 400 and box[1] > 300  # bottom-right, nowhere else
    assert marked.derivatives["thumb"].data == plain.derivatives["thumb"].data
    assert marked.info.blurhash == plain.info.blurhash


def test_a_derivative_watermark_is_a_text():
    with pytest.raises(ValueError):
        imaging.DerivativeSpec("preview", 800, watermark=WatermarkSpec(image_id="01LOGO"))
