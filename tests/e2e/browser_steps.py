"""Steps the browser tests share: a desktop context, a watched page, dropping files on the
upload zone, and the convert download.

Playwright is imported only inside the steps that need it: ``conftest`` imports this module,
and the e2e tier's non-browser tests must still be collected and run without Playwright."""

from __future__ import annotations

import base64
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from PIL import Image

DESKTOP = {"width": 1280, "height": 900}


@contextmanager
def desktop_context(browser, base_url: str | None) -> Iterator:
    context = browser.new_context(base_url=base_url, accept_downloads=True, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@contextmanager
def watched_page(context, *, any_console_error: bool) -> Iterator:
    """A page that fails its test on script errors and CSP violations (or, with
    ``any_console_error``, on every console error: CORS refusals are only reported there)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and (
        any_console_error or "Content Security Policy" in msg.text) else None)
    yield page
    assert errors == [], f"script errors, CSP or CORS refusals in the page: {errors}"


def drop_file(page, name: str, data: bytes, content_type: str) -> None:
    """Drag ``data`` as a file named ``name`` onto the upload zone and drop it, as a person does
    (the zone must show its drag feedback on the way)."""
    page.evaluate(
        """([name, data, type]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: type}));
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true, cancelable: true}));
            if (!zone.classList.contains("is-dragover")) throw new Error("no drag feedback");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        [name, base64.b64encode(data).decode(), content_type],
    )


def convert_to_png_300x200_fill(page, tmp_path: Path):
    """Use the detail page's convert form; check the downloaded file; return the download."""
    from playwright.sync_api import expect

    page.select_option("#convert-format", "png")
    page.fill("#convert-width", "300")
    page.fill("#convert-height", "200")
    page.select_option("#convert-fit", "fill")
    with page.expect_download() as download_info:
        page.click("#convert-submit")
    download = download_info.value
    assert download.suggested_filename.endswith("-300x200.png")
    saved = tmp_path / "converted.png"
    download.save_as(saved)
    with Image.open(saved) as converted:
        assert (converted.format, converted.size) == ("PNG", (300, 200))
    expect(page.locator("#convert-status")).to_contain_text("Made PNG 300 × 200")
    return download
