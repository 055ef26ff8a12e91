"""Batches in Chromium (docs/DESIGN.md "Batches"): select three images (one click, then a
shift-click for the range), convert them to 320-px WebP as one ZIP, which the browser downloads,
then delete two in bulk. Screenshots of the selection bar and the progress bar go to
test-artifacts/screenshots/ (docs/batch-*.png are copies of them)."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

import imagefactory

expect = pytest.importorskip("playwright.sync_api").expect  # before test_browser, which skips alike

from test_browser import expect_status, no_horizontal_scroll, tile, write  # noqa: E402

pytestmark = pytest.mark.browser


def still(page, path, clip_to=None) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    target = page.locator(clip_to) if clip_to else page
    target.screenshot(path=str(path), animations="disabled", caret="hide")


def test_select_three_convert_them_as_one_zip_then_delete_two(browser, live_server, page, tmp_path, screenshots):
    page.goto("/")
    names = ["one.jpg", "two.jpg", "three.jpg"]
    page.set_input_files("#file-input", [write(tmp_path, name, imagefactory.jpeg_bytes(800, 600)) for name in names])
    for name in names:
        expect_status(page, name, "ready")
    expect(page.locator("#selection-bar")).to_be_hidden()

    boxes = page.locator("#gallery input.tile-select")
    expect(boxes).to_have_count(3)
    boxes.nth(0).click()
    boxes.nth(2).click(modifiers=["Shift"])  # the range: all three
    expect(page.locator("#selection-count")).to_have_text("3 images selected")
    expect(page.locator("#gallery .grid-item.is-selected")).to_have_count(3)
    still(page, screenshots / "batch-selection.png", clip_to=".gallery-section")

    page.click("#batch-convert")
    dialog = page.locator("#batch-convert-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#batch-convert-format").select_option("webp")
    dialog.locator("#batch-convert-width").fill("320")
    with page.expect_download(timeout=60_000) as download_info:
        dialog.get_by_role("button", name="Convert and download").click()
        expect(page.locator("#batch-progress")).to_be_visible()
        still(page, screenshots / "batch-progress.png", clip_to=".gallery-section")
    download = download_info.value
    assert download.suggested_filename.startswith("images-") and download.suggested_filename.endswith(".zip")
    saved = tmp_path / "batch.zip"
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["one.webp", "three.webp", "two.webp"]
        for name in archive.namelist():
            image = Image.open(io.BytesIO(archive.read(name)))
            assert (image.format, image.size) == ("WEBP", (320, 240)), name
    expect(page.locator("#batch-progress-text")).to_contain_text("Ready: 3 images in the ZIP")

    page.click("#select-none")
    expect(page.locator("#selection-bar")).to_be_hidden()
    tile(page, "one.jpg").locator("input.tile-select").check()
    tile(page, "two.jpg").locator("input.tile-select").press("Space")  # the keyboard works too
    expect(page.locator("#selection-count")).to_have_text("2 images selected")
    page.click("#batch-delete")
    expect(page.locator("#batch-delete-text")).to_contain_text("2 images")
    page.click("#batch-delete-confirm")
    expect(page.locator("#gallery .grid-item")).to_have_count(1)
    expect(tile(page, "three.jpg")).to_have_count(1)
    records = page.request.get("/api/images").json()["images"]
    assert [r["filename"] for r in records] == ["three.jpg"]


def test_the_selection_bar_fits_a_phone(browser, live_server, tmp_path):
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 812})
    try:
        phone = context.new_page()
        phone.goto("/")
        phone.set_input_files("#file-input", [write(tmp_path, "p.jpg", imagefactory.jpeg_bytes(300, 200))])
        expect(tile(phone, "p.jpg")).to_have_count(1, timeout=20_000)  # any status: the layout is the point
        tile(phone, "p.jpg").locator("input.tile-select").check()
        expect(phone.locator("#selection-bar")).to_be_visible()
        assert no_horizontal_scroll(phone)
    finally:
        context.close()
