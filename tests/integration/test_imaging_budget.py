"""The imaging budget: each IMAGESERVICE_IMAGING_* setting crossed on the real pool of
child processes, and what the API and the pipeline make of a job over budget."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

import attacks
import imagefactory as f
from imageservice.adapters.imaging_pool import ProcessImagingRunner, build_imaging_runner
from imageservice.bootstrap import build_components
from imageservice.core import imaging
from imageservice.core.conversions import ConversionRequest
from imageservice.core.errors import BadRequest, ImageRejected, TooExpensive, TooManyRequests
from imageservice.settings import Settings
from imageservice.web import create_app
from imageservice.entrypoints.worker import Worker
from servers import wait_until
from support import ApiClient, assert_error, make_settings

MIB = 1024 * 1024
SPECS = [imaging.DerivativeSpec("preview", 1440), imaging.DerivativeSpec("thumb", 256)]
LIMITS = imaging.ImagingLimits()


@pytest.fixture(scope="module")
def slow_png() -> bytes:
    """A uniform 8192x8192 PNG: 80 KB that take a child well over a second to decode."""
    return attacks.large_gray_png()


@pytest.fixture(scope="module")
def webp_4000() -> bytes:
    """38 bytes that need ~270 MB of a child's memory to make derivatives of."""
    return attacks.lossless_webp_bomb(4000)


@pytest.fixture
def runner(tmp_path):
    """Makes pools from settings (``runner(max_jobs=1)`` sets IMAGESERVICE_IMAGING_MAX_JOBS);
    each one's children are gone after the test, so counts of children start from zero."""
    made: list[ProcessImagingRunner] = []

    def make(*, heavy_rss_bytes: int | None = None, idle_seconds: float | None = None, **budget) -> ProcessImagingRunner:
        pool = build_imaging_runner(make_settings(tmp_path, **{f"imaging_{k}": v for k, v in budget.items()}))
        if heavy_rss_bytes is not None:
            pool.heavy_rss_bytes = heavy_rss_bytes
        if idle_seconds is not None:
            pool.idle_seconds = idle_seconds
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()
    wait_for(lambda: not imaging_children())


# Children of pools that earlier tests in this worker process left idle (app fixtures build a
# pool per app; idle children leave on their own) are not this test's to count.
FOREIGN_CHILDREN: set[int] = set()


@pytest.fixture(autouse=True)
def _children_of_other_tests():
    FOREIGN_CHILDREN.clear()
    FOREIGN_CHILDREN.update(_live_children())
    yield


def imaging_children() -> list[int]:
    """Live imaging children of this process started during this test, from /proc."""
    return [pid for pid in _live_children() if pid not in FOREIGN_CHILDREN]


def _live_children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == os.getpid() and state != "Z" and b"child_main" in cmdline:
            found.append(int(entry.name))
    return found


def rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(status.split("VmRSS:")[1].split()[0]) * 1024 if "VmRSS:" in status else 0


def wait_for(predicate, timeout: float = 10.0):
    return wait_until(predicate, "the condition", None, timeout, interval=0.02)


def in_thread(call) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as exc:  # handed to the test, which asserts on it
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_settings_read_every_budget_from_the_environment():
    settings = Settings.from_env({
        "IMAGESERVICE_IMAGING_MAX_JOBS": "3", "IMAGESERVICE_IMAGING_MEMORY_BYTES": str(512 * MIB),
        "IMAGESERVICE_IMAGING_TIMEOUT_SECONDS": "7.5", "IMAGESERVICE_IMAGING_QUEUE_SECONDS": "0.5",
        "IMAGESERVICE_IMAGING_WARM_CHILDREN": "3",
    })
    budget = build_imaging_runner(settings).budget
    assert (budget.max_jobs, budget.memory_bytes, budget.timeout_seconds, budget.queue_seconds,
            budget.warm_children) == (3, 512 * MIB, 7.5, 0.5, 3)
    defaults = Settings()
    assert (defaults.imaging_max_jobs, defaults.imaging_memory_bytes, defaults.imaging_timeout_seconds,
            defaults.imaging_warm_children) == (2, 1024 * MIB, 20.0, 1)


def test_nothing_starts_before_the_first_job(runner):
    pool = runner()
    assert imaging_children() == []
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    assert len(imaging_children()) == 1
    pool.close()
    assert imaging_children() == []


