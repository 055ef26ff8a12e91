"""How should the page learn that an image is ready? Server-sent events against the gallery's
fast-then-backoff polling (web/static/js/poll.js), measured in Debian's Chromium.

    .venv/bin/python bench/bench_status_push.py [--jobs 20]

Needs Playwright (the ``test`` extra), /usr/bin/chromium and waitress, the threaded server
``serve`` is moving to (it comes with that change; until then ``pip install waitress``: it is
left out of pyproject.toml so the hashed locks need no refresh for a side measurement). A bare
WSGI app on waitress (4 threads, its default) stands in for the service, so only the transport
is compared:

- ``POST /work`` starts a job that turns ready after a random 100-1000 ms (a 12 MP photo takes
  ~170 ms on this box, a large PNG several times that) and answers its id;
- ``GET /status/<id>`` answers ``{"status", "ready_at"}`` (epoch ms) like GET /api/images/{id};
- ``GET /events`` is an SSE stream of ``<id>`` lines, one per job turning ready.

Part 1, lag: for each job the page waits for ``ready`` by polling (100 ms, then x1.3 per quiet
round) or on one EventSource; the figure is the moment the page knew, minus ``ready_at``
(same machine, same wall clock). Part 2, cost: tabs open one after another, each holding an SSE
stream: after how many does a plain page load get no answer within 2 s?
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from servers import free_port  # noqa: E402

THREADS = 4  # waitress's default
CHROMIUM = "/usr/bin/chromium"

PAGE = b"""<!doctype html><meta charset="utf-8"><title>status push</title><script>
const FIRST = 100, BACKOFF = 1.3;
async function work() { return (await fetch("/work", {method: "POST"})).json(); }
async function polled() {
  const job = await work();
  let delay = FIRST;
  for (;;) {
    await new Promise((done) => setTimeout(done, delay));
    const status = await (await fetch("/status/" + job.id)).json();
    if (status.status === "ready") return {lag: Date.now() - status.ready_at, asked: job.asked};
    delay = Math.round(delay * BACKOFF);
  }
}
let stream = null; const waiting = new Map();
function pushed() {
  if (!stream) {
    stream = new EventSource("/events");
    stream.onmessage = (event) => { const done = waiting.get(event.data); if (done) done(Date.now()); };
  }
  return work().then((job) => new Promise((resolve) => {
    waiting.set(job.id, async (seen) => {
      const status = await (await fetch("/status/" + job.id)).json();
      resolve({lag: seen - status.ready_at});
    });
  }));
}
</script>"""


def build_app():
    jobs: dict[str, float] = {}  # id -> ready_at (epoch ms)
    changed = threading.Condition()
    counter = [0]

    def finish(job_id: str, seconds: float) -> None:
        time.sleep(seconds)
        with changed:
            jobs[job_id] = time.time() * 1000
            changed.notify_all()

    def app(environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html")])
            return [PAGE]
        if path == "/work" and method == "POST":
            with changed:
                counter[0] += 1
                job_id = str(counter[0])
            threading.Thread(target=finish, args=(job_id, random.uniform(0.1, 1.0)), daemon=True).start()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"id": job_id}).encode()]
        if path.startswith("/status/"):
            ready_at = jobs.get(path.rsplit("/", 1)[1])
            body = {"status": "ready" if ready_at else "processing", "ready_at": ready_at}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        if path == "/events":
            start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
            return stream_events(jobs, changed)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


def stream_events(jobs: dict[str, float], changed: threading.Condition):
    """Holds a server thread for as long as the tab stays open: the point of part 2."""
    told: set[str] = set(jobs)
    yield b": open\n\n"
    while True:
        with changed:
            changed.wait(15)
            fresh = [job_id for job_id in jobs if job_id not in told]
        for job_id in fresh:
            told.add(job_id)
            yield f"data: {job_id}\n\n".encode()
        if not fresh:
            yield b": keep-alive\n\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from waitress.server import create_server

    port = free_port()
    server = create_server(build_app(), host="127.0.0.1", port=port, threads=THREADS)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(base + "/")
        lags = {"polling": [], "sse": []}
        for _ in range(args.jobs):  # interleaved, so machine noise hits both alike
            lags["polling"].append(page.evaluate("polled()")["lag"])
            lags["sse"].append(page.evaluate("pushed()")["lag"])
        print(f"lag from ready to the page knowing it, {args.jobs} jobs of 100-1000 ms each (ms):")
        for name, values in lags.items():
            ordered = sorted(values)
            print(f"  {name:8} p50 {statistics.median(ordered):6.0f}   p90 {ordered[int(0.9 * len(ordered)) - 1]:6.0f}"
                  f"   max {ordered[-1]:6.0f}")
        page.close()

        # The page above closed, but its stream's thread only notices at its next write (the
        # keep-alive, up to 15 s later): part 2 starts with that thread still held, as a real
        # server would after a tab closes.
        opened = 0
        answered = True
        while answered and opened < 2 * THREADS:
            tab = browser.new_page()
            started = time.monotonic()
            try:
                tab.goto(base + "/", timeout=2000)
            except Exception:  # Playwright's timeout: no server thread was free for a plain GET
                answered = False
                break
            answered_ms = (time.monotonic() - started) * 1000
            print(f"  tab {opened + 1}: page answered in {answered_ms:.0f} ms; opens its stream")
            tab.evaluate("() => { new EventSource('/events'); }")
            opened += 1
            time.sleep(0.3)
        print(f"on waitress with {THREADS} threads, {opened} open tabs (streams) later a plain GET "
              f"{'still answered' if answered else 'got no answer within 2 s'}")
        browser.close()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
