"""The browser UI in aws mode: Chromium uploads straight to S3 through a presigned URL.

Every part is a real process: a moto server (S3 -> SQS notifications, DynamoDB, SQS),
``imageservice setup``, ``imageservice serve`` (``IMAGESERVICE_BACKEND=aws``,
``IMAGESERVICE_PUBLIC_URL`` = its own ``http://127.0.0.1:<port>``) and ``imageservice worker``,
driven by Debian's Chromium. Two storages are tried:

``moto``
    S3, DynamoDB and SQS all on the moto server, bucket made by ``imageservice setup``.
``seaweedfs``
    S3 on SeaweedFS (``weed mini``), DynamoDB and SQS on moto, through boto3's service-specific
    endpoint variables (``AWS_ENDPOINT_URL_S3`` / ``_DYNAMODB`` / ``_SQS``, with
    ``AWS_ENDPOINT_URL`` unset so the app passes no endpoint of its own). SeaweedFS sends no
    S3 event notifications: processing starts from the page's ``POST .../complete`` alone.

What this proves, for both:

* the page's own JS PUTs the bytes straight to storage's origin (another port than the app's),
  with the ticket's signed Content-Type, without cookies, and storage keeps exactly those bytes;
* the page's CSP lets that PUT and the thumbnail/preview GETs through (``connect-src`` and
  ``img-src`` carry the S3 endpoint's origin), and nothing in the page errs;
* the bucket's CORS rule as the product writes it (exactly the app's origin, PUT with
  Content-Type) is enough for Chromium's real preflight (the browser itself checks the answered
  Allow-Origin/-Methods/-Headers against its request) and it gates: the same presigned PUT from
  the same app under another origin (``http://localhost:<port>``) is refused by the browser,
  from the app's origin it succeeds;
* processing (S3 event and/or ``/complete`` -> SQS -> worker -> DynamoDB) reaches Ready, the
  thumbnail loads from storage, the detail page shows the camera and the location badge, and a
  PNG conversion downloads from storage as a real PNG.

What it cannot prove:

* moto is not strict about CORS. Its Flask app is wrapped in flask-cors
  (moto/moto_server/werkzeug_app.py, unless ``MOTO_DISABLE_GLOBAL_CORS``): a bucket *without*
  CORS rules answers every preflight and every request with a permissive Allow-Origin, where S3
  refuses; with rules, moto checks the Origin only (403 otherwise) and ignores the requested
  method and headers, merely echoing the rule's lists, so only Chromium's own check covers
  those; actual (non-preflight) responses get ``Access-Control-Allow-Origin`` from flask-cors for
  any origin. SeaweedFS 4.x does evaluate bucket CORS (origin, method and requested headers),
  which is why the test runs there too; but it is not S3 either.
* SeaweedFS does not implement PutBucketNotificationConfiguration (it answers
  ``BucketAlreadyOwnedByYou``): ``imageservice setup`` says so and goes on, and uploads there are
  processed on the page's ``POST .../complete``.
* Real S3 specifics (virtual-hosted bucket URLs, HTTPS, real IAM) are out of reach.
"""

from __future__ import annotations

import re
import shutil
from urllib.parse import urlsplit

import pytest

import imagefactory
from browser_steps import convert_to_png_300x200_fill, desktop_context, watched_page
from aws_fixtures import aws_credentials, moto_server, seaweedfs  # noqa: F401  (fixtures)
from servers import free_port, run_cli
from support import REPO
from test_aws_flow import AwsDeployment, wait_for

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect

PROCESSING_TIMEOUT = 20_000  # ms: PUT, S3 event or /complete, SQS, worker, the gallery's poll
PARIS = (48.8584, 2.2945, 35.0)
SERVICE_ENDPOINTS = ("AWS_ENDPOINT_URL", "IMAGESERVICE_AWS_ENDPOINT_URL")
ARTIFACTS = REPO / "test-artifacts"  # as in conftest


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class BrowserDeployment(AwsDeployment):
    """test_aws_flow's deployment, with S3 on ``storage`` (moto itself, or SeaweedFS)."""

    def __init__(self, moto, storage, root):
        super().__init__(moto, root)
        self.storage = storage
        self.s3 = storage.client("s3")

    def env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in super().env(port).items() if not k.startswith("AWS_ENDPOINT_URL_")}
        if self.storage is not self.moto:
            for name in SERVICE_ENDPOINTS:
                env.pop(name)
            env.update(self.storage.env)  # SeaweedFS checks signatures; moto takes any key
            env.update(AWS_ENDPOINT_URL_S3=self.storage.endpoint, AWS_ENDPOINT_URL_DYNAMODB=self.moto.endpoint,
                       AWS_ENDPOINT_URL_SQS=self.moto.endpoint)
        return env


@pytest.fixture(params=["moto", "seaweedfs"])
def deployment(request, moto_server, tmp_path):
    storage = moto_server if request.param == "moto" else request.getfixturevalue("seaweedfs")
    deployment = BrowserDeployment(moto_server, storage, tmp_path)
    deployment.variant = request.param
    port = free_port()
    deployment.app = f"http://127.0.0.1:{port}"
    setup = run_cli(deployment.env(port), "setup")  # on SeaweedFS: says it has no notifications
    assert setup.returncode == 0, setup.stdout + setup.stderr
    try:
        assert deployment.serve(port, "server") == deployment.app
        deployment.worker(port)
        yield deployment
    finally:
        deployment.stop()
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for process in deployment.processes:
            shutil.copy(process.log_path, logs / f"browser-aws-{request.param}-{process.log_path.name}")


@pytest.fixture
def context(browser, deployment):
    with desktop_context(browser, deployment.app) as context:
        yield context


