"""Every row of the shared real-file corpus goes through the API and ends as its `expect` says.

ok -> ready with a thumb; reject-* -> rejected with a fitting code; note -> a terminal state and
never a server error. The upload declares no content type: the processor must sniff every file.
"""

from __future__ import annotations

import csv
from io import BytesIO

import pytest
from PIL import Image

from support import CORPUS, ApiClient, assert_error, make_settings

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason=f"no shared corpus at {CORPUS}"),
]

REJECTION_CODES = {
    "reject-corrupt": {"corrupt", "not_an_image"},
    "reject-bomb": {"too_many_pixels", "too_many_frames"},
    "reject-not-image": {"not_an_image"},
    "reject-unsupported": {"unsupported_format"},
}


def manifest_rows() -> list[dict]:
    if not (CORPUS / "MANIFEST.tsv").exists():
        return []
    with open(CORPUS / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def corpus_api(tmp_path_factory):
    from imageservice.bootstrap import build_components
    from imageservice.web import create_app
    from imageservice.entrypoints.worker import Worker

    # Every row is one upload by one owner: lift the per-minute upload limit for this run.
    components = build_components(make_settings(tmp_path_factory.mktemp("corpus"), uploads_per_minute=10_000))
    client = create_app(components=components).test_client()
    return ApiClient(client, components.service.create_token("corpus"), Worker(components))


@pytest.mark.parametrize("row", manifest_rows(), ids=lambda row: row["path"])
def test_corpus_file_meets_its_expectation(corpus_api, row):
    data = (CORPUS / row["path"]).read_bytes()
    if not data:  # size is required and at least 1: an empty file never gets an upload URL
        assert_error(corpus_api.call("POST", "/api/images/upload", json={"size": 0}), 400, "invalid_parameter")
        return
    ticket = corpus_api.ticket(size=len(data), filename=row["path"].rsplit("/", 1)[-1])
    upload = corpus_api.put(ticket, data, headers={"Content-Type": "application/octet-stream"})
    assert upload.status_code == 200, upload.get_data(as_text=True)
    corpus_api.process()
    response = corpus_api.call("GET", f"/api/images/{ticket['image_id']}")
    assert response.status_code == 200
    record = response.get_json()
    expect = row["expect"]
    if expect == "ok":
        assert record["status"] == "ready", (row["path"], record["error"])
        thumb = corpus_api.call("GET", f"/api/images/{record['image_id']}/download?variant=thumb").get_json()
        image = Image.open(BytesIO(corpus_api.fetch(thumb["download_url"]).data))
        assert image.format == "WEBP" and max(image.size) <= 256
        assert not image.getexif()
    elif expect in REJECTION_CODES:
        assert record["status"] == "rejected", (row["path"], record["status"])
        assert record["error"]["code"] in REJECTION_CODES[expect], (row["path"], record["error"])
    else:
        assert record["status"] in ("ready", "rejected"), (row["path"], record)
        if record["status"] == "ready":
            for variant in ("thumb", "preview"):
                url = corpus_api.call("GET", f"/api/images/{record['image_id']}/download?variant={variant}")
                body = corpus_api.fetch(url.get_json()["download_url"]).data
                assert b"<?php" not in body and b"<script" not in body.lower()
