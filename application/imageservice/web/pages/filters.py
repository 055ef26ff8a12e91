"""Formatting for templates: pure functions of their arguments (no Flask, no request), so they
are unit-tested alone; ``views`` registers them as Jinja filters."""

from __future__ import annotations

from typing import Any, Mapping

from .constants import QUARANTINE_WORDS, REJECTION_WORDS

UNKNOWN_REJECTION = "The file could not be processed."


def filesize(value: Any) -> str:
    """Bytes in words: ``512 B``, ``1.2 KB``, ``3.4 MB`` (powers of 1024)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "B":
                return f"{int(size)} B"
            return f"{size:.1f} {unit}" if size < 100 else f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # not reached


def sentence(value: Any) -> str:
    """A message as a sentence: capital first letter, final full stop."""
    text = str(value or "").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def rejection_words(error: Mapping[str, Any] | None) -> str:
    """Why a record was rejected, in words (the scripts' ``rejectionWords`` does the same with
    the same tables): a quarantine names the scanner's finding; other rejections read the
    processor's own message, or the code's words when it sent none."""
    error = error or {}
    code = str(error.get("code") or "")
    detail = " ".join(str(error.get("message") or "").split()).rstrip(".")
    if code in QUARANTINE_WORDS:
        return sentence(QUARANTINE_WORDS[code].format(detail=detail or "no reason given"))
    return sentence(detail or REJECTION_WORDS.get(code, UNKNOWN_REJECTION))


def as_float(value: Any) -> float | None:
    """EXIF numbers arrive as numbers, "a/b" strings or [numerator, denominator] pairs."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value) and value[1]:
            return value[0] / value[1]
        if len(value) == 1:
            return as_float(value[0])
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                top, bottom = text.split("/", 1)
                return float(top) / float(bottom) if float(bottom) else None
            return float(text)
        except ValueError:
            return None
    return None


def _trim(number_: float, digits: int = 1) -> str:
    return f"{number_:.{digits}f}".rstrip("0").rstrip(".")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    text = " ".join(str(value).replace("\x00", "").split())
    return text or None


def camera_name(exif: Mapping[str, Any]) -> str | None:
    make, model = _text(exif.get("Make")), _text(exif.get("Model"))
    if make and model and model.lower().startswith(make.split()[0].lower()):
        return model
    return " ".join(p for p in (make, model) if p) or None


def exposure_text(value: Any) -> str | None:
    seconds = as_float(value)
    if seconds is None or seconds <= 0:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)} s"
    return f"{_trim(seconds)} s"


def taken_at_text(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    date, _, time = text.partition(" ")
    return f"{date.replace(':', '-')} {time}".strip()


def exif_rows(exif: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The EXIF facts people look for, in words, skipping what the file does not say."""
    aperture = as_float(exif.get("FNumber"))
    focal = as_float(exif.get("FocalLength"))
    iso = exif.get("ISOSpeedRatings", exif.get("PhotographicSensitivity"))
    iso_number = as_float(iso[0] if isinstance(iso, (list, tuple)) and iso else iso)
    rows = [
        ("Camera", camera_name(exif)),
        ("Lens", _text(exif.get("LensModel"))),
        ("Exposure", exposure_text(exif.get("ExposureTime"))),
        ("Aperture", f"f/{_trim(aperture)}" if aperture else None),
        ("ISO", str(int(iso_number)) if iso_number else None),
        ("Focal length", f"{_trim(focal)} mm" if focal else None),
        ("Taken at", taken_at_text(exif.get("DateTimeOriginal") or exif.get("DateTime"))),
        ("Software", _text(exif.get("Software"))),
    ]
    return [(label, value) for label, value in rows if value]


def coordinate(value: Any, positive: str, negative: str) -> str:
    number_ = as_float(value)
    if number_ is None:
        return "—"
    return f"{abs(number_):.5f}° {positive if number_ >= 0 else negative}"


TEMPLATE_FILTERS = {
    "filesize": filesize,
    "sentence": sentence,
    "number": number,
    "coordinate": coordinate,
    "rejection_words": rejection_words,
}
