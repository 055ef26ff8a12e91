"""IMAGESERVICE_PREVIEW_WATERMARK_TEXT: every preview gets the text mark, the thumb never does.

Off by default. The pipeline runs on the in-memory fakes with imaging in this process.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone

import imagefactory
import pytest
from fakes import FakeBlobStore, FakeCatalog
from PIL import Image, ImageChops

from imageservice.adapters.imaging_pool import InlineImagingRunner
from imageservice.core import keys
from imageservice.core.conversions import WatermarkSpec
from imageservice.core.ids import new_id
from imageservice.core.records import PENDING, ImageRecord
from imageservice.core.timeutil import to_iso
from imageservice.pipeline import READY_OUTCOME, Pipeline, PipelineConfig
from imageservice.settings import Settings, SettingsError

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
PHOTO = imagefactory.jpeg_bytes(1600, 1200)


def derivatives_made_with(settings: Settings) -> dict[str, Image.Image]:
    blobs, catalog = FakeBlobStore(), FakeCatalog()
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(settings), clock=lambda: NOW,
                        imaging=InlineImagingRunner())
    image_id = new_id()
    record = ImageRecord(image_id=image_id, user_id="alice", status=PENDING, filename="photo.jpg",
                         size=len(PHOTO), created_at=to_iso(NOW),
                         original_key=keys.original_key("alice", image_id, False))
    catalog.create(record)
    blobs.put(record.original_key, PHOTO, "image/jpeg")
    assert pipeline.process_key(record.original_key) == READY_OUTCOME
    return {
        name: Image.open(io.BytesIO(blobs.get(keys.derivative_key("alice", image_id, name, False)))).convert("RGB")
        for name in ("preview", "thumb")
    }


def visible_change(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    # WebP is lossy: the encoder moves every block a little, the mark moves its own a lot.
    return ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 48 else 0).getbbox()


def test_off_by_default():
    settings = Settings.from_env({})
    assert settings.preview_watermark_text == ""
    assert all(spec.watermark is None for spec in PipelineConfig.from_settings(settings).derivative_specs())


def test_the_setting_marks_the_preview_spec_only():
    settings = Settings.from_env({"IMAGESERVICE_PREVIEW_WATERMARK_TEXT": "© Demo"})
    specs = {spec.name: spec for spec in PipelineConfig.from_settings(settings).derivative_specs()}
    assert specs["preview"].watermark == WatermarkSpec(text="© Demo")
    assert specs["thumb"].watermark is None


def test_every_preview_is_marked_in_its_corner_and_the_thumb_is_not():
    plain = derivatives_made_with(Settings())
    marked = derivatives_made_with(Settings(preview_watermark_text="© Demo Ωmega"))
    box = visible_change(plain["preview"], marked["preview"])
    width, height = marked["preview"].size
    assert box is not None and box[0] > width / 2 and box[1] > height / 2  # bottom-right only
    assert visible_change(plain["thumb"], marked["thumb"]) is None


def test_a_text_longer_than_a_watermark_may_be_is_refused_at_start_up():
    with pytest.raises(SettingsError):
        Settings.from_env({"IMAGESERVICE_PREVIEW_WATERMARK_TEXT": "x" * 101})
