"""/api/docs in real Chromium: Swagger UI from the app's own files under the site's CSP, and its
try-it-out making real calls, with a Bearer token and with the browser's workspace cookie (a
write then needs the CSRF header the page adds)."""

from __future__ import annotations

import re

import pytest

from browser_steps import desktop_context, watched_page
from servers import run_cli

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def docs_page(browser, service_process):
    _, base = service_process
    with desktop_context(browser, base) as context:
        # Every console error fails the test: a refused asset, a CSP violation, a failed fetch.
        with watched_page(context, any_console_error=True) as page:
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith((base, "data:")) else None)
            yield page
            assert offsite == [], f"the docs page reached outside the site: {offsite}"


def _operation(page, tag: str, operation_id: str):
    block = page.locator(f"#operations-{tag}-{operation_id}")
    block.locator(".opblock-summary").first.click()
    return block


def _execute(block) -> str:
    block.locator(".try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text(re.compile(r"^\s*\d{3}"), timeout=15_000)
    return status.inner_text().strip()[:3]


def test_try_it_out_with_a_bearer_token(docs_page, service_process):
    process, _ = service_process
    token = run_cli(process.env, "token", "create", "dora").stdout.strip().splitlines()[-1]
    page = docs_page
    page.goto("/api/docs")
    expect(page.locator("#operations-images-list_images")).to_be_visible(timeout=15_000)
    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    dialog.locator("input[type=text], input[type=password]").first.fill(token)
    dialog.locator("button.authorize").first.click()
    dialog.locator("button.btn-done").first.click()

    block = _operation(page, "account", "get_account")
    assert _execute(block) == "200"
    expect(block.locator(".live-responses-table tbody .response-col_description")).to_contain_text('"user_id": "dora"')
    assert _execute(_operation(page, "images", "list_images")) == "200"


def test_try_it_out_in_the_browser_workspace_sends_the_csrf_header(docs_page):
    page = docs_page
    page.goto("/")  # the gallery gives this browser its workspace cookie
    page.goto("/api/docs")
    expect(page.locator("#operations-images-create_upload")).to_be_visible(timeout=15_000)
    block = _operation(page, "images", "create_upload")
    with page.expect_request("**/api/images/upload**") as sent:
        assert _execute(block) == "201"  # the example body, in this browser's workspace
    assert sent.value.headers.get("x-csrf-token"), sent.value.headers
    assert "authorization" not in sent.value.headers
    assert _execute(_operation(page, "account", "get_account")) == "200"
