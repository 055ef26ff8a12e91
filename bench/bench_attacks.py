"""The attack files: peak memory and time with imaging inline (as before the budget)
and through the imaging pool (as now), side by side.

    python bench/bench_attacks.py [--only NAME] [--inline-cap-mib N]

Each attack file (tests/attacks.py) meets both of its jobs, ``process`` (the derivatives) and
``convert`` (the conversion that used to cost gigabytes), twice, each run in a fresh process:

- inline: the job in the measured process itself (``InlineImagingRunner``), the way a web
  worker or the job thread ran it before. The process is capped at ``--inline-cap-mib``
  (RLIMIT_AS, 6 GiB by default) only so the benchmark cannot take the machine down; a run that
  reaches the cap is reported as such.
- pool: the same job through ``ProcessImagingRunner`` with the default budget (1 GiB, 20 s);
  the measured process stands for the web worker, and its imaging children are measured apart
  (``RUSAGE_CHILDREN``: the largest child, once reaped).

Reported: the outcome, the web worker's peak RSS (VmHWM), the imaging children's peak RSS and
the wall time. Figures also go to ``bench/results/bench_attacks.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # attacks, imagefactory
sys.path.insert(0, str(ROOT / "application"))  # imageservice, also without an editable install

RESULTS = ROOT / "bench" / "results" / "bench_attacks.json"
MODES = ("inline", "pool")
JOBS = ("process", "convert")
MIB = 1024 * 1024


def measure_one(folder: str, name: str, job: str, mode: str, cap_mib: int) -> dict:
    """Run one job in this (fresh) process on the attack saved in ``folder``; what it cost."""
    from imageservice.adapters.imaging_pool import ImagingBudget, InlineImagingRunner, ProcessImagingRunner
    from imageservice.core import imaging
    from imageservice.core.conversions import conversion_request_from
    from imageservice.core.errors import ServiceError
    from imageservice.settings import Settings

    data = (Path(folder) / name).read_bytes()
    conversion = json.loads((Path(folder) / f"{name}.json").read_text())
    settings = Settings()
    limits = imaging.ImagingLimits(settings.max_pixels, settings.max_animation_pixels, settings.max_frames,
                                   settings.convert_max_edge)
    if mode == "inline":
        resource.setrlimit(resource.RLIMIT_AS, (cap_mib * MIB, cap_mib * MIB))
        runner = InlineImagingRunner()
    else:
        runner = ProcessImagingRunner(ImagingBudget.from_settings(settings))
    specs = [imaging.DerivativeSpec("preview", settings.preview_edge), imaging.DerivativeSpec("thumb", settings.thumb_edge)]
    started = time.perf_counter()
    try:
        if job == "process":
            runner.process(data, specs, limits)
        else:
            runner.convert(data, conversion_request_from(conversion), limits,
                           max_output_bytes=settings.max_upload_bytes)
        outcome = "ok"
    except MemoryError:
        outcome = f"MemoryError at the {cap_mib} MiB cap"
    except ServiceError as exc:
        outcome = f"{exc.status} {exc.code}"
    seconds = time.perf_counter() - started
    if mode == "pool":
        runner.close()  # reap the children, so RUSAGE_CHILDREN counts them
    return {
        "outcome": outcome,
        "seconds": round(seconds, 2),
        "worker_peak_mib": _vm_hwm() // MIB,
        "children_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
    }


def _vm_hwm() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def run_isolated(folder: str, name: str, job: str, mode: str, cap_mib: int) -> dict:
    command = [sys.executable, __file__, "--one", folder, name, job, mode, "--inline-cap-mib", str(cap_mib)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:  # the process itself died (the kernel's OOM killer, a codec abort)
        return {"outcome": f"process died ({done.returncode}): {done.stderr.strip()[-200:]}",
                "seconds": None, "worker_peak_mib": None, "children_peak_mib": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="one attack by name")
    parser.add_argument("--inline-cap-mib", type=int, default=6144)
    parser.add_argument("--one", nargs=4, metavar=("FOLDER", "NAME", "JOB", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one, cap_mib=args.inline_cap_mib)))
        return 0

    import attacks

    # Made here and saved, so that the measured processes hold only the bytes of their file.
    folder = tempfile.mkdtemp(prefix="bench-attacks-")
    names = []
    for attack in attacks.attacks():
        if not args.only or attack.name == args.only:
            (Path(folder) / attack.name).write_bytes(attack.data)
            (Path(folder) / f"{attack.name}.json").write_text(json.dumps(attack.convert))
            names.append(attack.name)
    figures: dict = {}
    header = (f"{'attack':32} {'job':8} | {'inline: outcome':34} {'peak MiB':>8} {'s':>6} | "
              f"{'pool: outcome':22} {'worker MiB':>10} {'child MiB':>9} {'s':>6}")
    print(header)
    print("-" * len(header))
    for name in names:
        for job in JOBS:
            row = {mode: run_isolated(folder, name, job, mode, args.inline_cap_mib) for mode in MODES}
            figures.setdefault(name, {})[job] = row
            inline, pool = row["inline"], row["pool"]
            print(f"{name:32} {job:8} | {inline['outcome'][:34]:34} {_num(inline['worker_peak_mib']):>8} "
                  f"{_num(inline['seconds']):>6} | {pool['outcome'][:22]:22} {_num(pool['worker_peak_mib']):>10} "
                  f"{_num(pool['children_peak_mib']):>9} {_num(pool['seconds']):>6}", flush=True)
    shutil.rmtree(folder)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    print(f"\nfigures: {RESULTS.relative_to(ROOT)}")
    return 0


def _num(value) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    sys.exit(main())
