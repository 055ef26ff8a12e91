"""Benchmark a batch conversion (docs/DESIGN.md "Batches"): 30 12-MP JPEGs to 1600-px WebP as one
batch, against converting them one after another through the same imaging runner.

    python bench/bench_batch.py [--images 30] [--rounds 3] [--strict]

- one after another: ``ImagingRunner.convert`` of each original in turn (what 30 single convert
  calls cost the imaging pool);
- as one batch: ``BatchRunner.run`` on a batch of the same images, which also reads each original
  from the local blob store and streams the ZIP into it; it converts up to ``imaging_max_jobs``
  (2) images at once, one per core.
Both use the same budgeted child-process pool (warm). Rounds alternate; medians.
Target: batch throughput >= 1.6x one after another.  Figures go to bench/results/bench_batch.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # imagefactory
sys.path.insert(0, str(ROOT / "application"))  # imageservice, also without an editable install

import imagefactory  # noqa: E402
from imageservice.bootstrap import build_components  # noqa: E402
from imageservice.core import keys  # noqa: E402
from imageservice.core.batches import Batch, BatchItem  # noqa: E402
from imageservice.core.conversions import conversion_request_from  # noqa: E402
from imageservice.core.ids import new_id  # noqa: E402
from imageservice.core.records import READY, ImageRecord  # noqa: E402
from imageservice.core.timeutil import to_iso, utcnow  # noqa: E402
from imageservice.pipeline import imaging_limits  # noqa: E402
from imageservice.settings import Settings  # noqa: E402

TARGET = 1.6
CONVERT = {"format": "webp", "width": 1600}
RESULTS = ROOT / "bench" / "results" / "bench_batch.json"


def ready_images(components, count: int) -> list[ImageRecord]:
    """``count`` ready records of alice, their originals stored (different photos, same size)."""
    records = []
    for n in range(count):
        data = imagefactory.large_jpeg_bytes(12, exif=False, quality=88 + n % 5)
        image_id = new_id()
        record = ImageRecord(image_id=image_id, user_id="alice", status=READY, filename=f"photo-{n}.jpg",
                             content_type="image/jpeg", size=len(data), created_at=to_iso(utcnow()),
                             original_key=keys.original_key("alice", image_id, False))
        components.blobs.put(record.original_key, data, "image/jpeg")
        components.catalog.create(record)
        records.append(record)
    return records


def one_after_another(components, records: list[ImageRecord]) -> float:
    limits = imaging_limits(components.settings)
    started = time.perf_counter()
    for record in records:
        original = components.blobs.get(record.original_key)
        components.imaging.convert(original, conversion_request_from(CONVERT), limits)
    return time.perf_counter() - started


def as_one_batch(components, records: list[ImageRecord]) -> float:
    now = utcnow()
    batch = Batch(batch_id=new_id(), user_id="alice", action="convert", created_at=to_iso(now),
                  expires_at=to_iso(now + timedelta(hours=1)), items=[BatchItem(r.image_id) for r in records],
                  convert=CONVERT)
    components.catalog.create_batch(batch, per_hour=10**6)
    started = time.perf_counter()
    outcome = components.batch_runner.run("alice", batch.batch_id)
    elapsed = time.perf_counter() - started
    if outcome != "ready":
        raise RuntimeError(f"the batch ended {outcome}: {components.catalog.get_batch('alice', batch.batch_id)}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.from_env({}, data_dir=Path(folder), secret_key="bench", embedded_worker=False,
                                     quota_bytes=10**12, quota_images=10**6)
        components = build_components(settings)
        records = ready_images(components, args.images)
        components.imaging.warm()
        one_after_another(components, records[:2])  # the children started
        sides: dict[str, list[float]] = {"one after another": [], "as one batch": []}
        for number in range(args.rounds):
            sides["one after another"].append(one_after_another(components, records))
            sides["as one batch"].append(as_one_batch(components, records))
            print(f"  round {number + 1}: one after another {sides['one after another'][-1]:.2f} s, "
                  f"as one batch {sides['as one batch'][-1]:.2f} s")
    median = {side: statistics.median(times) for side, times in sides.items()}
    ratio = median["one after another"] / median["as one batch"]
    ok = ratio >= TARGET
    print(f"\n{args.images} 12-MP JPEGs to 1600-px WebP ({settings.imaging_max_jobs} imaging jobs at once):")
    for side, seconds in median.items():
        print(f"  {side:18s} {seconds:6.2f} s  {args.images / seconds:5.2f} images/s")
    print(f"{'PASS' if ok else 'FAIL'}  batch throughput {ratio:.2f}x one after another (target >= {TARGET})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"images": args.images, "seconds": median, "ratio": ratio}, indent=2) + "\n")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
