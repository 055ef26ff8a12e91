"""The browser UI in Debian's Chromium against a real server process and job worker.

Each test gets a fresh browser context, so a fresh anonymous workspace. Screenshots of every
page land in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta

import pytest
from PIL import Image, ImageChops

import imagefactory
from browser_steps import convert_to_png_300x200_fill, drop_file
from imageservice.core.text import normalise_tag

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect

PROCESSING_TIMEOUT = 20_000  # ms: upload, queue, worker, poll


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def photo_with_gps() -> bytes:
    """A photo-like JPEG with the camera EXIF block and GPS (the Eiffel Tower, 35 m up)."""
    buffer = io.BytesIO()
    exif = imagefactory.make_exif(gps=(48.8584, 2.2945, 35.0))
    imagefactory.photo_like(1200, 800).save(buffer, "JPEG", quality=88, exif=exif.tobytes())
    return buffer.getvalue()


def tile(page, filename: str):
    return page.locator("#gallery .grid-item").filter(has_text=filename)


def expect_status(page, filename: str, status: str) -> None:
    expect(tile(page, filename)).to_have_attribute("data-status", status, timeout=PROCESSING_TIMEOUT)


def screenshot(page, path) -> None:
    """A still picture: transitions finished, no caret or focus ring left from typing."""
    page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def test_upload_detail_convert_delete_and_privacy(browser, live_server, page, tmp_path, screenshots):
    page.goto("/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^(23|24) h \d\d min \d\d s$"))
    expect(page.locator("#quota-text")).to_contain_text("0 of 1,000 images")
    expect(page.locator("#gallery-empty")).to_be_visible()

    page.fill("#upload-tags", "holiday")
    page.set_input_files("#file-input", [
        write(tmp_path, "paris.jpg", photo_with_gps()),
        write(tmp_path, "chart.png", imagefactory.png_bytes(640, 480)),
        write(tmp_path, "invoice.jpg", imagefactory.html_as_jpg_bytes()),
    ])
    expect_status(page, "paris.jpg", "ready")
    expect_status(page, "chart.png", "ready")
    expect_status(page, "invoice.jpg", "rejected")

    # Two real thumbnails, fetched through download_url.
    for name in ("paris.jpg", "chart.png"):
        expect(tile(page, name).locator("img")).to_have_class(re.compile(r"\bis-loaded\b"))
        assert tile(page, name).locator("img").evaluate("img => img.naturalWidth > 0")
    # The blurhash placeholder under each thumbnail is decoded in the page: the chart's is red at
    # the top left and blue at the bottom, like the chart itself.
    corners = tile(page, "chart.png").locator("canvas").evaluate("""canvas => {
        const context = canvas.getContext("2d");
        const pixel = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data);
        return {size: [canvas.width, canvas.height], topLeft: pixel(2, 2), bottom: pixel(16, canvas.height - 3)};
    }""")
    assert corners["size"] == [32, 24], corners
    red, green, blue, alpha = corners["topLeft"]
    assert alpha == 255 and red > green + 40 and red > blue + 40, corners
    red, green, blue, _ = corners["bottom"]
    assert blue > red + 40 and blue > green + 40, corners
    # The rejection, in words: the processor's own reason, as a sentence.
    records = {r["filename"]: r for r in page.request.get("/api/images").json()["images"]}
    rejected = records["invoice.jpg"]
    assert rejected["error"]["code"] == "not_an_image"
    reason = sentence(rejected["error"]["message"])
    expect(tile(page, "invoice.jpg").locator(".tile-reason")).to_have_text(reason)
    expect(tile(page, "invoice.jpg").locator(".pill")).to_have_text("Rejected")
    invoice_row = page.locator("#upload-list .upload-item").filter(has_text="invoice.jpg")
    expect(invoice_row.locator(".pill")).to_have_text("Rejected")
    expect(invoice_row.locator(".upload-message")).to_have_text(reason)
    expect(page.locator("#quota-text")).to_contain_text("3 of 1,000 images")
    screenshot(page, screenshots / "gallery.png")

    # Detail: camera model and the location badge.
    tile(page, "paris.jpg").locator("a").click()
    expect(page).to_have_url(re.compile(r"/images/[0-9A-Z]{26}$"))
    expect(page.locator("h1")).to_have_text("paris.jpg")
    expect(page.locator(".exif")).to_contain_text("Testcam TC-1 Mark II")
    expect(page.locator(".exif")).to_contain_text("1/250 s")
    expect(page.locator("#location-badge")).to_have_text("Contains location")
    expect(page.locator("#gps-coordinates")).to_contain_text("48.85840° N, 2.29450° E")
    expect(page.locator("#preview-image")).to_have_class(re.compile(r"\bis-loaded\b"))
    screenshot(page, screenshots / "detail.png")

    # Tags edited in place (PATCH with the CSRF header).
    page.click("#edit-button")
    page.fill("#edit-tags", "holiday, Paris")
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#tags-view .tag")).to_have_text(["holiday", "paris"])

    # Convert to a 300x200 PNG (fill) and check the downloaded file itself.
    download = convert_to_png_300x200_fill(page, tmp_path)
    assert download.suggested_filename == "paris-300x200.png"

    # Delete, with the in-page confirmation: "Keep it" keeps it, "Delete" deletes it.
    page.click("#delete-button")
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.click("#delete-cancel")
    expect(page.locator("#delete-dialog")).to_be_hidden()
    page.click("#delete-button")
    page.click("#delete-confirm")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#toasts")).to_contain_text("Deleted paris.jpg.")
    expect(tile(page, "chart.png")).to_have_count(1)
    expect(tile(page, "paris.jpg")).to_have_count(0)
    expect(page.locator("#quota-text")).to_contain_text("2 of 1,000 images")

    # Another browser (another workspace) sees none of it.
    chart_id = records["chart.png"]["image_id"]
    stranger = browser.new_context(base_url=live_server)
    try:
        other = stranger.new_page()
        other.goto("/")
        expect(other.locator("#gallery-empty")).to_be_visible()
        expect(other.locator("#gallery .grid-item")).to_have_count(0)
        response = other.goto(f"/images/{chart_id}")
        assert response.status == 404
        expect(other.locator("h1")).to_have_text("Not found")
    finally:
        stranger.close()


def test_drag_and_drop_and_filters(page, tmp_path):
    page.goto("/")
    page.fill("#upload-tags", "work")
    page.set_input_files("#file-input", write(tmp_path, "slides.png", imagefactory.png_bytes(320, 240)))
    expect_status(page, "slides.png", "ready")

    page.fill("#upload-tags", "holiday")
    drop_file(page, "beach.gif", imagefactory.gif_bytes(120, 90), "image/gif")
    expect_status(page, "beach.gif", "ready")
    expect(page.locator("#dropzone")).not_to_have_class(re.compile(r"is-dragover"))

    # Tag filter narrows the gallery and is kept in the address.
    page.fill("#filter-tag", "holiday")
    page.click("#filters button[type=submit]")
    expect(page.locator("#gallery .grid-item")).to_have_count(1)
    expect(tile(page, "beach.gif")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"\?tag=holiday$"))
    page.reload()
    expect(page.locator("#filter-tag")).to_have_value("holiday")
    expect(page.locator("#gallery .grid-item")).to_have_count(1)
    # An upload outside the filter stays out of the grid, yet its row still learns the outcome.
    page.fill("#upload-tags", "misc")
    page.set_input_files("#file-input", write(tmp_path, "receipt.png", imagefactory.png_bytes(100, 80)))
    receipt_row = page.locator("#upload-list .upload-item").filter(has_text="receipt.png")
    expect(receipt_row.locator(".pill")).to_have_text("Ready", timeout=PROCESSING_TIMEOUT)
    expect(page.locator("#gallery .grid-item")).to_have_count(1)

    # Pagination: two images a page, then "Load more".
    page.goto("/?limit=2")
    expect(page.locator("#gallery .grid-item")).to_have_count(2)
    expect(tile(page, "receipt.png")).to_have_count(1)
    expect(tile(page, "beach.gif")).to_have_count(1)
    page.click("#load-more")
    expect(page.locator("#gallery .grid-item")).to_have_count(3)
    expect(tile(page, "slides.png")).to_have_count(1)
    expect(page.locator("#load-more")).to_be_hidden()
    page.goto("/")

    # Date range: everything was made today.
    page.click("#filter-reset")
    expect(page.locator("#gallery .grid-item")).to_have_count(3)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    page.fill("#filter-until", yesterday)
    page.click("#filters button[type=submit]")
    expect(page.locator("#gallery-empty")).to_be_visible()
    expect(page.locator("#gallery-empty-title")).to_have_text("No images match these filters")
    page.fill("#filter-until", "")
    page.fill("#filter-since", date.today().isoformat())
    page.click("#filters button[type=submit]")
    expect(page.locator("#gallery .grid-item")).to_have_count(3)


def test_the_tag_filter_follows_the_servers_tag_rule(page, tmp_path):
    """The browser normalises a typed tag filter with the rule the server publishes (core/text.py),
    so a new upload tagged the same way shows under the filter at once."""
    page.goto("/")
    tricky = ["  Beach\u200e  Day\t", "Cafe\u0301 Cre\u0300me", "\u202e\u2066", "a\u3000\u00a0b ",
              "\ufeffbom", "ΑΣ", "x\u2028y", "family \U0001F468\u200d\U0001F469"]
    in_browser = page.evaluate("""async (tags) => {
        const entry = document.querySelector('script[type=module][src$="/index.js"]').src;
        const { normaliseTag } = await import(entry.replace(/index[.]js$/, "tags.js"));
        return tags.map(normaliseTag).concat([normaliseTag("a\\ud800b \\udfff")]);
    }""", tricky)
    assert in_browser == [normalise_tag(tag) for tag in tricky] + [normalise_tag("a\ud800b \udfff")]

    page.fill("#filter-tag", "Cafe\u0301  CRE\u0300ME\u200e")   # decomposed, two spaces, a mark
    page.click("#filters button[type=submit]")
    expect(page.locator("#gallery-empty-title")).to_have_text("No images match these filters")
    expect(page).to_have_url(re.compile(r"\?tag=caf%C3%A9\+cr%C3%A8me$"))
    page.fill("#upload-tags", "café crème")
    page.set_input_files("#file-input", write(tmp_path, "menu.png", imagefactory.png_bytes(100, 80)))
    expect(page.locator("#gallery .grid-item")).to_have_count(1)
    expect_status(page, "menu.png", "ready")


def test_refused_files_never_leave_the_browser_and_uploads_can_be_cancelled(page, context, tmp_path):
    tickets: list[str] = []
    page.on("request", lambda r: tickets.append(r.url) if r.method == "POST" and "/api/images/upload" in r.url else None)
    page.goto("/")
    limit = int(page.locator("#dropzone").get_attribute("data-max-upload-bytes"))
    page.set_input_files("#file-input", [
        write(tmp_path, "notes.txt", b"just text\n"),
        write(tmp_path, "logo.svg", imagefactory.svg_bytes()),
        write(tmp_path, "huge.jpg", b"\xff\xd8\xff" + bytes(limit + 1024 * 1024)),
    ])
    rows = page.locator("#upload-list .upload-item")
    expect(rows).to_have_count(3)
    for name in ("notes.txt", "logo.svg"):
        row = rows.filter(has_text=name)
        expect(row.locator(".pill")).to_have_text("Not sent")
        expect(row.locator(".upload-message")).to_have_text(re.compile(rf"“{re.escape(name)}” is not a supported image type"))
    expect(rows.filter(has_text="huge.jpg").locator(".upload-message")).to_have_text(
        "“huge.jpg” is 9.0 MB; the limit is 8.0 MB per file.")
    assert tickets == []

    # Cancel an upload in flight: slow the network so the PUT takes a while.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 256 * 1024})
    page.set_input_files("#file-input", write(tmp_path, "big.png", imagefactory.png_bytes(64, 48) + bytes(3 * 1024 * 1024)))
    row = rows.filter(has_text="big.png")
    expect(row.locator(".upload-speed")).to_have_text(re.compile(r"^\d+(\.\d)? (KB|MB)/s$"))
    expect(row.locator(".pill")).to_have_text(re.compile(r"^Uploading \d+%$"))
    assert 0 < float(row.locator("progress").evaluate("p => p.value")) < 100
    row.get_by_role("button", name="Cancel upload of big.png").click()
    expect(row.locator(".pill")).to_have_text("Cancelled")
    expect(row.locator(".upload-message")).to_contain_text("cancelled")
    expect(tile(page, "big.png")).to_have_count(0)
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    # The abandoned ticket was withdrawn: nothing lingers as pending.
    for _ in range(50):
        if page.request.get("/api/images").json()["images"] == []:
            break
        page.wait_for_timeout(100)
    assert page.request.get("/api/images").json()["images"] == []
    assert len(tickets) == 1


def test_one_polling_policy_backs_off_while_an_image_waits(page):
    """An upload that never arrives stays pending: the gallery asks about it less and less often
    (poll.js: 1 s, then x1.3 per quiet round up to 10 s), not once a second forever."""
    page.goto("/")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    ticket = page.request.post("/api/images/upload", headers={"X-CSRF-Token": csrf},
                               data={"content_type": "image/png", "size": 100, "filename": "never.png"}).json()
    asked: list[float] = []
    path = f"/api/images/{ticket['image_id']}"
    page.on("request", lambda r: asked.append(time.monotonic()) if r.url.endswith(path) else None)
    page.reload()
    expect_status(page, "never.png", "pending")
    page.wait_for_timeout(7000)
    policy = page.evaluate("""async () => {
        const entry = document.querySelector('script[type=module][src$="/index.js"]').src;
        const poll = await import(entry.replace(/index[.]js$/, "poll.js"));
        const delays = [];
        let delay = 0;
        for (let i = 0; i < 12; i++) { delay = poll.nextDelay(delay, false); delays.push(delay); }
        return {delays: delays, reset: poll.nextDelay(delays[5], true), policy: poll.POLICY};
    }""")
    expected = policy["delays"]
    assert expected[:4] == [1000, 1300, 1690, 2197] and expected[-1] == policy["policy"]["MAX_DELAY_MS"] == 10000
    assert policy["reset"] == 1000
    gaps = [later - earlier for earlier, later in zip(asked, asked[1:])]
    assert 3 <= len(asked) <= 5, gaps   # once a second would have asked 7 times
    for gap, delay in zip(gaps, expected[1:]):
        assert gap >= delay / 1000 * 0.9, (gaps, expected)


def convert_to_png(page, tmp_path, name: str):
    """Submit the detail page's convert form as PNG (lossless: equal pixels stay equal)."""
    page.select_option("#convert-format", "png")
    with page.expect_download() as download_info:
        page.click("#convert-submit")
    saved = tmp_path / name
    download_info.value.save_as(saved)
    expect(page.locator("#convert-status")).to_contain_text("Made PNG")
    with Image.open(saved) as image:
        return image.convert("RGB")


