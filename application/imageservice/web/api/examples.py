"""One example per request body and per answer, for /api/openapi.json and the docs page built
from it. Each is an instance of its schema: tests/unit/test_openapi_examples.py validates them."""

from __future__ import annotations

IMAGE_ID = "01JF3Q8ZQ7W9V6M2K4T5R8N1BX"
LOGO_ID = "01JF3Q9B2C4D6E8F0G1H2J3K4M"
USER_ID = "alice"
_SIGNED = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature=5d41402abc4b2a76b9719d911017c592"

_IMAGE = {
    "image_id": IMAGE_ID, "user_id": USER_ID, "status": "ready", "filename": "beach.jpg",
    "content_type": "image/jpeg", "size": 2483117, "tags": ["holiday", "2026"], "description": "Low tide",
    "created_at": "2026-08-14T09:21:07.123Z", "uploaded_at": "2026-08-14T09:21:08.410Z",
    "processed_at": "2026-08-14T09:21:08.690Z", "expires_at": None,
    "width": 4032, "height": 3024, "format": "JPEG", "mode": "RGB", "frames": 1, "animated": False,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "exif": {"Make": "Fujifilm", "Model": "X-T5", "FNumber": 5.6, "ISOSpeedRatings": 200},
    "gps": {"latitude": 43.2965, "longitude": 5.3698, "altitude": 12.0},
    "derivatives": {"thumb": {"width": 256, "height": 192, "format": "WEBP", "bytes": 9812},
                    "preview": {"width": 1440, "height": 1080, "format": "WEBP", "bytes": 148220}},
    "blurhash": "LKO2?U%2Tw=w]~RBVZRi};RPxuwH",
    "error": None,
    "shared_until": "2026-08-21T09:30:00.000Z",
}

_SHARE = "https://images.example.com/s/Vq3kz0Q1hN8mYp2TfW7sLc4d"
_LINK = {
    "link_id": "Vq3kz0Q1hN8mYp2TfW7sLc4d", "image_id": IMAGE_ID, "url": _SHARE,
    "srcset": f"{_SHARE}/w/64 64w, {_SHARE}/w/640 640w, {_SHARE}/w/1200 1200w",
    "embed_html": f'<img src="{_SHARE}/w/828" srcset="{_SHARE}/w/64 64w, {_SHARE}/w/640 640w, {_SHARE}/w/1200 1200w" '
                  'sizes="(max-width: 828px) 100vw, 828px" width="4032" height="3024" alt="beach">',
    "original": False, "created_at": "2026-08-14T09:30:00.000Z", "expires_at": "2026-08-21T09:30:00.000Z",
    "views": 17,
}

REQUESTS = {
    "UploadRequest": {"content_type": "image/jpeg", "size": 2483117, "filename": "beach.jpg",
                      "tags": ["holiday", "2026"], "description": "Low tide"},
    "UpdateRequest": {"tags": ["holiday", "best"], "description": "Low tide, Marseille"},
    "LinkRequest": {"expires_in": 604800, "original": False},
    "BatchRequest": {"action": "convert", "image_ids": [IMAGE_ID], "convert": {"format": "webp", "width": 1600}},
    "BulkDeleteRequest": {"image_ids": [IMAGE_ID]},
    "ConvertRequest": {"format": "webp", "width": 1200, "fit": "contain", "quality": 80,
                       "watermark": {"text": "© Alice", "position": "bottom-right", "opacity": 0.5, "scale": 0.2}},
}

RESPONSES = {
    "UploadTicket": {
        "image_id": IMAGE_ID, "upload_url": f"https://images.example.com/blobs/originals/{USER_ID}/{IMAGE_ID}?{_SIGNED}",
        "upload_method": "PUT", "upload_headers": {"Content-Type": "image/jpeg", "Content-Length": "2483117"},
        "expires_at": "2026-08-14T09:26:07Z", "status": "pending", "tags": ["holiday", "2026"]},
    "Completion": {"image_id": IMAGE_ID, "status": "pending"},
    "ImageList": {"images": [_IMAGE], "next_cursor": None},
    "Image": _IMAGE,
    "DownloadLink": {"download_url": f"https://images.example.com/blobs/originals/{USER_ID}/{IMAGE_ID}?{_SIGNED}",
                     "expires_at": "2026-08-14T09:26:07Z"},
    "Conversion": {"download_url": f"https://images.example.com/blobs/conversions/{USER_ID}/{IMAGE_ID}/c1.webp?{_SIGNED}",
                   "expires_at": "2026-08-14T09:26:07Z", "format": "webp", "width": 1200, "height": 900,
                   "bytes": 184320},
    "Account": {"user_id": USER_ID, "admin": False, "expires_at": None,
                "usage": {"images": 12, "bytes": 31457280, "quota_images": 1000, "quota_bytes": 1073741824},
                "limits": {"max_upload_bytes": 52428800, "max_pixels": 50000000, "max_frames": 200,
                           "convert_max_edge": 4096, "upload_url_ttl": 300, "download_url_ttl": 300,
                           "session_ttl": 3600}},
    "Batch": {"batch_id": "01J9Z3Q7M2B5X8C4V6N1R0T9KA", "action": "convert", "status": "ready", "total": 2,
              "done": 2, "items": [{"image_id": IMAGE_ID, "status": "done", "error": None},
                                   {"image_id": "01J9Z3Q7M2B5X8C4V6N1R0T9KB", "status": "skipped",
                                    "error": {"code": "not_ready", "message": "The image is pending, not ready."}}],
              "download_url": f"https://images.example.com/blobs/conversions/{USER_ID}/batches/01J9Z3Q7M2B5X8C4V6N1R0T9KA.zip?{_SIGNED}",
              "expires_at": "2026-08-15T09:30:00.000Z", "bytes": 412093},
    "BulkDeleteResult": {"deleted": [IMAGE_ID], "not_found": []},
    "Link": _LINK,
    "LinkList": {"links": [_LINK]},
    "Health": {"status": "ok"},
    "Readiness": {"status": "ready", "checks": {"blobs": "ok", "catalog": "ok", "queue": "ok"}},
}
NOT_READY = {"status": "unavailable", "checks": {"blobs": "ok", "catalog": "error: OperationalError", "queue": "ok"}}

_ERRORS = {
    400: ("invalid_parameter", "limit: Input should be greater than or equal to 1."),
    401: ("unauthenticated", "A valid Bearer token or browser session is required."),
    403: ("forbidden_user", "Only admin tokens may act for another user."),
    404: ("image_not_found", "No such image."),
    409: ("not_ready", "The image is not ready yet."),
    413: ("too_large", "The file is larger than 52428800 bytes."),
    415: ("unsupported_format", "image/svg+xml is not a supported image type."),
    422: ("idempotency_key_reused", "This Idempotency-Key was used with another request."),
    429: ("rate_limited", "Too many uploads; try again in 12 s."),
}


def error_for(status: int) -> dict:
    code, message = _ERRORS[status]
    return {"error": {"code": code, "message": message}}
