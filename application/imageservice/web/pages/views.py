"""Page views. Every visit makes (or reuses) the visitor's workspace.

The pages are rendered on the server from the same ``ImageService`` the API uses; the browser
scripts then talk to the JSON API for everything that changes (uploads, edits, conversions).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from flask import current_app, render_template, request

from ...core.errors import NotFound
from ...core.ids import is_id
from ...core.records import TERMINAL
from ...service import UPLOAD_CONTENT_TYPES
from ..sessions import csrf_token, current_principal, ensure_workspace
from . import bp

# What the file picker offers; the server and the processor decide for real.
UPLOAD_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".dib",
    ".ico", ".heic", ".heif", ".avif",
)
CONVERT_FORMATS = (("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WebP"), ("avif", "AVIF"), ("gif", "GIF"),
                   ("tiff", "TIFF"), ("bmp", "BMP"))
FITS = (("contain", "Contain: fit inside, keep proportions"),
        ("cover", "Cover: fill the box, crop the rest"),
        ("fill", "Fill: stretch to the exact size"))
NOT_FOUND_WORDS = ("There is no image at this address in your workspace. It may have been deleted, "
                   "or it belongs to another workspace.")
VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE_CONTROL = "no-cache"


def _components():
    return current_app.extensions["imageservice"]


# -- pages ----------------------------------------------------------------------------------------


def _workspace_context() -> dict[str, Any]:
    """The visitor's workspace (made now if needed), its principal and its quota use."""
    components = _components()
    workspace = ensure_workspace(components.settings.session_ttl)
    principal = current_principal(components.service)
    return {
        "workspace": workspace,
        "principal": principal,
        "usage": components.service.usage(principal),
        "limits": {"max_upload_bytes": components.settings.max_upload_bytes,
                   "convert_max_edge": components.settings.convert_max_edge},
    }


@bp.get("/")
def index():
    context = _workspace_context()
    return render_template(
        "index.html",
        accept=",".join(sorted(UPLOAD_CONTENT_TYPES) + list(UPLOAD_EXTENSIONS)),
        **context,
    )


@bp.get("/images/<image_id>")
def image_detail(image_id: str):
    context = _workspace_context()
    if not is_id(image_id):
        raise NotFound(NOT_FOUND_WORDS, code="image_not_found")
    try:
        record = _components().service.get(context["principal"], image_id)
    except NotFound:
        raise NotFound(NOT_FOUND_WORDS, code="image_not_found") from None
    return render_template(
        "image.html",
        image=record.to_api(include_gps=True),
        settled=record.status in TERMINAL,
        exif_rows=exif_rows(record.exif or {}),
        convert_formats=CONVERT_FORMATS,
        fits=FITS,
        **context,
    )


# -- cache-busted assets --------------------------------------------------------------------------


class AssetVersions:
    """Content hashes of static files, computed on first use and then remembered."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def version(self, folder: Path, name: str) -> str:
        """The first 12 hex digits of the file's sha256; FileNotFoundError outside ``folder``."""
        key = (str(folder), name)
        found = self._hashes.get(key)
        if found is None:
            path = (folder / name).resolve()
            if folder.resolve() not in path.parents or not path.is_file():
                raise FileNotFoundError(f"no static asset {name!r}")
            found = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            with self._lock:
                self._hashes[key] = found
        return found


_assets = AssetVersions()


def _static_folder() -> Path:
    return Path(bp.static_folder)  # type: ignore[arg-type]


def asset_url(name: str) -> str:
    """``/static/<name>?v=<first 12 hex of its sha256>``: a new content gets a new URL."""
    return f"{bp.static_url_path}/{name}?v={_assets.version(_static_folder(), name)}"


@bp.app_context_processor
def page_helpers() -> dict[str, Any]:
    return {"asset_url": asset_url, "csrf_token": csrf_token()}


# The app's own static route (Flask's default) serves the same folder and matches first.
STATIC_ENDPOINTS = frozenset({"static", f"{bp.name}.static"})


@bp.after_app_request
def cache_static(response):
    """Versioned asset URLs never change content, so browsers may keep them for a year."""
    if request.endpoint in STATIC_ENDPOINTS and response.status_code in (200, 304):
        name = (request.view_args or {}).get("filename", "")
        folder = current_app.static_folder if request.endpoint == "static" else bp.static_folder
        try:
            current = _assets.version(Path(folder), name) if folder else None
        except FileNotFoundError:
            current = None
        versioned = current is not None and request.args.get("v") == current
        response.headers["Cache-Control"] = VERSIONED_CACHE_CONTROL if versioned else UNVERSIONED_CACHE_CONTROL
    return response


# -- formatting for templates ---------------------------------------------------------------------


@bp.app_template_filter("filesize")
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


@bp.app_template_filter("sentence")
def sentence(value: Any) -> str:
    """A message as a sentence: capital first letter, final full stop."""
    text = str(value or "").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


@bp.app_template_filter("number")
def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _as_float(value: Any) -> float | None:
    """EXIF numbers arrive as numbers, "a/b" strings or [numerator, denominator] pairs."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value) and value[1]:
            return value[0] / value[1]
        if len(value) == 1:
            return _as_float(value[0])
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


def camera_name(exif: dict[str, Any]) -> str | None:
    make, model = _text(exif.get("Make")), _text(exif.get("Model"))
    if make and model and model.lower().startswith(make.split()[0].lower()):
        return model
    return " ".join(p for p in (make, model) if p) or None


def exposure_text(value: Any) -> str | None:
    seconds = _as_float(value)
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


def exif_rows(exif: dict[str, Any]) -> list[tuple[str, str]]:
    """The EXIF facts people look for, in words, skipping what the file does not say."""
    aperture = _as_float(exif.get("FNumber"))
    focal = _as_float(exif.get("FocalLength"))
    iso = exif.get("ISOSpeedRatings", exif.get("PhotographicSensitivity"))
    iso_number = _as_float(iso[0] if isinstance(iso, (list, tuple)) and iso else iso)
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


@bp.app_template_filter("coordinate")
def coordinate(value: Any, positive: str, negative: str) -> str:
    number_ = _as_float(value)
    if number_ is None:
        return "—"
    return f"{abs(number_):.5f}° {positive if number_ >= 0 else negative}"
