"""A bounded fuzz test of the imaging gate: mutated files end processed or rejected with a code.

Seeds: every file of the shared corpus (``../shared/corpus``, skipped with a reason where it is
absent) and fixtures made here with Pillow.  Each case applies one to three mutations drawn by
Hypothesis (bit flips, truncations, chunk splices, header edits) and runs ``process_image``,
and for some cases ``convert_image`` too.  The only outcomes allowed are a result, an
``ImageRejected`` with a known code, or (conversions) ``Unprocessable("limit_exceeded")``:
nothing else may escape.

Bounded: ``IMAGESERVICE_FUZZ_EXAMPLES`` cases per seed (default 15; runs are derandomised, so CI
sees the same cases every time): 2 551 cases with the corpus, 20-60 s on one core depending on
the machine's load.  Each test records its case count with ``record_property``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import imagefactory as f
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imageservice.core import imaging
from imageservice.core.conversions import ConversionRequest
from imageservice.core.errors import REJECTION_CODES, ImageRejected, Unprocessable

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
EXAMPLES_PER_SEED = int(os.environ.get("IMAGESERVICE_FUZZ_EXAMPLES", "15"))
# Slow enough cases would show a hang or a bomb getting through; generous for a shared machine.
CASE_SECONDS = 20

SPECS = [imaging.DerivativeSpec("preview", 1440), imaging.DerivativeSpec("thumb", 256)]
# The defaults, a little tighter, so that a mutation that only grows a header field cannot turn
# a case into a minute of legitimate decoding.
LIMITS = imaging.ImagingLimits(max_pixels=40_000_000, max_animation_pixels=200_000_000, max_frames=300)

pytestmark = [
    pytest.mark.fuzz,
    # Pillow warns about damaged tags in mutated files; the outcome is what is tested.
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def generated_seeds() -> dict[str, bytes]:
    seeds = {
        "jpeg-exif-gps": f.jpeg_bytes(96, 64, orientation=6, gps=(52.5, 13.4, 34.0)),
        "progressive-jpeg": f._save(f.photo_like(80, 60), "JPEG", progressive=True),  # noqa: SLF001
        "cmyk-jpeg": f.cmyk_jpeg_bytes(),
        "png": f.png_bytes(80, 60),
        "png16": f.png16_bytes(40, 30),
        "gif": f.gif_bytes(80, 60),
        "animated-gif": f.animated_gif_bytes(4, 40, 30),
        "webp": f.webp_bytes(80, 60),
        "webp-alpha": f.webp_bytes(80, 60, alpha=True),
        "animated-webp": f.animated_webp_bytes(4, 40, 30),
        "apng": f.animated_png_bytes(4, 40, 30),
        "tiff": f.tiff_bytes(80, 60),
        "tiff-pages": f.tiff_bytes(40, 30, pages=3),
        "bmp": f.bmp_bytes(40, 30),
        "ico": f.ico_bytes(32),
    }
    if f.can_encode_heif():
        seeds["heic"] = f.heic_bytes(64, 48)
        seeds["avif"] = f.avif_bytes(64, 48)
    return seeds


def corpus_seeds() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.is_file() and path.name not in ("MANIFEST.tsv", "README.md", "LICENSES.md")
    )


GENERATED = generated_seeds()
CORPUS_FILES = corpus_seeds()
SEED_IDS = [f"generated/{name}" for name in GENERATED] + [f"corpus/{path}" for path in CORPUS_FILES]
INTERESTING_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


def seed_bytes(seed_id: str) -> bytes:
    origin, _, name = seed_id.partition("/")
    return GENERATED[name] if origin == "generated" else (CORPUS / name).read_bytes()


# --- mutations ---------------------------------------------------------------------------------


@st.composite
def bit_flips(draw, data: bytes) -> bytes:
    mutated = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(mutated) - 1))
        mutated[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(mutated)


@st.composite
def truncation(draw, data: bytes) -> bytes:
    return data[: draw(st.integers(0, max(0, len(data) - 1)))]


@st.composite
def chunk_splice(draw, data: bytes) -> bytes:
    """A run of bytes from this file or another seed, inserted or written over a run of this one."""
    donor = data if draw(st.booleans()) else GENERATED[draw(st.sampled_from(sorted(GENERATED)))]
    start = draw(st.integers(0, len(donor) - 1))
    piece = donor[start : start + draw(st.integers(1, 512))]
    at = draw(st.integers(0, len(data)))
    replace = draw(st.integers(0, 512)) if draw(st.booleans()) else 0
    return data[:at] + piece + data[at + replace :]


@st.composite
def header_edit(draw, data: bytes) -> bytes:
    """Sizes, counts and offsets live in the first bytes: write extreme integers there."""
    mutated = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        width = draw(st.sampled_from((1, 2, 4)))
        value = draw(st.sampled_from(INTERESTING_INTS)) & ((1 << (8 * width)) - 1)
        order = draw(st.sampled_from(("big", "little")))
        position = draw(st.integers(0, max(0, min(len(mutated), 96) - width)))
        mutated[position : position + width] = value.to_bytes(width, order)
    return bytes(mutated)


MUTATIONS = {"bit_flips": bit_flips, "truncation": truncation, "chunk_splice": chunk_splice, "header_edit": header_edit}


@st.composite
def mutated(draw, data: bytes) -> tuple[list[str], bytes]:
    applied = []
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        name = draw(st.sampled_from(sorted(MUTATIONS)))
        data = draw(MUTATIONS[name](data))
        applied.append(name)
    return applied, data


# --- the gate ----------------------------------------------------------------------------------

CASES: dict[str, int] = {"cases": 0, "processed": 0, "converted": 0}


def run_case(data: bytes, convert_to: str | None) -> None:
    """The imaging gate on one mutated file: any result is fine, any other exception is a bug."""
    CASES["cases"] += 1
    started = time.monotonic()
    try:
        result = imaging.process_image(data, SPECS, LIMITS)
    except ImageRejected as rejected:
        assert rejected.code in REJECTION_CODES
    else:
        CASES["processed"] += 1
        assert isinstance(result, imaging.ProcessedImage)
        assert result.info.width >= 1 and set(result.derivatives) == {"preview", "thumb"}
        if convert_to:
            try:
                encoded = imaging.convert_image(data, ConversionRequest(convert_to, width=64), LIMITS)
            except ImageRejected as rejected:
                assert rejected.code in REJECTION_CODES
            except Unprocessable as refused:
                assert refused.code == "limit_exceeded"
            else:
                CASES["converted"] += 1
                assert encoded.data and encoded.width <= 64
    assert time.monotonic() - started < CASE_SECONDS


@pytest.mark.parametrize("seed_id", SEED_IDS)
def test_mutations_end_processed_or_rejected(seed_id, record_property):
    if seed_id.startswith("corpus/") and not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    data = seed_bytes(seed_id)
    before = CASES["cases"]

    @settings(
        max_examples=EXAMPLES_PER_SEED,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=mutated(data), convert_to=st.none() | st.sampled_from(imaging.CONVERT_FORMATS))
    def fuzz(case, convert_to):
        _, mutated_bytes = case
        run_case(mutated_bytes, convert_to)

    fuzz()
    record_property("fuzz_cases", CASES["cases"] - before)


def test_the_corpus_is_fuzzed_where_it_exists():
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the checkout, not in it)")
    assert len(CORPUS_FILES) > 100  # every file, not a sample


def test_the_gate_itself_fails_on_an_escaping_exception(monkeypatch):
    # The harness can fail: an unexpected exception from the gate is not swallowed.
    def broken(*args, **kwargs):
        raise KeyError("escaped")

    monkeypatch.setattr(imaging, "process_image", broken)
    with pytest.raises(KeyError):
        run_case(GENERATED["png"], None)
