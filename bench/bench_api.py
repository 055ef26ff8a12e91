"""Request-path benchmark: the API beside a bare Flask app, and the catalog at 100 000
records for one owner.

Part 1, throughput: ``imageservice serve`` as shipped (gunicorn's worker processes, each waitress
with web/server.py's gate and deadlines, the default processes and threads, embedded job worker
off, limits raised so nothing is refused) and bench/bare_flask.py under the same server, each loaded by ``wrk`` (8 connections, 5 s), endpoint by
endpoint, service and bare back to back within each round, for several rounds (5); the table
shows the median req/s and p99 of each, and the median of the rounds' ratios service/bare.

A fourth row is a yardstick, not a target: the bare app writing one row to SQLite per request
(WAL, as the catalog does), against the bare app, in the same rounds: what one write costs on
this server and machine, which bounds what the upload request (one catalog write) can reach.

Part 2, scale: one owner with 100 000 records seeded through the catalog itself (1 % tagged
``rare``, 2 % rejected, created over 400 days), then p99 over 200 sequential requests for each
list query shape and for the upload request, on a keep-alive connection.

    .venv/bin/python bench/bench_api.py [--strict] [--rounds 3] [--duration 5] [--records 100000]

Targets are printed PASS/FAIL; ``--strict`` exits 1 when one is missed. Figures go to
bench/results/bench_api.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results" / "bench_api.json"
sys.path.insert(0, str(REPO / "application"))

UPLOAD_BODY = json.dumps({"content_type": "image/png", "size": 1234, "filename": "a.png", "tags": ["bench"]})
# The ratios issue 18 holds the server change to (the upload's 0.5 of issue 10 was shown out
# of reach on this box: bench/README.md).
TARGETS = {"upload_ratio": 0.18, "upload_p99_ms": 50, "list_ratio": 0.5, "healthz_ratio": 0.8,
           "scale_list_p99_ms": 20, "scale_upload_p99_ms": 20}
RAISED_LIMITS = {
    "IMAGESERVICE_QUOTA_IMAGES": str(10**9), "IMAGESERVICE_QUOTA_BYTES": str(10**15),
    "IMAGESERVICE_UPLOADS_PER_MINUTE": str(10**9), "IMAGESERVICE_EMBEDDED_WORKER": "false",
}


YARDSTICK = "POST, bare Flask + 1 SQLite INSERT"


def bare_flask_write_path() -> str:
    sys.path.insert(0, str(REPO / "bench"))
    from bare_flask import WRITE_PATH

    return WRITE_PATH


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server (``imageservice serve``, or the bare app) in its own process group."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int):
        self.port = port
        self.log = log
        self.env = env
        with log.open("wb") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"server did not start: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def service_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESERVICE_")}
    env.update(RAISED_LIMITS, IMAGESERVICE_DATA_DIR=str(data_dir),
               IMAGESERVICE_SECRET_KEY="bench-secret",
               IMAGESERVICE_PUBLIC_URL=f"http://127.0.0.1:{port}")
    return env


def start_service(root: Path, data_dir: Path) -> tuple[Server, str]:
    port = free_port()
    env = service_env(data_dir, port)
    server = Server([str(BIN / "imageservice"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env, root / f"serve-{port}.log", port)
    return server, run_token(server)


def run_token(server: Server) -> str:
    """A token for alice, made by the CLI beside ``server`` (the same data dir)."""
    out = subprocess.run([str(BIN / "imageservice"), "token", "create", "alice"], env=server.env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def start_bare(root: Path, data_dir: Path) -> Server:
    """The bare app under the same server (web/server.py), settings and threads."""
    port = free_port()
    env = service_env(data_dir, port)
    argv = [sys.executable, str(REPO / "bench" / "bare_flask.py"), str(port)]
    return Server(argv, env, root / "bare.log", port)


# ------------------------------------------------------------------------------ wrk

def wrk(port: int, path: str, token: str | None, method: str, duration: int, connections: int,
        script_dir: Path) -> tuple[float, float]:
    """Requests per second and p99 milliseconds of one wrk run (non-2xx answers fail the run)."""
    script = script_dir / f"{method.lower()}.lua"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    lines = [f'wrk.method = "{method}"'] + [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if method == "POST":
        lines.append(f"wrk.body = {json.dumps(UPLOAD_BODY)}")
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers from {path}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def throughput(args, root: Path) -> dict:
    service, token = start_service(root, root / "service-data")
    bare = start_bare(root, root / "bare-data")

    def side_by_side(path: str, method: str):
        """The service and the bare app, each asked for ``path`` with the same token (which the
        server's gate looks at before either app runs)."""
        return method, {"service": (service, path, token), "bare": (bare, path, token)}

    endpoints = {
        "POST /api/images/upload": side_by_side("/api/images/upload", "POST"),
        "GET /api/images?limit=20": side_by_side("/api/images?limit=20", "GET"),
        "GET /healthz": side_by_side("/healthz", "GET"),
        # Not a target: the bare app writing one SQLite row per request, in the service's
        # column, shows what one write costs on the request path of this server and machine.
        YARDSTICK: ("POST", {"service": (bare, bare_flask_write_path(), None), "bare": (bare, "/", None)}),
    }
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {name: {"service": [], "bare": []} for name in endpoints}
    try:
        for server, token_ in ((service, token), (bare, None)):  # warm both (imports, caches), not counted
            wrk(server.port, "/healthz", token_, "GET", 1, args.connections, root)
        for round_ in range(args.rounds):
            for name, (method, sides) in endpoints.items():
                for who, (server, path, token_) in sides.items():
                    result = wrk(server.port, path, token_, method, args.duration, args.connections, root)
                    runs[name][who].append(result)
                    print(f"  round {round_ + 1} {name:28} {who:8} {result[0]:8.0f} req/s  p99 {result[1]:6.1f} ms",
                          flush=True)
    finally:
        service.stop()
        bare.stop()
    table = {}
    for name, by in runs.items():
        # Service and bare run back to back within a round, so each round's ratio compares like
        # with like; the median of the rounds' ratios shrugs off a round the machine disturbed.
        ratios = [s[0] / b[0] for s, b in zip(by["service"], by["bare"])]
        table[name] = {"service_rps": statistics.median(r for r, _ in by["service"]),
                       "service_p99_ms": statistics.median(p for _, p in by["service"]),
                       "bare_rps": statistics.median(r for r, _ in by["bare"]),
                       "bare_p99_ms": statistics.median(p for _, p in by["bare"]),
                       "ratio": statistics.median(ratios), "round_ratios": ratios}
    return table


# ------------------------------------------------------------------------------ scale

def seed(data_dir: Path, records: int) -> dict:
    """``records`` of alice's, through the catalog adapter; returns the moments the queries use."""
    from imageservice.adapters.sqlite.store import SqliteStore
    from imageservice.catalog import Catalog
    from imageservice.core.ids import new_id
    from imageservice.core.records import ImageRecord
    from imageservice.core.timeutil import to_iso

    catalog = Catalog(SqliteStore(data_dir / "catalog.sqlite3"))
    now = datetime.now(timezone.utc)
    span = timedelta(days=400)
    ids = []
    for i in range(records):
        moment = now - span + span * (i / records)
        image_id = new_id(now_ms=int(moment.timestamp() * 1000))
        ids.append(image_id)
        catalog.create(ImageRecord(
            image_id=image_id, user_id="alice", status="rejected" if i % 50 == 0 else "ready",
            filename=f"photo-{i}.jpg", content_type="image/jpeg", size=100_000,
            tags=["rare"] if i % 100 == 0 else ["common", f"set{i % 10}"],
            created_at=to_iso(moment), width=4000, height=3000, format="JPEG",
            exif={"Make": "Canon", "Model": "EOS", "FNumber": 2.8},
            derivatives={"thumb": {"width": 256, "height": 192, "format": "WEBP", "bytes": 5000}},
        ))
    return {"now": now, "ids": ids}


def p99(conn: http.client.HTTPConnection, method: str, path: str, token: str, n: int, body: str | None = None) -> float:
    times = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for _ in range(n):
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status}")
    return statistics.quantiles(times, n=100)[98]


