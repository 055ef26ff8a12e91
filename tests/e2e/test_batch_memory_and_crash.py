"""A batch's ZIP in bounded memory, and a batch that survives its worker's death (docs/DESIGN.md
"Batches"), against real processes: ``imageservice serve`` (its job threads pack the ZIP) and a
separate ``imageservice worker`` that is killed mid-batch."""

from __future__ import annotations

import io
import os
import random
import signal
import time
import zipfile

import requests
from PIL import Image

from procstats import Sampler, group_processes
from servers import ServerProcess, free_port, imageservice, run_cli, service_env, start_service, wait_until

MIB = 2**20
GROWTH_LIMIT = 150 * MIB
NOISE_IMAGES = 30


def noise_png(seed: int) -> bytes:
    """~3 MB of noise as PNG: nothing in it compresses."""
    pixels = random.Random(seed).randbytes(1000 * 1000 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (1000, 1000), pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def upload(base: str, auth: dict, data: bytes, name: str) -> str:
    ticket = requests.post(f"{base}/api/images/upload", headers=auth, timeout=10,
                           json={"content_type": "image/png", "size": len(data), "filename": name}).json()
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=30)
    assert put.status_code == 200, put.text
    requests.post(f"{base}/api/images/{ticket['image_id']}/complete", headers=auth, timeout=10)
    return ticket["image_id"]


def all_ready(base: str, auth: dict, count: int):
    def check():
        images = requests.get(f"{base}/api/images", params={"limit": 100}, headers=auth, timeout=10).json()["images"]
        return len(images) == count and all(i["status"] == "ready" for i in images)
    return check


def settled(base: str, auth: dict, batch_id: str):
    def check():
        batch = requests.get(f"{base}/api/batches/{batch_id}", headers=auth, timeout=10).json()
        return batch if batch["status"] in ("ready", "failed", "cancelled") else None
    return check


class RssGrowth(Sampler):
    """The most each process of a group grew over the RSS it had when watching began."""

    def __init__(self, pgid: int, interval: float = 0.02):
        super().__init__(interval)
        self.pgid = pgid
        self.resting = {p.pid: p.rss for p in group_processes(pgid)}
        self.growth: dict[int, int] = {}

    def sample(self) -> None:
        for process in group_processes(self.pgid):
            if process.pid in self.resting:
                grown = process.rss - self.resting[process.pid]
                self.growth[process.pid] = max(self.growth.get(process.pid, 0), grown)


def test_a_zip_of_thirty_3_mb_images_keeps_every_process_within_150_mb(tmp_path):
    server, base = start_service(tmp_path / "data", tmp_path / "server.log")
    try:
        token = run_cli(server.env, "token", "create", "alice").stdout.strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}"}
        images = [noise_png(n) for n in range(NOISE_IMAGES)]
        assert all(2.5 * MIB < len(data) < 3.5 * MIB for data in images)
        ids = [upload(base, auth, data, f"noise-{n}.png") for n, data in enumerate(images)]
        wait_until(all_ready(base, auth, NOISE_IMAGES), "processing", None, timeout=180)
        time.sleep(1)  # the job threads idle again
        pgid = server.process.pid
        with RssGrowth(pgid) as watch:
            batch = requests.post(f"{base}/api/batches", headers=auth, json={"action": "zip", "image_ids": ids},
                                  timeout=10).json()
            done = wait_until(settled(base, auth, batch["batch_id"]), "the batch", None, timeout=120)
        assert done["status"] == "ready", done
        assert done["bytes"] > NOISE_IMAGES * 2.5 * MIB  # stored, not compressed: every image is in it
        worst = max(watch.growth.values())
        print(f"batch of {NOISE_IMAGES} noise images: worst process growth {worst / MIB:.1f} MiB over {len(watch.growth)} processes")
        assert watch.growth and worst < GROWTH_LIMIT, {pid: g // MIB for pid, g in watch.growth.items()}
        archive = zipfile.ZipFile(io.BytesIO(requests.get(done["download_url"], timeout=60).content))
        assert len(archive.namelist()) == NOISE_IMAGES and archive.testzip() is None
    finally:
        server.stop()


def test_a_worker_killed_mid_batch_leaves_a_batch_the_next_one_finishes_whole(tmp_path):
    data_dir = tmp_path / "data"
    server, base = start_service(data_dir, tmp_path / "server.log", IMAGESERVICE_EMBEDDED_WORKER="false")
    workers: list[ServerProcess] = []
    try:
        token = run_cli(server.env, "token", "create", "alice").stdout.strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}"}
        env = service_env(data_dir, free_port(), IMAGESERVICE_JOB_VISIBILITY_TIMEOUT="3",
                          IMAGESERVICE_JOB_RETRY_DELAY="0")
        ids = [upload(base, auth, noise_png(n), f"crash-{n}.png") for n in range(8)]
        first = ServerProcess(imageservice("worker"), env, tmp_path / "worker-1.log").start()
        workers.append(first)
        wait_until(all_ready(base, auth, 8), "processing", None, timeout=120)
        batch = requests.post(f"{base}/api/batches", headers=auth, timeout=10,
                              json={"action": "convert", "image_ids": ids, "convert": {"format": "webp"}}).json()
        url = f"{base}/api/batches/{batch['batch_id']}"
        wait_until(lambda: requests.get(url, headers=auth, timeout=10).json()["status"] == "running",
                   "the batch to start", None, timeout=60, interval=0.01)
        os.killpg(first.process.pid, signal.SIGKILL)  # mid-batch: the ZIP half written
        first.process.wait()
        assert requests.get(url, headers=auth, timeout=10).json()["status"] == "running"
        workers.append(ServerProcess(imageservice("worker"), env, tmp_path / "worker-2.log").start())
        done = wait_until(settled(base, auth, batch["batch_id"]), "the batch after the restart", None, timeout=120)
        assert done["status"] == "ready", done
        names = zipfile.ZipFile(io.BytesIO(requests.get(done["download_url"], timeout=60).content)).namelist()
        assert sorted(names) == sorted(f"crash-{n}.webp" for n in range(8))  # each exactly once
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
