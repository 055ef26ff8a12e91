"""Benchmark the derivative pipeline: ours vs a naive Pillow pipeline vs pyvips, plus peak memory.

    python bench/bench_pipeline.py [--runs N] [--strict] [--skip-memory]

1. Speed, on a 12 MP JPEG with EXIF, all three in the same process, runs interleaved, medians:
   - ours:   imaging.process_image(data, [preview 1440, thumb 256])
   - naive:  the straightforward Pillow pipeline: for each derivative a full decode,
             exif_transpose, convert("RGB"), a Lanczos resize from the full image and a WebP
             encode with Pillow's defaults (method 4).  Shown again at our WebP effort, and as
             "decode once" (one full decode shared by both resizes), to separate the gains of
             decoding once, decoding small, and the encoder setting.
   - pyvips: thumbnail_buffer (shrink-on-load) per derivative + webpsave_buffer(Q=80,
             keep=none) at the same WebP effort as ours; libvips' operation cache is off,
             as every upload is a new image.
2. Peak memory: a 100 MP JPEG is written to a temporary file by one child process and processed
   by another, which reports its own peak RSS (ru_maxrss) so the generator's memory is not counted.

Targets: ours/pyvips <= 1.1, naive/ours >= 4, 100 MP peak RSS < 300 MB.  Prints PASS/FAIL for
each; the exit code is 0 unless --strict is given and a target fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # imagefactory
sys.path.insert(0, str(ROOT / "application"))  # imageservice, also without an editable install

from PIL import Image, ImageOps  # noqa: E402

import imagefactory  # noqa: E402
from imageservice.core import imaging  # noqa: E402

SPECS = [imaging.DerivativeSpec("preview", 1440), imaging.DerivativeSpec("thumb", 256)]
QUALITY = 80
EFFORT = imaging.encoding.WEBP_METHOD  # the WebP effort our pipeline uses; pyvips gets the same
RESULTS = ROOT / "bench" / "results" / "bench_pipeline.json"

TARGET_VS_PYVIPS = 1.1
TARGET_VS_NAIVE = 4.0
TARGET_RSS_MB = 300
MEMORY_SIZE = (12000, 8333)  # 99,996,000 pixels: just inside the 100 MP limit


# --- the contenders ---------------------------------------------------------------------------


def ours(data: bytes) -> list[bytes]:
    result = imaging.process_image(data, SPECS)
    return [encoded.data for encoded in result.derivatives.values()]


def _full_decode(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def naive(data: bytes, method: int = 4) -> list[bytes]:
    """The straightforward pipeline: each derivative decodes the full image and resizes it."""
    return [_encode_from_full(_full_decode(data), spec, method) for spec in SPECS]


def naive_decode_once(data: bytes) -> list[bytes]:
    """One full decode shared by both derivatives, each resized from the full image."""
    image = _full_decode(data)
    return [_encode_from_full(image, spec, 4) for spec in SPECS]


def _encode_from_full(image: Image.Image, spec, method: int) -> bytes:
    scale = min(1.0, spec.long_edge / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(buffer, "WEBP", quality=QUALITY, method=method)
    return buffer.getvalue()


def naive_same_effort(data: bytes) -> list[bytes]:
    return naive(data, method=EFFORT)


def make_pyvips() -> Callable[[bytes], list[bytes]] | None:
    try:
        import pyvips
    except (ImportError, OSError):
        return None
    pyvips.cache_set_max(0)

    def with_pyvips(data: bytes) -> list[bytes]:
        return [
            pyvips.Image.thumbnail_buffer(data, spec.long_edge).webpsave_buffer(Q=QUALITY, effort=EFFORT, keep="none")
            for spec in SPECS
        ]

    return with_pyvips


# --- timing -----------------------------------------------------------------------------------


def time_side_by_side(contenders: dict[str, Callable[[bytes], list[bytes]]], data: bytes, runs: int) -> dict[str, float]:
    """Median seconds per contender; runs interleaved so drift hits everyone alike."""
    for run in contenders.values():  # warm-up: imports, plugin registration, caches
        run(data)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, run in contenders.items():
            started = time.perf_counter()
            run(data)
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- memory (child processes) -----------------------------------------------------------------


def child_generate(path: str) -> None:
    """Write a photo-like 100 MP JPEG with EXIF (smooth content upscaled: cheap to make)."""
    width, height = MEMORY_SIZE
    small = imagefactory.photo_like(width // 8, height // 8)
    small.resize((width, height), Image.Resampling.BICUBIC).save(
        path, "JPEG", quality=85, exif=imagefactory.make_exif().tobytes()
    )


def _proc_status_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process from /proc (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child_process(path: str) -> None:
    """Process the file and report this process's own peak RSS.

    ru_maxrss is what was asked for, but on Linux a spawned child starts with its parent's
    high-water mark, so the parent runs this before it has grown; VmHWM (the peak of this
    process's own address space) is reported next to it.
    """
    data = Path(path).read_bytes()
    rss_before = _proc_status_mb("VmRSS")
    started = time.perf_counter()
    result = imaging.process_image(data, SPECS)
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "input_bytes": len(data),
        "size": [result.info.width, result.info.height],
        "seconds": elapsed,
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vm_hwm_mb": _proc_status_mb("VmHWM"),
    }))


def measure_memory() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "100mp.jpg")
        subprocess.run([sys.executable, __file__, "--child-generate", path], check=True)
        output = subprocess.run(
            [sys.executable, __file__, "--child-process", path], check=True, capture_output=True, text=True
        ).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- report -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per contender (>= 7)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 100 MP peak-RSS measurement")
    parser.add_argument("--child-generate", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--child-process", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_generate:
        child_generate(args.child_generate)
        return 0
    if args.child_process:
        child_process(args.child_process)
        return 0
    runs = max(7, args.runs)

    # Measured first, while this parent process is still small (see child_process).
    memory = None if args.skip_memory else measure_memory()

    data = imagefactory.large_jpeg_bytes(12, exif=True)
    with Image.open(io.BytesIO(data)) as probe:
        print(f"input: {probe.width}x{probe.height} JPEG with EXIF, {len(data) / 1e6:.1f} MB; "
              f"derivatives {', '.join(f'{s.name} {s.long_edge}px' for s in SPECS)}, WebP q{QUALITY}")

    contenders: dict[str, Callable[[bytes], list[bytes]]] = {
        "ours (process_image)": ours,
        "naive Pillow (defaults: webp method 4)": naive,
        f"naive Pillow (webp method {EFFORT})": naive_same_effort,
        "naive Pillow, decode once (method 4)": naive_decode_once,
    }
    with_pyvips = make_pyvips()
    if with_pyvips is not None:
        contenders[f"pyvips thumbnail_buffer (effort {EFFORT})"] = with_pyvips
    medians = time_side_by_side(contenders, data, runs)

    print(f"\n{'pipeline':44} {'median ms':>10}   ({runs} runs each, interleaved)")
    for name, seconds in medians.items():
        print(f"{name:44} {seconds * 1000:10.1f}")

    ours_s = medians["ours (process_image)"]
    naive_ratio = medians["naive Pillow (defaults: webp method 4)"] / ours_s
    naive_same_ratio = medians[f"naive Pillow (webp method {EFFORT})"] / ours_s
    results: dict = {"medians_ms": {k: round(v * 1000, 1) for k, v in medians.items()}, "runs": runs}
    failures = []

    print()
    if with_pyvips is not None:
        pyvips_ratio = ours_s / medians[f"pyvips thumbnail_buffer (effort {EFFORT})"]
        ok = pyvips_ratio <= TARGET_VS_PYVIPS
        failures += [] if ok else ["ours/pyvips"]
        print(f"ours / pyvips   {pyvips_ratio:5.2f}   target <= {TARGET_VS_PYVIPS:.2f}   {verdict(ok)}")
        results["ours_over_pyvips"] = round(pyvips_ratio, 3)
    else:
        print("ours / pyvips   n/a     pyvips is not installed (pip install -e '.[bench]')")
    ok = naive_ratio >= TARGET_VS_NAIVE
    failures += [] if ok else ["naive/ours"]
    print(f"naive / ours    {naive_ratio:5.2f}   target >= {TARGET_VS_NAIVE:.2f}   {verdict(ok)}"
          f"   (at the same WebP effort: {naive_same_ratio:.2f})")
    results["naive_over_ours"] = round(naive_ratio, 3)
    results["naive_same_effort_over_ours"] = round(naive_same_ratio, 3)

    if memory is not None:
        ok = memory["peak_rss_mb"] < TARGET_RSS_MB
        failures += [] if ok else ["100 MP peak RSS"]
        own_peak = f"{memory['vm_hwm_mb']:.0f}" if memory["vm_hwm_mb"] is not None else "n/a"
        before = f"{memory['rss_before_mb']:.0f}" if memory["rss_before_mb"] is not None else "n/a"
        print(f"100 MP JPEG     peak RSS {memory['peak_rss_mb']:.0f} MB (ru_maxrss; VmHWM {own_peak} MB, "
              f"{before} MB before processing, input {memory['input_bytes'] / 1e6:.1f} MB), "
              f"{memory['seconds'] * 1000:.0f} ms   target < {TARGET_RSS_MB} MB   {verdict(ok)}")
        results["memory_100mp"] = memory

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {RESULTS.relative_to(ROOT)}")
    return 1 if (args.strict and failures) else 0


if __name__ == "__main__":
    sys.exit(main())
