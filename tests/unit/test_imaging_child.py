"""imaging_child._serve_one: how a failed job is named, told from what the child can see."""

from __future__ import annotations

import pytest

from imageservice.adapters import imaging_child
from imageservice.core.errors import ImageRejected

MIB = 1024 * 1024


def _failing_with(decoded_bytes: int | None):
    def run_imaging(kind, data, args):
        rejection = ImageRejected("corrupt", "the image could not be decoded: could not create decoder object")
        rejection.decoded_bytes = decoded_bytes
        raise rejection

    return run_imaging


@pytest.mark.parametrize(
    ("decoded_bytes", "headroom", "status"),
    [
        (64 * MIB, 40 * MIB, "too_expensive"),  # its pixels alone could not fit under the ceiling
        (64 * MIB, 400 * MIB, "error"),  # room enough: the file is what is broken
        (None, 40 * MIB, "error"),  # size unknown: the decoder's word stands
    ],
)
def test_a_decode_that_could_not_fit_is_too_expensive_whatever_the_decoder_called_it(
    monkeypatch, decoded_bytes, headroom, status
):
    monkeypatch.setattr(imaging_child, "run_imaging", _failing_with(decoded_bytes))
    # A ceiling this far above what the process holds now; far above its peak, so the
    # near-the-ceiling rule cannot decide instead.
    ceiling = imaging_child._status_bytes("VmSize") + headroom
    monkeypatch.setattr(imaging_child, "NEAR_CEILING", 10.0)
    outcome, payload = imaging_child._serve_one("process", b"", (), ceiling)
    assert outcome == status
    if status == "error":
        assert payload[1] == "corrupt"
    else:
        assert "MiB of memory allowed" in payload