def test_convert_with_a_text_watermark_marks_the_chosen_corner_only(page, tmp_path, screenshots):
    page.goto("/")
    page.set_input_files("#file-input", write(tmp_path, "flat.png", imagefactory.png_bytes(600, 400)))
    expect_status(page, "flat.png", "ready")
    tile(page, "flat.png").locator("a").click()
    expect(page.locator("h1")).to_have_text("flat.png")

    converts = []
    page.on("request", lambda r: converts.append(r.post_data_json) if r.method == "POST" and r.url.endswith("/convert") else None)
    plain = convert_to_png(page, tmp_path, "plain.png")
    page.fill("#convert-watermark-text", "  © Cloud Image Service  ")
    page.select_option("#convert-watermark-position", "top-left")
    page.locator("#convert-watermark-opacity").fill("75")
    expect(page.locator("#convert-watermark-opacity-value")).to_have_text("75%")
    screenshot(page, screenshots / "detail-watermark-form.png")
    marked = convert_to_png(page, tmp_path, "marked.png")
    # Without text the form asks for no watermark; with it, the API's object (opacity a fraction).
    assert "watermark" not in converts[0]
    assert converts[1]["watermark"] == {"text": "© Cloud Image Service", "position": "top-left", "opacity": 0.75}

    assert marked.size == plain.size == (600, 400)
    width, height = plain.size
    difference = ImageChops.difference(plain, marked)
    top_left = difference.crop((0, 0, width // 2, height // 2)).getbbox()
    assert top_left is not None, "the watermark changed nothing in its corner"
    for corner in ((width // 2, 0, width, height // 2), (0, height // 2, width // 2, height),
                   (width // 2, height // 2, width, height)):
        assert difference.crop(corner).getbbox() is None, f"pixels changed outside the top-left corner: {corner}"


def test_quarantined_files_say_why_on_the_card_and_the_detail_page(page, live_service, tmp_path, screenshots):
    """A scan that denies a file leaves it ``rejected`` with ``malware`` and the signature as
    the message (the pipeline's scanner tests prove that part); here the record is made so by
    the server's own catalog, and the pages must say it in words."""
    from imageservice.adapters.sqlite.store import SqliteStore
    from imageservice.catalog import Catalog

    page.goto("/")
    page.set_input_files("#file-input", write(tmp_path, "suspect.png", imagefactory.png_bytes(200, 150)))
    expect_status(page, "suspect.png", "ready")
    record = page.request.get("/api/images").json()["images"][0]
    catalog = Catalog(SqliteStore(live_service[1] / "catalog.sqlite3"))
    stored = catalog.get(record["user_id"], record["image_id"])
    assert catalog.put(stored.copy(status="rejected", error={"code": "malware", "message": "Eicar-Test-Signature"}))

    words = "Quarantined: a virus scanner flagged this file (Eicar-Test-Signature)."
    page.reload()
    card = tile(page, "suspect.png")
    expect(card).to_have_attribute("data-status", "rejected")
    expect(card.locator(".tile-state")).to_have_text("Quarantined")
    expect(card.locator(".tile-reason")).to_have_text(words)
    assert words in card.locator("a").get_attribute("aria-label")
    screenshot(page, screenshots / "gallery-quarantined.png")
    card.locator("a").click()
    expect(page.locator(".message-title")).to_have_text("This file was quarantined")
    expect(page.locator("#rejection-reason")).to_have_text(words)
    expect(page.locator("#convert-form")).to_have_count(0)
    screenshot(page, screenshots / "detail-quarantined.png")


def test_phone_width_keyboard_and_page_screenshots(browser, live_server, page, tmp_path, screenshots):
    # Keyboard: Tab reaches the upload button, its focus is visible, Enter opens the picker.
    page.goto("/")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "choose-files":
            break
    else:
        raise AssertionError("Tab never reached the upload button")
    focus = page.evaluate("""() => {
        const el = document.activeElement, style = getComputedStyle(el);
        return {visible: el.matches(':focus-visible'), style: style.outlineStyle, width: parseFloat(style.outlineWidth)};
    }""")
    assert focus["visible"] and focus["style"] != "none" and focus["width"] >= 2, focus
    # Enter on the button opens the file picker (seen as the input's click; the native dialog
    # itself is suppressed so that headless runs stay deterministic).
    page.evaluate("""() => document.getElementById("file-input").addEventListener("click", event => {
        window.pickerOpened = true;
        event.preventDefault();
    })""")
    page.keyboard.press("Enter")
    assert page.evaluate("window.pickerOpened === true")
    page.set_input_files("#file-input", write(tmp_path, "street.jpg", photo_with_gps()))
    expect_status(page, "street.jpg", "ready")
    detail_url = tile(page, "street.jpg").locator("a").get_attribute("href")

    # Error page and API docs.
    response = page.goto("/images/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator(".error-message")).to_contain_text("no image at this address")
    screenshot(page, screenshots / "error.png")
    page.goto("/api/docs")
    expect(page.locator("h1")).to_contain_text("API")
    screenshot(page, screenshots / "api-docs.png")

    # Phone width: nothing scrolls sideways.
    page.set_viewport_size({"width": 375, "height": 812})
    for path, name in (("/", "gallery-phone.png"), (detail_url, "detail-phone.png"), ("/api/docs", "api-docs-phone.png")):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert no_horizontal_scroll(page), path
        screenshot(page, screenshots / name)