@pytest.fixture
def page(context):
    """Stricter than conftest's page: any console error (a CORS refusal is one) fails the test."""
    with watched_page(context, any_console_error=True) as page:
        yield page


def tile(page, filename: str):
    return page.locator("#gallery .grid-item").filter(has_text=filename)


def screenshot(page, path) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")


PUT_FROM_PAGE = """async url => {
    try {
        const response = await fetch(url, {method: "PUT", headers: {"Content-Type": "image/jpeg"},
                                           body: new Uint8Array([255, 216, 255, 217])});
        return response.status;
    } catch (error) {
        return error.name;
    }
}"""


def test_the_page_uploads_straight_to_s3_and_shows_the_processed_image(
        browser, deployment, context, page, tmp_path, screenshots):
    app, storage, bucket = deployment.app, deployment.storage.endpoint, deployment.names.bucket
    assert origin(storage) != app

    # The bucket lets exactly the app's origin PUT with a Content-Type (and GET/HEAD).
    [rule] = deployment.s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == [app]
    assert "PUT" in rule["AllowedMethods"]
    assert "content-type" in [h.lower() for h in rule["AllowedHeaders"]]

    requests_seen = []
    page.on("request", lambda request: requests_seen.append(request))
    page.goto("/")
    csp = page.evaluate("async () => (await fetch('/')).headers.get('Content-Security-Policy')")
    for directive in ("connect-src", "img-src"):
        assert re.search(rf"{directive} [^;]*{re.escape(origin(storage))}", csp), csp

    data = imagefactory.jpeg_bytes(1200, 800, gps=PARIS)
    path = tmp_path / "paris.jpg"
    path.write_bytes(data)
    page.fill("#upload-tags", "holiday")
    page.set_input_files("#file-input", str(path))
    expect(tile(page, "paris.jpg")).to_have_attribute("data-status", "ready", timeout=PROCESSING_TIMEOUT)
    # The upload row turns Ready only after the PUT and POST .../complete both finished.
    expect(page.locator("#upload-list .upload-item").filter(has_text="paris.jpg").locator(".pill")).to_have_text("Ready")

    # The bytes went from the page to storage, not through the app.
    [record] = page.request.get("/api/images").json()["images"]
    writes = [r for r in requests_seen if r.method not in ("GET", "HEAD")]
    assert sorted((r.method, urlsplit(r.url).path) for r in writes if origin(r.url) == app) == [
        ("POST", f"/api/images/{record['image_id']}/complete"), ("POST", "/api/images/upload")]
    [put] = [r for r in writes if origin(r.url) != app]
    assert put.method == "PUT" and origin(put.url) == origin(storage), put.url
    assert urlsplit(put.url).path.startswith(f"/{bucket}/") and "X-Amz-Signature=" in put.url
    headers = put.all_headers()
    assert headers["content-type"] == "image/jpeg" and headers["origin"] == app
    assert "cookie" not in headers and "x-csrf-token" not in headers
    assert put.response().status == 200
    stored = deployment.s3.get_object(Bucket=bucket, Key=urlsplit(put.url).path.split("/", 2)[2])
    assert stored["Body"].read() == data and record["image_id"] in put.url
    assert (record["status"], record["width"], record["height"]) == ("ready", 1200, 800), record
    assert record["exif"]["Model"] == "TC-1 Mark II" and record["gps"]["latitude"] == pytest.approx(PARIS[0])

    # A real thumbnail, loaded from storage.
    thumb = tile(page, "paris.jpg").locator("img")
    expect(thumb).to_have_class(re.compile(r"\bis-loaded\b"))
    assert thumb.evaluate("img => img.naturalWidth > 0")
    assert origin(thumb.get_attribute("src")) == origin(storage)
    screenshot(page, screenshots / ("gallery-aws.png" if deployment.variant == "moto" else "gallery-aws-seaweedfs.png"))

    # Detail: camera model, location badge, preview from storage.
    tile(page, "paris.jpg").locator("a").click()
    expect(page).to_have_url(re.compile(rf"/images/{record['image_id']}$"))
    expect(page.locator(".exif")).to_contain_text("Testcam TC-1 Mark II")
    expect(page.locator("#location-badge")).to_have_text("Contains location")
    expect(page.locator("#preview-image")).to_have_class(re.compile(r"\bis-loaded\b"))
    assert origin(page.locator("#preview-image").get_attribute("src")) == origin(storage)

    # Convert to a 300x200 PNG: the download comes from storage and is a PNG.
    download = convert_to_png_300x200_fill(page, tmp_path)
    assert origin(download.url) == origin(storage)
    assert download.suggested_filename == "paris-300x200.png"

    # The bucket's CORS rule gates the browser: the same presigned PUT is refused from another
    # origin of the very same app (localhost instead of 127.0.0.1) and accepted from the app's.
    probe_key = "cors-probe/probe.jpg"
    url = deployment.s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": probe_key, "ContentType": "image/jpeg"},
        ExpiresIn=300, HttpMethod="PUT")
    stranger = browser.new_context()
    try:
        elsewhere = stranger.new_page()
        elsewhere.goto(app.replace("127.0.0.1", "localhost") + "/")
        with elsewhere.expect_console_message(lambda msg: "CORS policy" in msg.text) as refusal:
            assert elsewhere.evaluate(PUT_FROM_PAGE, url) == "TypeError"
        assert "preflight" in refusal.value.text, refusal.value.text
    finally:
        stranger.close()
    assert "Contents" not in deployment.s3.list_objects_v2(Bucket=bucket, Prefix=probe_key)
    assert page.evaluate(PUT_FROM_PAGE, url) == 200
    wait_for(lambda: "Contents" in deployment.s3.list_objects_v2(Bucket=bucket, Prefix=probe_key),
             "the probe object", deployment, timeout=5)
