"""What the server owns and the pages show: one source for the templates and the scripts.

Templates read :func:`page_constants` directly; the scripts read the same dict from the
``imageservice-config`` meta tag of every page (JSON in an attribute: no inline script, so the
CSP stays ``script-src 'self'``). Values come from core and settings; this module only adds words.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ...core.conversions import (
    CONVERT_FORMATS, FITS, OPACITY_RANGE, QUALITY_RANGE, WATERMARK_POSITIONS, WATERMARK_TEXT_MAX, WatermarkSpec,
)
from ...core.errors import REJECTION_CODES
from ...core.formats import BY_OUTPUT, EXTENSION_TYPES, upload_formats_words
from ...core.records import STATUSES
from ...core.text import INVISIBLE, SPACES, TAG_NORMAL_FORM

# The file picker's hint of extensions, each with the type the browser declares for it when it
# knows none (the server and the processor decide for real, from the bytes): core/formats.py.
UPLOAD_FORMATS_WORDS = upload_formats_words()
FORMAT_LABELS = {name: f.label for name, f in BY_OUTPUT.items()}
FIT_LABELS = {"contain": "Contain: fit inside, keep proportions",
              "cover": "Cover: fill the box, crop the rest",
              "fill": "Fill: stretch to the exact size"}
POSITION_LABELS = {"top-left": "Top left", "top-right": "Top right", "bottom-left": "Bottom left",
                   "bottom-right": "Bottom right", "center": "Centre"}
# The API's defaults are the form's defaults (read off the fields: a spec without text or logo
# is not a valid value to build).
WATERMARK_DEFAULTS = {field.name: field.default for field in fields(WatermarkSpec)}
STATUS_WORDS = {"pending": "Pending", "processing": "Processing", "ready": "Ready", "rejected": "Rejected"}

# Words for a rejection whose record carries no message of its own.
REJECTION_WORDS = {
    "corrupt": "The image is damaged and cannot be read.",
    "not_an_image": "This file is not an image.",
    "unsupported_format": "This image format is not supported.",
    "too_many_pixels": "The image has more pixels than allowed.",
    "too_many_frames": "The animation has too many frames.",
    "too_large": "The file is larger than the upload limit.",
    "processing_failed": "Processing failed; try uploading it again.",
    "quota_exceeded": "Your workspace is full; delete some images and upload it again.",
    "too_expensive": "The image needs more work than the service allows at once.",
    "malware": "Quarantined: a virus scanner flagged this file.",
    "moderation": "Quarantined: the content check refused this file.",
}
# Quarantined files name the scanner's finding (the record's message) inside these words.
QUARANTINE_WORDS = {
    "malware": "Quarantined: a virus scanner flagged this file ({detail})",
    "moderation": "Quarantined: the content check refused this file ({detail})",
}


def labelled(values: tuple[str, ...], labels: dict[str, str]) -> list[tuple[str, str]]:
    """Core's values in core's order, each with its words (the value itself if it has none)."""
    return [(value, labels.get(value, value)) for value in values]


def percent(fraction: float) -> int:
    return round(fraction * 100)


def page_constants(*, max_upload_bytes: int, convert_max_edge: int, max_description_length: int,
                   quarantine_days: int, page_size_max: int,
                   upload_content_types: frozenset[str] | set[str]) -> dict[str, Any]:
    """Everything the pages need from the server, as plain JSON-able values."""
    return {
        "max_upload_bytes": max_upload_bytes,
        "convert_max_edge": convert_max_edge,
        "max_description_length": max_description_length,
        "page_size_max": page_size_max,
        # core.text.normalise_tag as data (tags.js applies it): a filter typed in the gallery
        # matches the tags a new upload is stored with.
        "tag_rule": {"normal_form": TAG_NORMAL_FORM, "invisible": INVISIBLE, "spaces": SPACES},
        "upload_content_types": sorted(upload_content_types),
        "extension_types": EXTENSION_TYPES,
        "upload_formats_words": UPLOAD_FORMATS_WORDS,
        "convert_formats": labelled(CONVERT_FORMATS, FORMAT_LABELS),
        "fits": labelled(FITS, FIT_LABELS),
        "quality_range": {"min": QUALITY_RANGE[0], "max": QUALITY_RANGE[1]},
        "watermark_positions": labelled(WATERMARK_POSITIONS, POSITION_LABELS),
        "watermark_default_position": WATERMARK_DEFAULTS["position"],
        # The form's opacity slider counts in percent; the API takes a fraction.
        "watermark_opacity_percent": {"min": percent(OPACITY_RANGE[0]), "max": percent(OPACITY_RANGE[1]),
                                      "default": percent(WATERMARK_DEFAULTS["opacity"])},
        "watermark_max_text": WATERMARK_TEXT_MAX,
        "quarantine_days": quarantine_days,
        "statuses": labelled(STATUSES, STATUS_WORDS),
        "rejection_words": {code: REJECTION_WORDS.get(code, "The file could not be processed.")
                            for code in sorted(REJECTION_CODES)},
        "quarantine_words": QUARANTINE_WORDS,
    }


def accept_attribute(upload_content_types: frozenset[str] | set[str]) -> str:
    """The file input's ``accept``: the types the API takes, then the extensions."""
    return ",".join(sorted(upload_content_types) + ["." + ext for ext in EXTENSION_TYPES])
