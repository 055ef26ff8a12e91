"""Every row of the shared corpus (../shared/corpus/MANIFEST.tsv) through imaging.process_image.

The corpus sits beside the checkout (in development and CI), never inside it; the module is
skipped where it is absent.  Files are read in place and never copied into the project.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from imageservice.core import imaging
from imageservice.core.errors import ImageRejected

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
MANIFEST = CORPUS / "MANIFEST.tsv"

if not MANIFEST.is_file():
    pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the checkout, not in it)", allow_module_level=True)

pytestmark = [
    pytest.mark.corpus,
    # Pillow warns about damaged tags in the hostile files; the outcome is what is tested.
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

SPECS = [imaging.DerivativeSpec("preview", 1440), imaging.DerivativeSpec("thumb", 256)]
HANG_GUARD_SECONDS = 30

# What a rejection must say for each kind of expected rejection.
EXPECTED_CODES = {
    "reject-bomb": {"too_many_pixels", "too_many_frames"},
    "reject-not-image": {"not_an_image"},
    "reject-unsupported": {"unsupported_format"},
    "reject-corrupt": {"corrupt"},
}
# Payload markers that must never survive into a derivative (the "note" rows' concern).
PAYLOAD_MARKERS = (b"<?php", b"<?=", b"<script", b"alert(1)", b"/etc/passwd", b"system($_GET")


def _rows() -> list[dict[str, str]]:
    with MANIFEST.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


ROWS = _rows()


def _magic_is_gone(data: bytes) -> bool:
    """True when the file no longer starts with any supported signature (so not_an_image is fair)."""
    try:
        imaging.sniff(data)
    except ImageRejected:
        return True
    return False


@pytest.mark.parametrize("row", ROWS, ids=[row["path"] for row in ROWS])
def test_corpus_row(row):
    data = (CORPUS / row["path"]).read_bytes()
    expect = row["expect"]

    started = time.perf_counter()
    try:
        result = imaging.process_image(data, SPECS)
        error = None
    except ImageRejected as rejected:
        result, error = None, rejected
    elapsed = time.perf_counter() - started
    assert elapsed < HANG_GUARD_SECONDS, f"{row['path']} took {elapsed:.1f}s"

    if expect == "ok":
        assert error is None, f"{row['path']} rejected: {error!r}"
        assert set(result.derivatives) == {"preview", "thumb"}
        assert result.derivatives["thumb"].data and result.derivatives["preview"].data
        assert max(result.derivatives["thumb"].width, result.derivatives["thumb"].height) <= 256
        assert max(result.derivatives["preview"].width, result.derivatives["preview"].height) <= 1440
    elif expect == "note":
        if result is not None:
            for encoded in result.derivatives.values():
                for marker in PAYLOAD_MARKERS:
                    assert marker not in encoded.data, f"{marker!r} survived into a derivative"
    else:
        assert error is not None, f"{row['path']} was accepted, expected {expect}"
        allowed = set(EXPECTED_CODES[expect])
        if expect == "reject-corrupt" and _magic_is_gone(data):
            allowed.add("not_an_image")
        assert error.code in allowed, f"{row['path']}: {error.code} ({error.message}), expected {expect}"


def test_manifest_is_not_empty():
    assert len(ROWS) > 100