def scale(args, root: Path) -> dict:
    from imageservice.core.cursor import encode_cursor

    data_dir = root / "scale-data"
    started = time.monotonic()
    seeded = seed(data_dir, args.records)
    print(f"  seeded {args.records} records in {time.monotonic() - started:.0f} s", flush=True)
    now, ids = seeded["now"], seeded["ids"]

    def iso(moment):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    newest_first = ids[::-1]
    shapes = {
        "first page": {"limit": 20},
        "page 500 via cursor": {"limit": 20, "cursor": encode_cursor("alice", newest_first[500 * 20 - 1])},
        "tag (1 % match)": {"limit": 20, "tag": "rare"},
        "status (2 % match)": {"limit": 20, "status": "rejected"},
        "since (last 30 days)": {"limit": 20, "since": iso(now - timedelta(days=30))},
        "until (oldest 10 %)": {"limit": 20, "until": iso(now - timedelta(days=360))},
        "since + until (7 days)": {"limit": 20, "since": iso(now - timedelta(days=200)),
                                   "until": iso(now - timedelta(days=193))},
    }
    server, token = start_service(root, data_dir)
    figures = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for name, params in shapes.items():
            path = "/api/images?" + urlencode(params)
            p99(conn, "GET", path, token, 20)  # warm
            figures[name] = p99(conn, "GET", path, token, args.samples)
            print(f"  {name:28} p99 {figures[name]:6.1f} ms", flush=True)
        p99(conn, "POST", "/api/images/upload", token, 20, UPLOAD_BODY)
        figures["upload"] = p99(conn, "POST", "/api/images/upload", token, args.samples, UPLOAD_BODY)
        print(f"  {'upload':28} p99 {figures['upload']:6.1f} ms", flush=True)
    finally:
        server.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200, help="requests per p99 at scale")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (make bench-api installs it with apt-get)", file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    print(f"throughput: {args.rounds} interleaved rounds, wrk -c {args.connections} -d {args.duration}s")
    table = throughput(args, root)
    scale_figures = {} if args.skip_scale else (print(f"scale: {args.records} records for one owner") or scale(args, root))

    checks = []
    print("\n| endpoint | service req/s · p99 | bare Flask req/s · p99 | ratio (each round) |\n|---|---|---|---|")
    for name, row in table.items():
        print(f"| `{name}` | {row['service_rps']:.0f} · {row['service_p99_ms']:.0f} ms | "
              f"{row['bare_rps']:.0f} · {row['bare_p99_ms']:.0f} ms | {row['ratio']:.2f} "
              f"({', '.join(f'{r:.2f}' for r in row['round_ratios'])}) |")
    up, lst, hz = (table[k] for k in table if k != YARDSTICK)
    checks += [
        (f"upload >= {TARGETS['upload_ratio']}x bare", up["ratio"] >= TARGETS["upload_ratio"]),
        (f"upload p99 < {TARGETS['upload_p99_ms']} ms", up["service_p99_ms"] < TARGETS["upload_p99_ms"]),
        (f"list >= {TARGETS['list_ratio']}x bare", lst["ratio"] >= TARGETS["list_ratio"]),
        (f"healthz >= {TARGETS['healthz_ratio']}x bare", hz["ratio"] >= TARGETS["healthz_ratio"]),
    ]
    if scale_figures:
        print(f"\n| at {args.records} records | p99 |\n|---|---|")
        for name, value in scale_figures.items():
            print(f"| {name} | {value:.1f} ms |")
        checks += [(f"{name} p99 < 20 ms at scale", value < TARGETS["scale_list_p99_ms"])
                   for name, value in scale_figures.items()]
    print()
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"throughput": table, "scale_p99_ms": scale_figures,
                                   "checks": dict(checks)}, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 1 if args.strict and not all(ok for _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
