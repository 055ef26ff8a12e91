"""The HTTP server candidates side by side (docs/SERVER.md, "Why this pair"): each one under the
slow-client attacks of the attack suite and under bench_api.py's throughput rounds.

Candidates:

- ``gunicorn+waitress workers``: ``imageservice serve`` as shipped (gunicorn's arbiter, 2
  worker processes each running waitress with web/server.py's gate and deadlines, 8 threads);
  the bare app under the same server (bench/bare_flask.py).
- ``waitress alone``: the same with one worker process (``IMAGESERVICE_WEB_WORKERS=1``).
- ``gunicorn+gevent``: gunicorn's gevent worker, 5 workers x 1000 connections, running
  ``imageservice.web:create_app()``; ``imageservice worker`` beside it processes the jobs.
- ``gunicorn+uvicorn+a2wsgi``: uvicorn's gunicorn worker, 5 workers, the WSGI app behind
  a2wsgi's WSGIMiddleware (bench/asgi_candidates.py); ``imageservice worker`` beside it.

For each: the attacks of tests/slowclients.py, each held 5 s (slow readers 8 s) under the
prober, and one that is no attack but the app's own slow work in the request path (8 clients
asking for full-size PNG conversions of a 12-megapixel photo, one after another, for 8 s); the share of probes answered within 1 s during the attack and in the 4 s after it
(the bar: >= 95 % during, 100 % after). Then wrk rounds of the upload, list and healthz
requests, the service beside the bare app under the same server; the median ratio.

The gunicorn candidates are not dependencies of the project: install them to measure them
(``pip install gunicorn gevent uvicorn a2wsgi``); a candidate whose packages are missing is
skipped.

    .venv/bin/python bench/bench_servers.py [--only NAME] [--rounds 3] [--duration 3]

Figures go to bench/results/bench_servers.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))  # slowclients, servers, procstats
sys.path.insert(0, str(BENCH))

import bench_api  # noqa: E402  (after the path above)
import slowclients  # noqa: E402

RESULTS = BENCH / "results" / "bench_servers.json"
BIN = Path(sys.executable).parent
GUNICORN_WORKERS = "5"  # the old default: 2 x cores + 1
class Conversions:
    """Not a slow client: app work in the request path. ``count`` clients each asking, one
    after another, for a full-size PNG of a 4000x3000 photo (a second or more of an imaging
    child's time, which the request waits for) until closed."""

    def __init__(self, server: slowclients.Server, image_id: str, count: int = 8):
        self.stop = threading.Event()
        url = f"{server.base}/api/images/{image_id}/convert"

        def convert() -> None:
            while not self.stop.is_set():
                try:
                    requests.post(url, json={"format": "png"}, headers=server.auth, timeout=30)
                except requests.RequestException:
                    time.sleep(0.1)

        self.threads = [threading.Thread(target=convert, daemon=True) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()


def photo(server: slowclients.Server) -> str:
    """A processed 4000x3000 JPEG of noise (slow to encode as PNG): its image id."""
    buffer = io.BytesIO()
    Image.effect_noise((4000, 3000), 60).convert("RGB").save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    ticket = requests.post(f"{server.base}/api/images/upload", headers=server.auth, timeout=10,
                           json={"content_type": "image/jpeg", "size": len(data), "filename": "photo.jpg"}).json()
    requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=30).raise_for_status()
    image = f"{server.base}/api/images/{ticket['image_id']}"
    assert slowclients.wait_for(
        lambda: requests.get(image, headers=server.auth, timeout=5).json()["status"] == "ready", 60)
    return ticket["image_id"]


ATTACKS = {
    "slow readers (60)": (lambda server, url: slowclients.slow_readers(server, url), 8.0),
    "slow bodies, visitor (24)": (lambda server, url: slowclients.slow_bodies(server, "visitor"), 5.0),
    "slow bodies, token (24)": (lambda server, url: slowclients.slow_bodies(server, "token"), 5.0),
    "slowloris (100)": (lambda server, url: slowclients.slowloris(server), 5.0),
    "idle keep-alive (300)": (lambda server, url: slowclients.idle_keep_alive(server), 4.0),
    "8 conversions at once": (lambda server, url: [Conversions(server, server.photo_id)], 8.0),
}


def gunicorn(worker: list[str], app: str, port: int) -> list[str]:
    return [str(BIN / "gunicorn"), *worker, "-w", GUNICORN_WORKERS, "-b", f"127.0.0.1:{port}",
            "--pythonpath", str(BENCH), "--timeout", "30", "--keep-alive", "5", app]


def serve(port: int) -> list[str]:
    return [str(BIN / "imageservice"), "serve", "--host", "127.0.0.1", "--port", str(port)]


def bare_flask(port: int) -> list[str]:
    return [sys.executable, str(BENCH / "bare_flask.py"), str(port)]


CANDIDATES = {
    "gunicorn+waitress workers (serve)": {
        "modules": ["gunicorn", "waitress"], "service": serve, "bare": bare_flask, "worker": False, "env": {},
    },
    "waitress alone (1 process)": {
        "modules": ["gunicorn", "waitress"], "service": serve, "bare": bare_flask, "worker": False,
        "env": {"IMAGESERVICE_WEB_WORKERS": "1"},
    },
    "gunicorn+gevent": {
        "modules": ["gunicorn", "gevent"],
        "service": lambda port: gunicorn(["-k", "gevent", "--worker-connections", "1000"],
                                         "imageservice.web:create_app()", port),
        "bare": lambda port: gunicorn(["-k", "gevent", "--worker-connections", "1000"], "bare_flask:app", port),
        "worker": True, "env": {},
    },
    "gunicorn+uvicorn+a2wsgi": {
        "modules": ["gunicorn", "uvicorn", "a2wsgi"],
        "service": lambda port: gunicorn(["-k", "uvicorn.workers.UvicornWorker"], "asgi_candidates:service()", port),
        "bare": lambda port: gunicorn(["-k", "uvicorn.workers.UvicornWorker"], "asgi_candidates:bare()", port),
        "worker": True, "env": {},
    },
}


def start(candidate: dict, side: str, root: Path, data_dir: Path) -> bench_api.Server:
    port = bench_api.free_port()
    env = bench_api.service_env(data_dir, port)
    env["IMAGESERVICE_EMBEDDED_WORKER"] = "true" if side == "service" and not candidate["worker"] else "false"
    env.update(candidate["env"])
    return bench_api.Server(candidate[side](port), env, root / f"{side}-{port}.log", port)


def attacks(candidate: dict, root: Path) -> dict[str, dict[str, float]]:
    data_dir = root / "attack-data"
    service = start(candidate, "service", root, data_dir)
    env = {**bench_api.service_env(data_dir, service.port), **candidate["env"]}
    worker = subprocess.Popen([str(BIN / "imageservice"), "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) if candidate["worker"] else None
    figures = {}
    try:
        server = slowclients.Server(f"http://127.0.0.1:{service.port}", env, service.process.pid)
        url = slowclients.signed_download(server)
        server.photo_id = photo(server)
        for name, (attack, hold) in ATTACKS.items():
            result = slowclients.run_attack(server, lambda: attack(server, url), hold=hold, settle=False)
            figures[name] = {"during": answered_share(result["during"]), "after": answered_share(result["after"])}
            print(f"  {name:28} within 1 s: {figures[name]['during']:5.0%} during, "
                  f"{figures[name]['after']:5.0%} after", flush=True)
            time.sleep(2)  # let the server close what the attack left before the next
        figures["slow requests cut off within 30 s"] = {"share": cut_off_within(server)}
        print(f"  slow requests cut off by the server within 30 s: "
              f"{figures['slow requests cut off within 30 s']['share']:.0%}", flush=True)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        service.stop()
    return figures


def cut_off_within(server: slowclients.Server, seconds: float = 30.0, count: int = 20) -> float:
    """Of ``count`` slowloris connections, the share the server closed by itself within
    ``seconds``: whether a client that never finishes its request is ever let go."""
    sockets = slowclients.slowloris(server, count)
    deadline = time.monotonic() + seconds
    closed = 0
    for sock in sockets:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            sock.recv(4096)  # an answer (408, 400) or the end: either way, let go
            closed += 1
        except ConnectionResetError:
            closed += 1
        except OSError:  # timed out: still held open
            pass
        sock.close()
    return closed / count


def answered_share(probes: list[float | None]) -> float:
    if not probes:
        return 0.0
    return sum(1 for took in probes if took is not None and took <= slowclients.PROBE_TIMEOUT) / len(probes)


def throughput(candidate: dict, args, root: Path) -> dict[str, float]:
    service = start(candidate, "service", root, root / "service-data")
    bare = start(candidate, "bare", root, root / "bare-data")
    token = bench_api.run_token(service)
    endpoints = {"upload": ("POST", "/api/images/upload"), "list": ("GET", "/api/images?limit=20"),
                 "healthz": ("GET", "/healthz")}
    ratios: dict[str, list[float]] = {name: [] for name in endpoints}
    try:
        for server in (service, bare):
            bench_api.wrk(server.port, "/healthz", token, "GET", 1, args.connections, root)
        for _ in range(args.rounds):
            for name, (method, path) in endpoints.items():
                mine = bench_api.wrk(service.port, path, token, method, args.duration, args.connections, root)[0]
                theirs = bench_api.wrk(bare.port, path, token, method, args.duration, args.connections, root)[0]
                ratios[name].append(mine / theirs)
                print(f"  {name:8} service {mine:7.0f} req/s  bare {theirs:7.0f} req/s  ratio {mine / theirs:.2f}",
                      flush=True)
    finally:
        service.stop()
        bare.stop()
    return {name: statistics.median(values) for name, values in ratios.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(CANDIDATES))
    parser.add_argument("--attacks-only", action="store_true", help="skip the throughput rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (make bench-api installs it with apt-get)", file=sys.stderr)
        return 2
    results = {}
    for name, candidate in CANDIDATES.items():
        if args.only and name != args.only:
            continue
        missing = [module for module in candidate["modules"] if importlib.util.find_spec(module) is None]
        if missing:
            print(f"{name}: skipped, not installed: {', '.join(missing)}")
            continue
        root = Path(tempfile.mkdtemp(prefix="bench-servers-"))
        print(f"{name}: attacks", flush=True)
        held = attacks(candidate, root)
        print(f"{name}: throughput, {args.rounds} rounds of wrk -c {args.connections} -d {args.duration}s", flush=True)
        results[name] = {"attacks": held, "ratios": {} if args.attacks_only else throughput(candidate, args, root)}
        shutil.rmtree(root, ignore_errors=True)

    print("\n| candidate | " + " | ".join(ATTACKS) + " | slowloris cut off in 30 s | upload | list | healthz |")
    print("|---" * (len(ATTACKS) + 5) + "|")
    for name, row in results.items():
        cells = [f"{row['attacks'][a]['during']:.0%} / {row['attacks'][a]['after']:.0%}" for a in ATTACKS]
        cells.append(f"{row['attacks']['slow requests cut off within 30 s']['share']:.0%}")
        ratios = [f"{row['ratios'][k]:.2f}" if k in row["ratios"] else "-" for k in ("upload", "list", "healthz")]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")
    print("\nattack cells: probes answered within 1 s during / after the attack; ratios: service / bare app")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
