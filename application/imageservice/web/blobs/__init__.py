"""The local blob endpoint: what S3 is in aws mode. Every request must carry a valid signature.

It speaks to storage only through the SignedUrlEndpoint port; the errors it raises are domain
errors, which web/errors.py turns into the JSON error shape.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.wsgi import wrap_file

from ...core.errors import PayloadTooLarge
from ...ports import SignedUrlEndpoint

bp = Blueprint("blobs", __name__)
CHUNK = 256 * 1024
CORS_HEADERS = {
    # The signature is the authorisation, as with S3 presigned URLs: any origin may use it.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, PUT",
    "Access-Control-Allow-Headers": "Content-Type, If-None-Match",
    "Access-Control-Max-Age": "600",
}


def _components():
    return current_app.extensions["imageservice"]


def _endpoint() -> SignedUrlEndpoint:
    return _components().blob_endpoint


@bp.after_request
def add_cors(response: Response) -> Response:
    response.headers.update(CORS_HEADERS)
    return response


@bp.route("/<path:key>", methods=["OPTIONS"])
def preflight(key: str):
    return Response(status=204)


@bp.put("/<path:key>")
def upload(key: str):
    components = _components()
    store = _endpoint()
    verified = store.verify("PUT", key, request.args)
    store.check_upload(verified, request.headers.get("Content-Type"), request.content_length)
    # Single use: a record that is no longer pending takes no bytes (receive_upload also
    # refuses to replace an object that exists, atomically).
    components.service.check_upload_open(key)
    limit = components.settings.max_upload_bytes
    if verified.content_length is not None:
        limit = min(limit, verified.content_length)
    # One byte of headroom: with a server that terminates the stream (gunicorn), Werkzeug's
    # limited stream raises on the read *after* exactly max_content_length bytes, which an
    # upload of exactly the signed size makes. put_stream enforces the exact limit.
    request.max_content_length = limit + 1
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"At most {limit} bytes may be uploaded here.", code="too_large")
    size = store.receive_upload(key, iter(lambda: request.stream.read(CHUNK), b""), max_bytes=limit)
    components.service.upload_received(key)
    response = Response(status=200)
    response.headers["X-Blob-Size"] = str(size)
    return response


@bp.route("/<path:key>", methods=["GET", "HEAD"])
def download(key: str):
    store = _endpoint()
    verified = store.verify(request.method, key, request.args)
    handle = store.open(key)
    size = store.size(key)
    response = Response(
        wrap_file(request.environ, handle, CHUNK),
        mimetype=verified.response_type or "application/octet-stream",
        direct_passthrough=True,
    )
    response.content_length = size
    response.headers["Content-Disposition"] = verified.disposition or "attachment"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
