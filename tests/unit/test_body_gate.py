"""BodyGate: what a request with a body must show in its headers (web/gate.py)."""

from __future__ import annotations

import pytest

from imageservice.core.errors import Forbidden
from imageservice.web.gate import BodyGate, canonical_path

API_LIMIT, UPLOAD_LIMIT = 1000, 50_000


class SignedUploads:
    """A blob endpoint that signs one key for 200 bytes of image/png."""

    def verify(self, method, key, params):
        if params.get("X-Signature") != "good" or key != "originals/alice/01H":
            raise Forbidden("The URL's signature does not match.", code="invalid_signature")
        return "verified"

    def check_upload(self, verified, content_type, content_length):
        if content_length != 200:
            raise Forbidden("This upload URL was signed for 200 bytes.", code="length_mismatch")


def check(headers: dict, *, method="POST", path="/api/images/upload", query=None, length=10):
    gate = BodyGate(api_body_limit=API_LIMIT, upload_limit=UPLOAD_LIMIT, blob_endpoint=SignedUploads())
    refusal = gate.check(method, path, query or {}, headers.get, length)
    return None if refusal is None else (refusal.status, refusal.code)


BEARER_JSON = {"Authorization": "Bearer t", "Content-Type": "application/json"}
COOKIE_JSON = {"Cookie": "a=1; imageservice_session=s", "Content-Type": "application/json; charset=utf-8"}


def test_a_token_or_a_cookie_with_its_csrf_header_may_send_json():
    assert check(BEARER_JSON) is None
    assert check({**COOKIE_JSON, "X-CSRF-Token": "t"}) is None
    # a browser's first write comes with its visitor cookie only
    assert check({"Cookie": "imageservice_visitor=v", "Content-Type": "application/json", "X-CSRF-Token": "t"}) is None
    assert check({**BEARER_JSON, "Content-Type": "application/merge-patch+json"}, method="PATCH") is None


@pytest.mark.parametrize("headers, length, refused", [
    ({"Content-Type": "application/json"}, 10, (401, "unauthorized")),
    ({"Cookie": "other=1", "Content-Type": "application/json"}, 10, (401, "unauthorized")),
    (COOKIE_JSON, 10, (403, "csrf_failed")),
    ({**BEARER_JSON, "Content-Type": "application/x-www-form-urlencoded"}, 10, (415, "unsupported_media_type")),
    ({**BEARER_JSON, "Content-Type": None}, 10, (415, "unsupported_media_type")),
    (BEARER_JSON, API_LIMIT + 1, (413, "too_large")),
    ({}, API_LIMIT + 1, (413, "too_large")),  # the size first: nothing else about it matters
    (BEARER_JSON, None, (411, "length_required")),
])
def test_what_the_headers_alone_refuse(headers, length, refused):
    assert check({k: v for k, v in headers.items() if v is not None}, length=length) == refused


def test_a_doubled_slash_is_held_to_the_same_rules():
    assert canonical_path("//api//x") == "/api//x"
    assert check({"Content-Type": "application/json"}, path="//api/images/upload") == (401, "unauthorized")


def test_a_blob_upload_is_held_to_its_signature_and_the_upload_limit():
    headers = {"Content-Type": "image/png"}
    good = {"X-Signature": "good"}
    assert check(headers, method="PUT", path="/blobs/originals/alice/01H", query=good, length=200) is None
    assert check(headers, method="PUT", path="/blobs/originals/alice/01H", query={"X-Signature": "bad"},
                 length=200) == (403, "invalid_signature")
    assert check(headers, method="PUT", path="/blobs/originals/alice/01H", query=good,
                 length=201) == (403, "length_mismatch")
    assert check(headers, method="PUT", path="/blobs/originals/alice/01H", query=good,
                 length=UPLOAD_LIMIT + 1) == (413, "too_large")


def test_other_paths_only_have_the_size_limit():
    assert check({}, path="/", length=API_LIMIT) is None
    assert check({}, path="/", length=API_LIMIT + 1) == (413, "too_large")
