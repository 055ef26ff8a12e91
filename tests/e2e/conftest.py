"""Fixtures for the browser tests: a real ``imageservice serve`` process (in local mode its web
workers also process the jobs), Debian's Chromium driven by Playwright, and a folder for
screenshots (``test-artifacts/screenshots``, gitignored)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from browser_steps import desktop_context, watched_page
from servers import start_service
from support import REPO

CHROMIUM = Path(os.environ.get("IMAGESERVICE_TEST_CHROMIUM", "/usr/bin/chromium"))
# Playwright's own browser download cannot work offline; Debian's chromium runs headless with
# everything that would reach the network switched off.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
# Small enough that a "too large" file is cheap to make, large enough for every test image.
E2E_MAX_UPLOAD_BYTES = 8 * 1024 * 1024


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh) to run browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:  # a broken browser install: say so instead of erroring every test
        playwright.stop()
        pytest.skip(f"{CHROMIUM} did not start: {exc}")
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="module")
def live_service(tmp_path_factory):
    """``imageservice serve`` on a free port with its own data dir, as ``make run`` starts it:
    its base URL and that data dir."""
    root = tmp_path_factory.mktemp("live")
    server, base = start_service(root / "data", root / "server.log",
                                 IMAGESERVICE_MAX_UPLOAD_BYTES=str(E2E_MAX_UPLOAD_BYTES))
    try:
        yield base, root / "data"
    finally:
        server.stop()
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "server.log", logs / "browser-server.log")


@pytest.fixture(scope="module")
def service_process(tmp_path_factory):
    """``imageservice serve`` with its defaults, for tests that also run the CLI beside it (its
    environment makes tokens): the process and its base URL."""
    root = tmp_path_factory.mktemp("served")
    process, base = start_service(root / "data", root / "server.log")
    try:
        yield process, base
    finally:
        process.stop()


@pytest.fixture(scope="module")
def live_server(live_service) -> str:
    return live_service[0]


@pytest.fixture
def context(browser, live_server):
    with desktop_context(browser, live_server) as context:
        yield context


@pytest.fixture
def page(context):
    with watched_page(context, any_console_error=False) as page:
        yield page