def test_results_and_errors_cross_the_process_boundary_unchanged(runner):
    pool = runner()
    processed = pool.process(f.jpeg_bytes(640, 480), SPECS, LIMITS)
    assert (processed.info.width, processed.info.height) == (640, 480)
    assert f.opened(processed.derivatives["thumb"].data).size == (256, 192)
    converted = pool.convert(f.jpeg_bytes(640, 480), ConversionRequest("png", width=320), LIMITS)
    assert (converted.format, f.opened(converted.data).size) == ("png", (320, 240))
    with pytest.raises(ImageRejected) as rejected:
        pool.process(f.truncated(f.jpeg_bytes()), SPECS, LIMITS)
    assert (rejected.value.code, rejected.value.status) == ("corrupt", 422)
    with pytest.raises(ImageRejected) as bomb:
        pool.process(f.png_header_bomb(), SPECS, LIMITS)
    assert bomb.value.code == "too_many_pixels"
    with pytest.raises(BadRequest) as bad:
        pool.convert(f.jpeg_bytes(), ConversionRequest("png", quality=500), LIMITS)
    assert (bad.value.code, bad.value.status) == ("invalid_parameter", 400)


def test_memory_ceiling_is_enforced_by_the_kernel(runner, webp_4000):
    generous = runner(memory_bytes=1024 * MIB)
    assert generous.process(webp_4000, SPECS, LIMITS).info.width == 4000
    tight = runner(memory_bytes=256 * MIB)
    with pytest.raises(TooExpensive) as over:
        tight.process(webp_4000, SPECS, LIMITS)
    assert over.value.code == "too_expensive" and "256 MiB" in over.value.message
    with pytest.raises(TooExpensive):
        tight.convert(webp_4000, ConversionRequest("png"), LIMITS)
    # A child that met its ceiling is retired; the next (small) job gets a fresh one and works.
    assert imaging_children() == []
    assert tight.process(f.png_bytes(32, 32), SPECS, LIMITS).info.width == 32


def test_wall_clock_limit_kills_the_child(runner, slow_png):
    pool = runner(timeout_seconds=0.25)
    started = time.monotonic()
    with pytest.raises(TooExpensive) as late:
        pool.process(slow_png, SPECS, LIMITS)
    assert time.monotonic() - started < 5
    assert "0.25 s" in late.value.message
    assert imaging_children() == []  # killed, not left running
    assert runner(timeout_seconds=60).process(slow_png, SPECS, LIMITS).info.width == 8192


def test_at_most_max_jobs_children_at_once(runner, slow_png):
    pool = runner(max_jobs=2, queue_seconds=60)
    seen = []
    jobs = [in_thread(lambda: pool.process(slow_png, SPECS, LIMITS)) for _ in range(4)]
    while any(thread.is_alive() for thread, _ in jobs):
        seen.append(len(imaging_children()))
        time.sleep(0.02)
    assert all("result" in outcome for _, outcome in jobs), [o.get("error") for _, o in jobs]
    assert max(seen) == 2


def test_a_job_that_finds_no_slot_in_time_is_told_to_come_back(runner, slow_png):
    pool = runner(max_jobs=1, queue_seconds=0.2)
    first, outcome = in_thread(lambda: pool.process(slow_png, SPECS, LIMITS))
    wait_for(imaging_children)
    started = time.monotonic()
    with pytest.raises(TooManyRequests) as busy:
        pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    assert 0.15 < time.monotonic() - started < 2
    assert busy.value.code == "imaging_busy" and busy.value.retry_after >= 1
    first.join()
    assert "result" in outcome
    # With a queue longer than the first job, the second waits its turn instead.
    patient = runner(max_jobs=1, queue_seconds=60)
    first, outcome = in_thread(lambda: patient.process(slow_png, SPECS, LIMITS))
    wait_for(imaging_children)
    assert patient.process(f.png_bytes(32, 32), SPECS, LIMITS).info.width == 32
    first.join()
    assert "result" in outcome


def test_light_jobs_reuse_a_child_and_a_heavy_job_retires_it(runner, slow_png):
    pool = runner(heavy_rss_bytes=128 * MIB, idle_seconds=1.0)
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    (light,) = imaging_children()
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    assert imaging_children() == [light]
    pool.process(slow_png, SPECS, LIMITS)  # ~185 MB peak: heavy
    assert imaging_children() == []
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    assert len(imaging_children()) == 1
    wait_for(lambda: not imaging_children(), timeout=5)  # idle children leave on their own


