"""The browser pages through Flask's test client: workspace cookie, CSRF, CSP, no inline code,
cache-busted assets, ownership on the detail page, errors in words."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import imagefactory
from support import assert_error

from imageservice.web.pages import assets, filters, views

STATIC = Path(views.bp.static_folder).resolve()
MODULES = STATIC / assets.MODULES_FOLDER
TEMPLATES = Path(views.bp.root_path, views.bp.template_folder).resolve()
ASSET_RE = re.compile(r"^/static/(?P<name>[\w.-]+)\?v=(?P<version>[0-9a-f]{12})$")
MODULE_RE = re.compile(r"^/static/m/(?P<version>[0-9a-f]{12})/(?P<name>[\w.-]+\.js)$")
IMPORT_RE = re.compile(r"""^\s*(?:import|export)\b[^"']*?\bfrom\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']""", re.M)


class PageParser(HTMLParser):
    """Collects what the CSP cares about: scripts, styles, inline handlers, asset URLs, metas."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict] = []
        self.inline_script_bodies: list[str] = []
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.handler_attributes: list[str] = []
        self.assets: list[str] = []
        self.metas: dict[str, str] = {}
        self.images_without_alt: list[dict] = []
        self.inputs_without_label: list[str] = []
        self.label_targets: set[str] = set()
        self.inputs: list[dict] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, _ in attrs:
            if name == "style":
                self.style_attributes.append(tag)
            if name.startswith("on"):
                self.handler_attributes.append(f"{tag}[{name}]")
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
            if attributes.get("src"):
                self.assets.append(attributes["src"])
        elif tag == "style":
            self.style_elements += 1
        elif tag == "link" and attributes.get("href", "").startswith("/static/"):
            self.assets.append(attributes["href"])
        elif tag == "meta" and "name" in attributes:
            self.metas[attributes["name"]] = attributes.get("content", "")
        elif tag == "img" and "alt" not in attributes:
            self.images_without_alt.append(attributes)
        elif tag == "label" and attributes.get("for"):
            self.label_targets.add(attributes["for"])
        if tag in ("input", "select", "textarea"):
            self.inputs.append(attributes)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_script_bodies.append(data.strip()[:80])

    def unlabelled_inputs(self) -> list[str]:
        return [
            a.get("id", a.get("name", "?")) for a in self.inputs
            if a.get("type") != "hidden" and a.get("id") not in self.label_targets and not a.get("aria-label")
        ]


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def csrf_of(client) -> str:
    return parse(client.get("/").get_data(as_text=True)).metas["csrf-token"]


def upload_via_session(client, worker, data: bytes, filename: str, content_type: str, **params) -> str:
    token = csrf_of(client)
    response = client.post("/api/images/upload", headers={"X-CSRF-Token": token}, json={
        "content_type": content_type, "size": len(data), "filename": filename, **params})
    assert response.status_code == 201, response.get_json()
    ticket = response.get_json()
    url = ticket["upload_url"].split("localhost", 1)[1]
    assert client.put(url, data=data, headers=ticket["upload_headers"]).status_code == 200
    worker.drain()
    return ticket["image_id"]


@pytest.fixture
def photo_id(client, worker):
    data = imagefactory.jpeg_bytes(640, 480, gps=(48.8584, 2.2945, 35.0))
    return upload_via_session(client, worker, data, "eiffel.jpg", "image/jpeg", tags="paris, trip")


# ---- workspace and CSRF -------------------------------------------------------------------------


def test_first_visit_gives_a_visitor_cookie_and_the_first_write_a_workspace(client):
    response = client.get("/")
    assert response.status_code == 200
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    assert not any("imageservice_session=" in c for c in cookies)  # a visit stores nothing
    cookie = next(c for c in cookies if "imageservice_visitor=" in c)
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    page = parse(response.get_data(as_text=True))
    token = page.metas["csrf-token"]
    written = client.post("/api/images/upload", headers={"X-CSRF-Token": token},
                          json={"content_type": "image/png", "size": 10})
    assert written.status_code == 201
    assert any("imageservice_session=" in v and "HttpOnly" in v for k, v in written.headers.items() if k == "Set-Cookie")
    with client.session_transaction() as session:
        workspace = session["workspace"]
    assert workspace["user_id"].startswith("anon-")
    assert workspace["csrf_token"] == token  # the token the page already holds keeps working


def test_a_second_visit_keeps_the_same_workspace(client):
    first = csrf_of(client)
    assert csrf_of(client) == first


def test_header_shows_expiry_and_quota(client):
    from datetime import timedelta

    from imageservice.core.timeutil import from_iso, utcnow

    html = client.get("/").get_data(as_text=True)
    expires_at = html.split('data-expires-at="', 1)[1].split('"', 1)[0]
    assert timedelta(hours=23, minutes=59) < from_iso(expires_at) - utcnow() <= timedelta(hours=24)
    assert "Workspace expires in" in html
    assert "0 of 1,000 images" in html and "0 B of 2.0 GB" in html


def test_cookie_write_needs_the_csrf_header(client):
    token = csrf_of(client)
    body = {"content_type": "image/png", "size": 10, "filename": "a.png"}
    assert_error(client.post("/api/images/upload", json=body), 403, "csrf_failed")
    assert_error(client.post("/api/images/upload", json=body, headers={"X-CSRF-Token": "not-the-token"}),
                 403, "csrf_failed")
    response = client.post("/api/images/upload", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.get_json()
    image_id = response.get_json()["image_id"]
    patch = {"tags": "one, two"}
    assert_error(client.patch(f"/api/images/{image_id}", json=patch), 403, "csrf_failed")
    changed = client.patch(f"/api/images/{image_id}", json=patch, headers={"X-CSRF-Token": token})
    assert changed.status_code == 200 and changed.get_json()["tags"] == ["one", "two"]
    assert_error(client.delete(f"/api/images/{image_id}"), 403, "csrf_failed")
    assert client.delete(f"/api/images/{image_id}", headers={"X-CSRF-Token": token}).status_code == 204


# ---- security headers and no inline code ----------------------------------------------------------


def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


@pytest.mark.parametrize("path", ["/", "/api/docs", "/no-such-page"])
def test_pages_get_a_csp_without_inline_script_or_style(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    directives = _directives(response.headers["Content-Security-Policy"])
    for name in ("script-src", "style-src"):
        assert directives[name] == ["'self'"], directives[name]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def _rendered_pages(client, photo_id, worker) -> dict[str, str]:
    rejected = upload_via_session(client, worker, imagefactory.html_as_jpg_bytes(), "fake.jpg", "image/jpeg")
    pending = client.post("/api/images/upload", headers={"X-CSRF-Token": csrf_of(client)},
                          json={"content_type": "image/png", "size": 10, "filename": "later.png"}).get_json()["image_id"]
    return {
        "index": client.get("/").get_data(as_text=True),
        "detail-ready": client.get(f"/images/{photo_id}").get_data(as_text=True),
        "detail-rejected": client.get(f"/images/{rejected}").get_data(as_text=True),
        "detail-pending": client.get(f"/images/{pending}").get_data(as_text=True),
        "error": client.get("/images/nope", headers={"Accept": "text/html"}).get_data(as_text=True),
        "docs": client.get("/api/docs").get_data(as_text=True),
    }


def test_rendered_pages_carry_no_inline_script_style_or_handlers(client, photo_id, worker):
    for name, html in _rendered_pages(client, photo_id, worker).items():
        page = parse(html)
        assert page.inline_script_bodies == [], name
        assert all(s.get("src") for s in page.scripts), name
        # Our scripts are modules (imports, not globals); the one classic script is Swagger UI's
        # bundle from its wheel, which defines SwaggerUIBundle for our module to start.
        classic = [s["src"] for s in page.scripts if s.get("type") != "module"]
        assert classic == ([] if name != "docs" else classic[:1]) and all(
            src.startswith("/api/docs/swagger-ui/") and src.endswith("/swagger-ui-bundle.js") for src in classic), name
        assert page.style_elements == 0, name
        assert page.style_attributes == [], name
        assert page.handler_attributes == [], name
        assert page.images_without_alt == [], name
        assert page.unlabelled_inputs() == [], name
        assert page.metas.get("csrf-token"), name


def test_template_and_script_sources_stay_free_of_inline_code():
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"\sstyle\s*=", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "<style" not in text, template.name
        for body in re.findall(r"<script\b[^>]*>(.*?)</script>", text, re.S):
            assert not body.strip(), template.name
    scripts = list(STATIC.rglob("*.js"))
    assert scripts and all(script.parent == MODULES for script in scripts)
    for script in scripts:
        text = script.read_text()
        assert "window.CIS" not in text, f"{script.name} shares state through a global"
        # Text goes in through textContent: no HTML parsing of data, no eval.
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert banned not in text, f"{script.name} uses {banned}"


# ---- cache-busted assets --------------------------------------------------------------------------


def _assert_immutable(client, url, content):
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.data == content, url
    assert response.headers["Cache-Control"] == assets.VERSIONED_CACHE_CONTROL, url
    response.close()
    return response


def test_assets_have_content_hashed_urls_and_long_caching(client):
    page = parse(client.get("/").get_data(as_text=True))
    styles = [url for url in page.assets if not url.startswith("/static/m/")]
    modules = [url for url in page.assets if url.startswith("/static/m/")]
    assert len(styles) >= 2 and len(modules) >= 2, page.assets
    for url in styles:
        match = ASSET_RE.match(url)
        assert match, url
        content = (STATIC / match["name"]).read_bytes()
        assert match["version"] == hashlib.sha256(content).hexdigest()[:12]
        _assert_immutable(client, url, content)
    for url in modules:
        match = MODULE_RE.match(url)
        assert match, url
        assert match["version"] == assets.tree_version(MODULES)
        response = _assert_immutable(client, url, (MODULES / match["name"]).read_bytes())
        assert response.mimetype == "text/javascript"
    plain = client.get("/static/app.css")
    assert plain.headers["Cache-Control"] == assets.UNVERSIONED_CACHE_CONTROL
    stale = client.get("/static/app.css?v=000000000000")
    assert stale.headers["Cache-Control"] == assets.UNVERSIONED_CACHE_CONTROL
    stale_module = client.get("/static/m/000000000000/page.js")
    assert stale_module.status_code == 200
    assert stale_module.headers["Cache-Control"] == assets.UNVERSIONED_CACHE_CONTROL
    for response in (plain, stale, stale_module):
        response.close()
    assert client.get("/static/m/000000000000/../app.css").status_code == 404


def test_every_module_import_resolves_under_the_same_versioned_prefix(client):
    """Relative imports inherit the importer's /static/m/<version>/ prefix: every one must name
    a module in the same folder, served immutable under that same version."""
    version = assets.tree_version(MODULES)
    for script in MODULES.glob("*.js"):
        for found in IMPORT_RE.findall(script.read_text()):
            target = next(t for t in found if t)
            assert target.startswith("./") and "/" not in target[2:], f"{script.name} imports {target}"
            _assert_immutable(client, f"/static/m/{version}/{target[2:]}", (MODULES / target[2:]).read_bytes())


# ---- pages: gallery, detail, ownership, errors ----------------------------------------------------


def test_index_offers_the_upload_and_the_gallery(client, settings):
    html = client.get("/").get_data(as_text=True)
    page = parse(html)
    file_input = next(i for i in page.inputs if i.get("type") == "file")
    assert "multiple" in file_input
    for accepted in ("image/jpeg", "image/png", "image/heic", "image/avif", ".jpg", ".webp", ".tiff", ".ico"):
        assert accepted in file_input["accept"].split(",")
    assert "image/svg+xml" not in file_input["accept"]
    assert f'data-max-upload-bytes="{settings.max_upload_bytes}"' in html
    assert 'id="choose-files"' in html and 'id="dropzone"' in html and 'id="gallery"' in html


def test_detail_shows_metadata_exif_and_location(client, photo_id):
    response = client.get(f"/images/{photo_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "eiffel.jpg" in html
    assert "640 × 480 px" in html
    assert "Contains location" in html
    assert "48.85840° N, 2.29450° E" in html
    for words in ("Testcam TC-1 Mark II", "TC 24-70mm f/2.8", "1/250 s", "f/2.8", "200", "50 mm", "2024-05-17 10:30:00"):
        assert words in html, words
    assert '<li class="tag">paris</li>' in html
    assert 'data-status="ready"' in html
    assert 'id="convert-form"' in html and 'id="delete-dialog"' in html


def test_rejected_detail_says_why_in_words(client, worker):
    image_id = upload_via_session(client, worker, imagefactory.html_as_jpg_bytes(), "fake.jpg", "image/jpeg")
    html = client.get(f"/images/{image_id}").get_data(as_text=True)
    record = client.get(f"/api/images/{image_id}").get_json()
    assert record["status"] == "rejected" and record["error"]["code"] == "not_an_image"
    assert "This file was rejected" in html
    reason = filters.sentence(record["error"]["message"])
    assert reason[0].isupper() and reason.endswith(".")
    assert reason in html.replace("&#39;", "'").replace("&#34;", '"')
    assert 'id="convert-form"' not in html


def test_detail_of_another_workspace_is_a_404_page(app, client, photo_id):
    stranger = app.test_client()
    response = stranger.get(f"/images/{photo_id}", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Not found" in html and "another workspace" in html
    assert "eiffel" not in html


@pytest.mark.parametrize("path", ["/images/not-an-id", "/images/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/nowhere"])
def test_unknown_pages_render_a_404_page_in_words(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert "<h1" in html and "Not found" in html and "Back to your images" in html
    assert '{"error"' not in html


def test_deleted_image_detail_is_gone(client, photo_id):
    token = csrf_of(client)
    assert client.delete(f"/api/images/{photo_id}", headers={"X-CSRF-Token": token}).status_code == 204
    assert client.get(f"/images/{photo_id}").status_code == 404


def test_api_docs_page_mounts_swagger_ui_on_the_spec(client):
    # The endpoints themselves are drawn by Swagger UI in the browser (tests/e2e/test_browser_api_docs.py).
    html = client.get("/api/docs").get_data(as_text=True)
    assert 'id="swagger-ui"' in html and 'data-spec-url="/api/openapi.json"' in html
    assert re.search(r'<script type="module" src="/static/m/[0-9a-f]+/api-docs.js">', html)
    assert "<noscript>" in html  # without script, the page still points to the spec


def test_convert_form_offers_exactly_what_the_service_converts(client, photo_id):
    from imageservice.core import conversions

    html = client.get(f"/images/{photo_id}").get_data(as_text=True)
    formats = re.search(r'<select id="convert-format".*?</select>', html, re.S).group(0)
    fits = re.search(r'<select id="convert-fit".*?</select>', html, re.S).group(0)
    assert tuple(re.findall(r'value="([^"]+)"', formats)) == conversions.CONVERT_FORMATS
    assert tuple(re.findall(r'value="([^"]+)"', fits)) == conversions.FITS


def test_convert_form_offers_a_text_watermark_with_position_and_opacity(client, photo_id):
    from imageservice.core import conversions

    html = client.get(f"/images/{photo_id}").get_data(as_text=True)
    page = parse(html)
    text = next(i for i in page.inputs if i.get("id") == "convert-watermark-text")
    assert text["maxlength"] == str(conversions.WATERMARK_TEXT_MAX)
    opacity = next(i for i in page.inputs if i.get("id") == "convert-watermark-opacity")
    assert (opacity["type"], opacity["min"], opacity["max"]) == ("range", "5", "100")
    assert opacity["value"] == "50"   # the API's default opacity, 0.5
    positions = re.search(r'<select id="convert-watermark-position".*?</select>', html, re.S).group(0)
    assert tuple(re.findall(r'value="([^"]+)"', positions)) == conversions.WATERMARK_POSITIONS
    assert re.search(r'<option value="bottom-right" selected>Bottom right</option>', positions)


def _reject(client, components, image_id: str, code: str, message: str) -> None:
    """Turn a stored record into the rejection the pipeline writes for a denied scan (the
    scanner's own tests prove the pipeline writes it; this proves the pages say it)."""
    user_id = client.get(f"/api/images/{image_id}").get_json()["user_id"]
    record = components.catalog.get(user_id, image_id)
    assert components.catalog.put(record.copy(status="rejected", error={"code": code, "message": message}))


@pytest.mark.parametrize("code, message, words", [
    ("malware", "Eicar-Test-Signature", "Quarantined: a virus scanner flagged this file (Eicar-Test-Signature)."),
    ("moderation", "explicit content", "Quarantined: the content check refused this file (explicit content)."),
])
def test_quarantined_detail_says_why_in_words(client, components, settings, photo_id, code, message, words):
    _reject(client, components, photo_id, code, message)
    html = client.get(f"/images/{photo_id}").get_data(as_text=True)
    assert "This file was quarantined" in html
    assert f'<p class="rejection-reason" id="rejection-reason">{words}</p>' in html
    assert f"deleted after {settings.quarantine_days} days" in html
    assert 'id="convert-form"' not in html and 'data-variant="original"' not in html


def test_pages_hand_the_server_constants_to_the_scripts(client, settings):
    """One source: the meta tag the modules read carries what the templates render from."""
    import json

    from imageservice.core.conversions import CONVERT_FORMATS, WATERMARK_POSITIONS
    from imageservice.core.errors import REJECTION_CODES

    config = json.loads(parse(client.get("/").get_data(as_text=True)).metas["imageservice-config"])
    assert config["max_upload_bytes"] == settings.max_upload_bytes
    assert config["max_description_length"] == settings.max_description_length
    assert [value for value, _ in config["convert_formats"]] == list(CONVERT_FORMATS)
    assert [value for value, _ in config["watermark_positions"]] == list(WATERMARK_POSITIONS)
    assert set(config["rejection_words"]) == REJECTION_CODES
