"""Issue 23 and issue 21's duplicate card, in Debian's Chromium against ``imageservice serve``:
the thumbnail of a dropped photo shows up soon after the server has it ready, and the gallery
shows one card per image whatever order the answers arrive in.
"""

from __future__ import annotations

import statistics
from datetime import datetime

import pytest

import imagefactory
from browser_steps import drop_file

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

UPLOADS = 5
# Issue 23: thumbnail on screen at most this long after the record became ready (p50).
PAGE_LAG_P50_MS = 300
PROCESSING_TIMEOUT = 20_000  # ms

# Every load of a thumbnail in the gallery, stamped with the wall clock (the server's clock too:
# one machine), and the most cards ever shown at once for one image id.
WATCH_THE_GALLERY = """() => {
    window.thumbLoadedAt = {};
    window.mostCards = {};
    const grid = document.getElementById("gallery");
    grid.addEventListener("load", (event) => {
        const item = event.target.closest && event.target.closest(".grid-item");
        if (event.target.tagName === "IMG" && item) {
            window.thumbLoadedAt[item.dataset.imageId] = performance.timeOrigin + performance.now();
        }
    }, true);
    const count = () => {
        const seen = {};
        grid.querySelectorAll(".grid-item").forEach((item) => {
            seen[item.dataset.imageId] = (seen[item.dataset.imageId] || 0) + 1;
        });
        Object.keys(seen).forEach((id) => { window.mostCards[id] = Math.max(window.mostCards[id] || 0, seen[id]); });
    };
    new MutationObserver(count).observe(grid, {childList: true, subtree: true});
}"""


def epoch_ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def card(page, filename: str):
    return page.locator("#gallery .grid-item").filter(has_text=filename)


def test_a_dropped_photo_shows_its_thumbnail_soon_after_it_is_ready(page):
    page.goto("/")
    page.evaluate(WATCH_THE_GALLERY)
    put_ended: dict[str, float] = {}
    asked: dict[str, int] = {}

    def finished(request) -> None:
        image_id = request.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        if request.method == "PUT":  # the upload: its end on the wall clock
            put_ended[image_id] = request.timing["startTime"] + request.timing["responseEnd"]
        elif request.method == "GET" and "/api/images/" in request.url and request.url.endswith(image_id):
            asked[image_id] = asked.get(image_id, 0) + 1

    page.on("requestfinished", finished)
    data = imagefactory.large_jpeg_bytes(3, exif=True)  # 2000x1500: ready in ~0.1 s quiet, ~0.5 s under load
    lags, server_ms, page_ms = [], [], []
    for number in range(UPLOADS):
        name = f"photo-{number}.jpg"
        drop_file(page, name, data, "image/jpeg")
        expect(card(page, name).locator("img.is-loaded")).to_have_count(1, timeout=PROCESSING_TIMEOUT)
        image_id = card(page, name).get_attribute("data-image-id")
        record = page.request.get(f"/api/images/{image_id}").json()
        shown = page.evaluate("(id) => window.thumbLoadedAt[id]", image_id)
        ready = epoch_ms(record["processed_at"])
        server_ms.append(ready - put_ended[image_id])
        page_ms.append(shown - put_ended[image_id])
        lags.append(shown - ready)
    figures = (f"server ready after the PUT (ms): {[round(v) for v in server_ms]}; thumbnail on screen (ms): "
               f"{[round(v) for v in page_ms]}; lag: {[round(v) for v in lags]}; status requests per image: "
               f"{sorted(asked.values())}")
    print(figures)
    assert statistics.median(lags) <= PAGE_LAG_P50_MS, figures
    # Fast, then backing off: a handful of requests per image, not one every few milliseconds.
    assert max(asked.values()) <= 8, figures


def test_one_card_per_image_when_a_gallery_load_answers_before_the_upload_ticket(page):
    """Issue 21: a gallery load that answers after the server made the record but before the
    page has the ticket, and another one while a slow PUT is under way."""
    page.goto("/")
    expect(page.locator("#gallery")).to_have_attribute("aria-busy", "false")
    page.evaluate(WATCH_THE_GALLERY)
    held: dict = {}
    page.route("**/api/images/upload", lambda route: held.setdefault("ticket", (route, route.fetch())))
    page.route("**/blobs/**", lambda route: held.setdefault("put", route) if route.request.method == "PUT"
               else route.continue_())

    def reload_the_gallery() -> None:
        with page.expect_response(lambda r: "/api/images?" in r.url and r.request.method == "GET"):
            page.click("#filters button[type=submit]")
        expect(page.locator("#gallery")).to_have_attribute("aria-busy", "false")

    def wait_for(name: str) -> None:
        for _ in range(200):
            if name in held:
                return
            page.wait_for_timeout(25)
        raise AssertionError(f"the page never sent its {name} request")

    drop_file(page, "race.png", imagefactory.png_bytes(640, 480), "image/png")
    wait_for("ticket")  # the record exists on the server; the page does not know its id yet
    reload_the_gallery()
    expect(card(page, "race.png")).to_have_count(1)  # listed by the load, as pending
    route, response = held["ticket"]
    route.fulfill(response=response)
    wait_for("put")  # the upload is under way (held: a slow PUT)
    expect(card(page, "race.png")).to_contain_text("Uploading")
    reload_the_gallery()  # a gallery load landing during the upload
    expect(card(page, "race.png")).to_have_count(1)
    held["put"].continue_()
    expect(card(page, "race.png")).to_have_attribute("data-status", "ready", timeout=PROCESSING_TIMEOUT)
    expect(card(page, "race.png")).to_have_count(1)
    most = page.evaluate("() => window.mostCards")
    assert list(most.values()) == [1], most
