"""Benchmark a batch ZIP: our streamed archive into the local blob store vs Debian's `zip -0`.

    python bench/bench_zip.py [--rounds N] [--files 30] [--size-mb 3] [--strict]

Input: ``--files`` originals of ``--size-mb`` MB of noise (incompressible, like JPEGs), stored
through FilesystemBlobStore, so both contenders read the very same files on local disk:

- ours:   core.archive.write_zip reading each original with ``blobs.get`` and writing through
          ``blobs.open_writer`` (a temporary file, fsynced, renamed into place: what a batch does)
- zip -0: ``zip -0 -q out.zip files...`` (subprocess) over the store's files, into the same folder

Rounds are interleaved (machine noise hits both alike) after one warm-up each; the table shows
medians. Target: ours >= 0.7x zip's throughput. Shown for information, when installed and
written through the same sink: the streaming-ZIP packages that were candidates (zipstream-ng,
stream-zip), and each contender's peak Python memory (tracemalloc, a separate pass).
The exit code is 0 unless --strict is given and the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "application"))  # imageservice, also without an editable install

from imageservice.adapters.local.blobstore import FilesystemBlobStore, LocalUrlSigner  # noqa: E402
from imageservice.core.archive import ZIP_CONTENT_TYPE, ArchiveEntry, write_zip  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bench_zip.json"
TARGET_VS_ZIP = 0.7
MB = 1_000_000
OURS, ZIP = "ours (write_zip -> open_writer)", "zip -0 (Info-ZIP)"


def store_originals(blobs: FilesystemBlobStore, count: int, size: int) -> list[str]:
    keys = [f"originals/bench/{n:03d}" for n in range(count)]
    for key in keys:
        blobs.put(key, os.urandom(size), "image/jpeg")
    return keys


def read_when_written(blobs: FilesystemBlobStore, key: str):
    """The original's bytes, fetched when the archive reaches its entry and let go after it."""
    yield blobs.get(key)


def ours(blobs: FilesystemBlobStore, keys: list[str], out_key: str) -> None:
    # The size a batch takes from the image's record; one original in memory at a time.
    entries = (ArchiveEntry(f"{key.rsplit('/', 1)[-1]}.jpg", "image/jpeg", read_when_written(blobs, key),
                            size=blobs.size(key)) for key in keys)

    with blobs.open_writer(out_key, ZIP_CONTENT_TYPE) as sink:
        write_zip(sink, entries)


def info_zip(blobs: FilesystemBlobStore, keys: list[str], out_key: str) -> None:
    out = blobs.root / out_key
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # zip would add to an existing archive
    subprocess.run(["zip", "-0", "-q", str(out), *(str(blobs.root / key) for key in keys)], check=True)


def make_zipstream_ng() -> Callable | None:
    try:
        import zipstream
    except ImportError:
        return None

    def with_zipstream_ng(blobs: FilesystemBlobStore, keys: list[str], out_key: str) -> None:
        archive = zipstream.ZipStream(compress_type=zipfile.ZIP_STORED, sized=False)
        for key in keys:
            archive.add(read_when_written(blobs, key), f"{key.rsplit('/', 1)[-1]}.jpg")
        with blobs.open_writer(out_key, ZIP_CONTENT_TYPE) as sink:
            for block in archive:
                sink.write(block)

    return with_zipstream_ng


def make_stream_zip() -> Callable | None:
    try:
        from stream_zip import NO_COMPRESSION_64, stream_zip
    except ImportError:
        return None
    from datetime import datetime
    from stat import S_IFREG

    def with_stream_zip(blobs: FilesystemBlobStore, keys: list[str], out_key: str) -> None:
        # NO_COMPRESSION_64 without a size and CRC buffers each file to write them before it.
        now = datetime.now()
        members = ((f"{key.rsplit('/', 1)[-1]}.jpg", now, S_IFREG | 0o644, NO_COMPRESSION_64,
                    read_when_written(blobs, key)) for key in keys)
        with blobs.open_writer(out_key, ZIP_CONTENT_TYPE) as sink:
            for block in stream_zip(members):
                sink.write(block)

    return with_stream_zip


