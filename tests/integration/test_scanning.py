"""Malware scanning and quarantine with a real clamd and a real HTTP moderation server.

clamd is started by a fixture on a temporary Unix socket (and a TCP port) with a signature
database written here: the EICAR test signature (freshclam cannot reach its mirrors) and a hash
signature of one particular clean PNG. Skipped, saying why, only when clamd is not installed
(scripts/system-deps.sh installs Debian's clamav-daemon in `make test`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import imagefactory
from servers import free_port
from support import ApiClient, make_settings

from imageservice.adapters.imaging_pool import InlineImagingRunner
from imageservice.adapters.scanners import ClamdScanner, HttpModerationScanner, NoScanner, parse_clamd_answer
from imageservice.core import keys
from imageservice.core.errors import TransientError
from imageservice.core.ids import new_id
from imageservice.core.records import PENDING, ImageRecord
from imageservice.pipeline import Pipeline, PipelineConfig

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLAMD = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)
CLEAN = imagefactory.png_bytes(64, 48)
INFECTED = CLEAN + EICAR  # a valid PNG: the trailing bytes do not stop it decoding
HASHED = imagefactory.png_bytes(40, 30)  # clean pixels, but its md5 is a "known bad" signature


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    """A clamd of our own: Unix socket + TCP on 127.0.0.1, our two signatures, foreground."""
    if CLAMD is None:
        pytest.skip("clamd is not installed (Debian clamav-daemon; scripts/system-deps.sh installs it as root)")
    root = tmp_path_factory.mktemp("clamd")
    db = root / "db"
    db.mkdir()
    (db / "tests.ndb").write_text(f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n")
    (db / "tests.hdb").write_text(f"{hashlib.md5(HASHED).hexdigest()}:{len(HASHED)}:Imageservice.Test.KnownBadPng\n")
    sock, port = root / "clamd.sock", free_port()
    (root / "clamd.conf").write_text("\n".join([
        f"LocalSocket {sock}", "TCPAddr 127.0.0.1", f"TCPSocket {port}", f"DatabaseDirectory {db}",
        "Foreground yes", f"LogFile {root / 'clamd.log'}", f"PidFile {root / 'clamd.pid'}",
        "StreamMaxLength 20M", "MaxThreads 4", "",
    ]))
    process = subprocess.Popen([CLAMD, f"--config-file={root / 'clamd.conf'}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(sock))
                    probe.sendall(b"zPING\0")
                    if probe.recv(16).startswith(b"PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "clamd.log").read_text() if (root / "clamd.log").exists() else ""
                pytest.fail(f"clamd did not start (exit {process.poll()}):\n{log[-2000:]}")
            time.sleep(0.2)
        yield {"unix": f"unix:{sock}", "tcp": f"127.0.0.1:{port}"}
    finally:
        process.terminate()
        process.wait(timeout=20)


# -- the clamd adapter against the real daemon --------------------------------------------


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_clamd_allows_a_clean_png_and_names_the_signature_of_a_bad_one(clamd, transport):
    scanner = ClamdScanner(clamd[transport], timeout=10)
    assert scanner.scan(CLEAN).allowed
    infected = scanner.scan(INFECTED)
    assert (infected.allowed, infected.code) == (False, "malware")
    assert "Eicar-Test-Signature" in infected.reason
    hashed = scanner.scan(HASHED)
    assert (hashed.allowed, hashed.code) == (False, "malware") and "Imageservice.Test.KnownBadPng" in hashed.reason


def test_a_stream_of_several_chunks_is_scanned_whole(clamd):
    big = imagefactory.png_bytes(700, 500) + b"\0" * 200_000 + EICAR  # several 64 KiB INSTREAM chunks
    assert ClamdScanner(clamd["unix"], timeout=10).scan(big).code == "malware"


def test_a_clamd_that_is_down_is_a_transient_error(tmp_path):
    with pytest.raises(TransientError):
        ClamdScanner(f"unix:{tmp_path / 'absent.sock'}", timeout=2).scan(CLEAN)
    with pytest.raises(TransientError):
        ClamdScanner(f"127.0.0.1:{free_port()}", timeout=2).scan(CLEAN)


def test_a_clamd_error_answer_is_transient_not_a_verdict():
    with pytest.raises(TransientError):
        parse_clamd_answer(b"INSTREAM size limit exceeded. ERROR")
    assert parse_clamd_answer(b"stream: OK").allowed


def test_a_silent_clamd_times_out_as_a_transient_error(tmp_path):
    """A socket that accepts and never answers: the timeout bounds the scan."""
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(1)
        started = time.monotonic()
        with pytest.raises(TransientError):
            ClamdScanner(f"unix:{path}", timeout=0.5).scan(CLEAN)
        assert time.monotonic() - started < 5


# -- the http moderation hook against a real local server -----------------------------------


class Moderator(BaseHTTPRequestHandler):
    """Denies bodies containing b"forbidden"; answers 503 while ``down``; records what it saw."""

    down = False
    seen: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(body)
        if type(self).down:
            self.send_response(503)
            self.end_headers()
            return
        verdict = {"verdict": "deny", "reason": "forbidden content"} if b"forbidden" in body else {"verdict": "allow"}
        payload = json.dumps(verdict).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def moderator():
    Moderator.down, Moderator.seen = False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Moderator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/moderate"
    server.shutdown()
    server.server_close()


def test_the_http_hook_allows_and_denies_with_the_reason(moderator):
    scanner = HttpModerationScanner(moderator, timeout=5)
    assert scanner.scan(CLEAN).allowed and Moderator.seen == [CLEAN]
    denied = scanner.scan(CLEAN + b"forbidden")
    assert (denied.allowed, denied.code) == (False, "moderation") and "forbidden content" in denied.reason
    Moderator.down = True
    with pytest.raises(TransientError):
        scanner.scan(CLEAN)


# -- local mode: the real worker, SQLite and the blob endpoint --------------------------------


def _local(tmp_path, **settings):
    from imageservice.bootstrap import build_components
    from imageservice.web import create_app
    from imageservice.entrypoints.worker import Worker

    components = build_components(make_settings(tmp_path, job_max_attempts=2, **settings))
    client = create_app(components=components).test_client()
    return components, ApiClient(client, components.service.create_token("alice"), Worker(components))


def _assert_quarantined(components, record: dict, code: str, words: str) -> None:
    assert record["status"] == "rejected" and record["error"]["code"] == code, record
    assert words in record["error"]["message"]
    original = f"originals/alice/{record['image_id']}"
    assert components.blobs.size(original) is None  # no longer where any URL points
    assert components.blobs.size(keys.quarantine_key(original)) is not None  # kept for review
    assert not (components.settings.data_path / "blobs" / "derivatives" / "alice" / record["image_id"]).exists()


def test_local_worker_with_clamav_quarantines_malware_and_publishes_clean_files(clamd, tmp_path):
    components, api = _local(tmp_path, scanner="clamav", clamd_address=clamd["unix"])
    infected = api.upload(INFECTED, "image/png", "cat.png")
    hashed = api.upload(HASHED, "image/png", "known.png")
    clean = api.upload(CLEAN, "image/png", "clean.png")
    _assert_quarantined(components, api.image(infected), "malware", "Eicar-Test-Signature")
    assert api.image(hashed)["error"]["code"] == "malware"
    assert api.image(clean)["status"] == "ready"
    download = api.call("GET", f"/api/images/{infected}/download")
    assert download.status_code >= 400  # a rejected image has nothing to download


def test_local_worker_with_the_http_hook_rejects_moderation(moderator, tmp_path):
    components, api = _local(tmp_path, scanner="http", moderation_url=moderator)
    denied = api.upload(CLEAN + b"forbidden", "image/png", "x.png")
    _assert_quarantined(components, api.image(denied), "moderation", "forbidden content")
    assert api.image(api.upload(CLEAN, "image/png", "ok.png"))["status"] == "ready"


def test_a_scanner_that_is_down_retries_then_dead_letters_never_publishing(moderator, tmp_path):
    Moderator.down = True
    components, api = _local(tmp_path, scanner="http", moderation_url=moderator)
    image_id = api.upload(CLEAN, "image/png", "x.png")
    record = api.image(image_id)
    assert record["status"] == "rejected" and record["error"]["code"] == "processing_failed"
    assert len(Moderator.seen) == 2  # job_max_attempts: each attempt asked again
    assert [job.key for job, _ in components.queue.dead_letters()] == [f"originals/alice/{image_id}"]
    assert not (components.settings.data_path / "blobs" / "derivatives").exists()


# -- aws mode: the pipeline on S3 and DynamoDB (moto server) -------------------------------


def test_aws_pipeline_with_clamav_quarantines_in_the_bucket(clamd, tmp_path, request):
    request.getfixturevalue("moto_server")
    from imageservice.adapters.aws.factory import build_aws_adapters
    from imageservice.adapters.aws.setup import setup_resources
    from imageservice.settings import Settings

    names = request.getfixturevalue("aws_names")
    settings = Settings.from_env({}, **names.settings_values(request.getfixturevalue("moto_server").endpoint),
                                 scanner="clamav", clamd_address=clamd["tcp"])
    blobs, catalog, _, clients = build_aws_adapters(settings)
    list(setup_resources(settings, clients))
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(settings), imaging=InlineImagingRunner(),
                        scanner=ClamdScanner(settings.clamd_address, 10))
    outcomes = {}
    for name, data in (("infected", INFECTED), ("clean", CLEAN)):
        image_id = new_id()
        record = ImageRecord(image_id=image_id, user_id="alice", status=PENDING, filename=f"{name}.png",
                             size=len(data), created_at="2026-05-01T12:00:00Z",
                             original_key=keys.original_key("alice", image_id, False))
        catalog.create(record)
        blobs.put(record.original_key, data, "image/png")
        pipeline.process_key(record.original_key)
        outcomes[name] = catalog.get("alice", image_id)
    infected = outcomes["infected"]
    assert infected.status == "rejected" and infected.error["code"] == "malware"
    assert blobs.size(infected.original_key) is None
    assert blobs.get(keys.quarantine_key(infected.original_key)) == INFECTED
    listed = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=f"derivatives/alice/{infected.image_id}/")
    assert listed.get("KeyCount", 0) == 0
    assert outcomes["clean"].status == "ready"


def test_no_scanner_allows_everything():
    assert NoScanner().scan(INFECTED).allowed


@pytest.mark.parametrize("env, words", [
    ({"IMAGESERVICE_SCANNER": "sophos"}, "IMAGESERVICE_SCANNER"),
    ({"IMAGESERVICE_SCANNER": "http"}, "IMAGESERVICE_MODERATION_URL"),
])
def test_scanner_settings_are_checked(env, words):
    from imageservice.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=words):
        Settings.from_env(env)
