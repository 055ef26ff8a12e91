"""Sharing in Chromium: the owner makes a link on the image page; a stranger with no cookies on
a 375-px phone opens it, gets a rendition no wider than 828 px, and after the owner revokes the
link gets the not-found page (docs/DESIGN.md "Share links")."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

import imagefactory

expect = pytest.importorskip("playwright.sync_api").expect  # before test_browser, which skips alike

from test_browser import PROCESSING_TIMEOUT, expect_status, no_horizontal_scroll, screenshot, tile, write  # noqa: E402

pytestmark = pytest.mark.browser


def test_a_link_made_on_the_image_page_opens_on_a_phone_and_ends_when_revoked(browser, live_server, page, tmp_path,
                                                                               screenshots):
    page.goto("/")
    page.set_input_files("#file-input", [write(tmp_path, "harbour.jpg", imagefactory.jpeg_bytes(2400, 1600))])
    expect_status(page, "harbour.jpg", "ready")
    tile(page, "harbour.jpg").locator("a").first.click()
    expect(page.locator("#share-title")).to_be_visible(timeout=PROCESSING_TIMEOUT)
    expect(page.locator("#share-empty")).to_be_visible()

    page.select_option("#share-expiry", "86400")
    page.click("#share-create")
    link = page.locator("#share-links .share-link").first
    expect(link).to_be_visible()
    url = link.locator(".share-url").input_value()
    assert re.fullmatch(rf"{re.escape(live_server)}/s/[A-Za-z0-9_-]{{22,}}", url), url
    expect(link.locator(".share-facts")).to_contain_text("0 views")
    link.get_by_role("button", name="Copy embed HTML").click()
    expect(page.locator("#share-status")).to_have_text(re.compile("copied|selected", re.I))
    screenshot(page, screenshots / "share-card.png")
    detail = page.url
    page.goto("/")
    expect(tile(page, "harbour.jpg").locator(".badge-shared")).to_have_text("Shared")
    page.goto(detail)

    stranger = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2,
                                   is_mobile=True, has_touch=True)
    try:
        phone = stranger.new_page()
        answer = phone.goto(url)
        assert answer.status == 200
        image = phone.locator("img.share-image")
        expect(image).to_be_visible()
        phone.wait_for_function("document.querySelector('img.share-image').complete")
        chosen = image.evaluate("img => ({src: img.currentSrc, width: img.naturalWidth})")
        width = int(chosen["src"].rsplit("/w/", 1)[1].split("?")[0])
        assert width <= 828, chosen  # 375 CSS px at 2x: the 750 rung, not the 2400-px original
        served = Image.open(io.BytesIO(stranger.request.get(chosen["src"]).body()))
        assert served.width == width and chosen["width"] * 2 == width, chosen  # naturalWidth is per CSS px
        assert no_horizontal_scroll(phone)
        assert stranger.cookies() == []  # the public side sets none
        expect(phone.locator(".share-title")).to_have_text("harbour.jpg")
        expect(phone.locator(".share-meta")).to_have_text("2400 × 1600 px")
        screenshot(phone, screenshots / "share-page-375.png")

        page.reload()
        revoke = page.locator("#share-links .share-link").first
        expect(revoke.locator(".share-facts")).to_contain_text("1 view")
        revoke.get_by_role("button", name="Revoke").click()
        expect(page.locator("#share-empty")).to_be_visible()

        gone = phone.goto(url)
        assert gone.status == 404
        expect(phone.locator("h1")).to_have_text("Not found")
    finally:
        stranger.close()

    page.goto("/")
    expect(tile(page, "harbour.jpg").locator(".badge-shared")).to_have_count(0)