def test_spares_are_started_ahead_and_wait_beyond_the_idle_time(runner):
    """IMAGESERVICE_IMAGING_WARM_CHILDREN: 0 starts nothing ahead; N keeps N spares, and a job
    takes one instead of starting a child (the ~150 ms start, docs/READY.md)."""
    runner(warm_children=0).warm()
    time.sleep(0.5)
    assert imaging_children() == []
    pool = runner(warm_children=2, idle_seconds=0.6)
    pool.warm()
    spares = set(wait_for(lambda: len(imaging_children()) == 2 and imaging_children()))
    time.sleep(1.0)  # past the idle time: spares have served no job and stay
    assert set(imaging_children()) == spares
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    wait_for(lambda: len(imaging_children()) == 3)  # the used spare, the other, a replacement
    # The used child leaves after its idle time; had the job started a child of its own, both
    # spares would still be here.
    remaining = set(wait_for(lambda: len(imaging_children()) == 2 and imaging_children()))
    assert len(remaining & spares) == 1


def test_a_heavy_job_retires_its_child_and_the_next_finds_a_spare(runner, slow_png):
    pool = runner(warm_children=1, heavy_rss_bytes=128 * MIB, timeout_seconds=60)
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    time.sleep(0.5)
    assert len(imaging_children()) == 1  # not warmed (the Lambda, a one-shot command): no spare
    pool.close()
    pool.warm()
    (first,) = wait_for(imaging_children)
    pool.process(slow_png, SPECS, LIMITS)  # takes the spare, which retires after it (heavy)
    (second,) = wait_for(lambda: imaging_children() if imaging_children() != [first] else None)
    pool.process(f.png_bytes(32, 32), SPECS, LIMITS)
    assert second in imaging_children()  # the replacement served the job and stayed (light)


def test_a_child_killed_mid_job_ends_the_job_as_too_expensive(runner, slow_png):
    """What the kernel's OOM killer (or an aborting codec) does to a child."""
    pool = runner(timeout_seconds=60)
    job, outcome = in_thread(lambda: pool.process(slow_png, SPECS, LIMITS))
    (child,) = wait_for(imaging_children)
    wait_for(lambda: rss(child) > 100 * MIB)  # decoding: the job is under way
    os.kill(child, signal.SIGKILL)
    job.join()
    assert isinstance(outcome.get("error"), TooExpensive), outcome
    assert "signal 9" in outcome["error"].message
    assert pool.process(f.png_bytes(32, 32), SPECS, LIMITS).info.width == 32


def test_a_stop_signal_to_the_process_group_lets_the_job_finish(runner, slow_png):
    """Ctrl-C or systemd signal the whole group: the parent decides when its children go."""
    pool = runner(timeout_seconds=60)
    job, outcome = in_thread(lambda: pool.process(slow_png, SPECS, LIMITS))
    (child,) = wait_for(imaging_children)
    wait_for(lambda: rss(child) > 100 * MIB)
    os.kill(child, signal.SIGTERM)
    os.kill(child, signal.SIGINT)
    job.join()
    assert outcome.get("result") is not None, outcome


# --- what the service and the pipeline make of it ---------------------------------------------


@pytest.fixture
def tight_api(tmp_path):
    """The whole app on the real pool, with a 256 MiB ceiling per imaging job."""
    components = build_components(make_settings(tmp_path, imaging_memory_bytes=256 * MIB))
    app = create_app(components=components)
    app.testing = True
    token = components.service.create_token("alice")
    yield ApiClient(app.test_client(), token, Worker(components)), components
    components.imaging.close()


def test_processing_over_budget_ends_rejected_too_expensive_without_retries(tight_api, webp_4000):
    api, components = tight_api
    image_id = api.upload(webp_4000, content_type="image/webp", filename="bomb.webp")
    record = api.image(image_id)
    assert record["status"] == "rejected"
    assert record["error"]["code"] == "too_expensive", record["error"]
    assert components.queue.receive(max_jobs=10) == []  # acked: final, not handed back
    assert components.queue.dead_letters() == []
    assert components.blobs.size(f"originals/alice/{image_id}") is None


def test_a_conversion_over_budget_answers_422_too_expensive(tight_api):
    api, _ = tight_api
    # Derivatives come from a DCT-scaled decode (cheap); a full-size PNG needs the 108 MB of
    # pixels and more, beyond what the 256 MiB ceiling leaves a child.
    large = f._save(Image.new("RGB", (6000, 6000), (200, 30, 30)), "JPEG", quality=80)
    image_id = api.upload(large, content_type="image/jpeg", filename="large.jpg")
    assert api.image(image_id)["status"] == "ready"
    response = api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png"})
    assert_error(response, 422, "too_expensive")
    small = api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png", "width": 600})
    assert small.status_code == 200, small.get_json()

