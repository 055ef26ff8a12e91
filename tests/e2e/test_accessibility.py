"""Every page is clean under axe-core (WCAG 2.0 and 2.1, levels A and AA), at desktop and
phone widths and in the states people see: the empty gallery, a gallery with a ready image and a
rejected one, the detail page with its convert form, the error page, and the API docs with an
operation open, the Authorize dialog, and an executed call's answer. axe-core's script comes
from the axe-playwright-python wheel: nothing is fetched from a CDN."""

from __future__ import annotations

import pytest

import imagefactory
from browser_steps import desktop_context, watched_page
from servers import run_cli

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect
Axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
           "resultTypes": ["violations"]}
PHONE = {"width": 375, "height": 812}


def assert_clean(page, state: str) -> None:
    violations = Axe().run(page, options=WCAG_AA).response["violations"]
    found = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:5]]} "
             f"{v['nodes'][0]['failureSummary']}" for v in violations]
    assert found == [], f"{state}: {found}"


def assert_clean_at_both_widths(page, state: str) -> None:
    assert_clean(page, f"{state}, desktop")
    page.set_viewport_size(PHONE)
    assert_clean(page, f"{state}, phone")
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def page(browser, service_process):
    _, base = service_process
    with desktop_context(browser, base) as context:
        with watched_page(context, any_console_error=False) as page:
            yield page


def test_the_gallery_detail_and_error_pages(page):
    page.goto("/")
    expect(page.locator("#dropzone")).to_be_visible()
    assert_clean_at_both_widths(page, "empty gallery")

    page.set_input_files("#file-input", files=[
        {"name": "harbour.jpg", "mimeType": "image/jpeg", "buffer": imagefactory.jpeg_bytes(800, 600)},
        {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0 not really a jpeg"},
    ])
    gallery = page.locator("#gallery .grid-item")
    expect(gallery.filter(has_text="harbour.jpg")).to_have_attribute("data-status", "ready", timeout=30_000)
    expect(gallery.filter(has_text="broken.jpg")).to_have_attribute("data-status", "rejected", timeout=30_000)
    assert_clean_at_both_widths(page, "gallery with a ready and a rejected image")

    page.goto(gallery.filter(has_text="harbour.jpg").locator("a").first.get_attribute("href"))
    expect(page.locator("h1")).to_contain_text("harbour.jpg")
    assert_clean_at_both_widths(page, "detail page")

    assert page.goto("/images/01ARZ3NDEKTSV4RRFFQ69G5FAV").status == 404
    assert_clean_at_both_widths(page, "not-found page")


def test_the_api_docs_in_every_state(page, service_process):
    process, _ = service_process
    token = run_cli(process.env, "token", "create", "erin").stdout.strip().splitlines()[-1]
    page.goto("/api/docs")
    expect(page.locator("#operations-images-list_images")).to_be_visible(timeout=15_000)
    assert_clean_at_both_widths(page, "docs, every operation closed")

    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    expect(dialog).to_be_visible()
    assert_clean(page, "docs, the Authorize dialog")
    dialog.locator("input").first.fill(token)
    dialog.locator("button.authorize").first.click()
    dialog.locator("button.btn-done").first.click()

    convert = page.locator("#operations-images-convert_image")
    convert.locator(".opblock-summary").first.click()
    expect(convert.locator(".try-out__btn")).to_be_visible()
    assert_clean_at_both_widths(page, "docs, convert_image open")

    listing = page.locator("#operations-images-list_images")
    listing.locator(".opblock-summary").first.click()
    listing.locator(".try-out__btn").click()
    listing.locator("button.execute").click()
    expect(listing.locator(".live-responses-table tbody .response-col_status").first).to_contain_text("200")
    assert_clean_at_both_widths(page, "docs, an executed call's answer")