def time_side_by_side(contenders: dict[str, Callable], blobs, keys, rounds: int) -> dict[str, list[float]]:
    for name, run in contenders.items():  # warm-up: imports, the page cache, the output folder
        run(blobs, keys, f"batches/bench/warm-{len(name)}.zip")
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for number in range(rounds):
        for index, (name, run) in enumerate(contenders.items()):
            out_key = f"batches/bench/{index}.zip"
            started = time.perf_counter()
            run(blobs, keys, out_key)
            samples[name].append(time.perf_counter() - started)
            blobs.delete(out_key)
    return samples


def peak_python_memory(run: Callable, blobs, keys) -> int:
    tracemalloc.start()
    try:
        run(blobs, keys, "batches/bench/memory.zip")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        blobs.delete("batches/bench/memory.zip")


def check_archive(blobs: FilesystemBlobStore, keys: list[str]) -> None:
    ours(blobs, keys, "batches/bench/check.zip")
    with zipfile.ZipFile(blobs.root / "batches/bench/check.zip") as archive:
        assert archive.testzip() is None and len(archive.namelist()) == len(keys)
        assert archive.read(archive.namelist()[0]) == blobs.get(keys[0])
    blobs.delete("batches/bench/check.zip")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per contender (>= 5)")
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--size-mb", type=float, default=3.0)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if shutil.which("zip") is None:
        print("zip is not installed (apt-get install zip)", file=sys.stderr)
        return 2
    rounds = max(5, args.rounds)
    size = int(args.size_mb * MB)
    folder = Path(tempfile.mkdtemp(prefix="bench-zip-"))
    try:
        blobs = FilesystemBlobStore(folder, LocalUrlSigner("bench", "http://localhost"))
        keys = store_originals(blobs, args.files, size)
        total = len(keys) * size
        check_archive(blobs, keys)
        contenders: dict[str, Callable] = {OURS: ours, ZIP: info_zip}
        for label, maker in (("zipstream-ng 1.x (information)", make_zipstream_ng),
                             ("stream-zip NO_COMPRESSION_64 (information)", make_stream_zip)):
            candidate = maker()
            if candidate is not None:
                contenders[label] = candidate
        print(f"input: {len(keys)} originals of {size / MB:.1f} MB of noise ({total / MB:.0f} MB) in {folder}")
        samples = time_side_by_side(contenders, blobs, keys, rounds)
        memory = {name: peak_python_memory(run, blobs, keys) for name, run in contenders.items() if name != ZIP}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"\n{'contender':44} {'median ms':>10} {'MB/s':>8} {'x zip':>6} {'peak py MB':>11}"
          f"   ({rounds} rounds, interleaved)")
    for name, seconds in medians.items():
        peak = f"{memory[name] / MB:11.2f}" if name in memory else f"{'-':>11}"
        print(f"{name:44} {seconds * 1000:10.1f} {total / seconds / MB:8.0f} {medians[ZIP] / seconds:6.2f} {peak}")
    for name in ("zipstream-ng 1.x (information)", "stream-zip NO_COMPRESSION_64 (information)"):
        if name not in medians:
            print(f"{name:44} {'not installed':>10}")

    ratio = medians[ZIP] / medians[OURS]  # throughput ratio: same bytes, so the inverse of the times
    ok = ratio >= TARGET_VS_ZIP
    print(f"\nours / zip -0 throughput  {ratio:5.2f}   target >= {TARGET_VS_ZIP:.2f}   {'PASS' if ok else 'FAIL'}"
          f"   (ours fsyncs the archive before publishing it; zip does not)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "files": len(keys), "file_bytes": size, "rounds": rounds,
        "medians_ms": {k: round(v * 1000, 1) for k, v in medians.items()},
        "samples_ms": {k: [round(v * 1000, 1) for v in values] for k, values in samples.items()},
        "peak_python_bytes": memory, "ours_over_zip": round(ratio, 3),
    }, indent=2) + "\n")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
