"""``imageservice client`` against a real ``imageservice serve``: a folder uploads with a bar per
file and one for all, a rejected file fails the run with a summary, a rerun skips what is there
(by sha256), and download, convert and ls do what they say (docs/API.md)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess

import pytest
from PIL import Image

import imagefactory
from servers import imageservice, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def client(service_process):
    """Run ``imageservice client ARGS`` as its own process: (exit status, stdout, stderr)."""
    process, base = service_process
    token = run_cli(process.env, "token", "create", "frank").stdout.strip().splitlines()[-1]
    env = {**process.env, "IMAGESERVICE_SERVER": base, "IMAGESERVICE_TOKEN": token}

    def run(*args: str, **extra_env: str) -> tuple[int, str, str]:
        done = subprocess.run(imageservice("client", *args), env={**env, **extra_env}, capture_output=True,
                              text=True, timeout=180)
        return done.returncode, done.stdout, done.stderr
    run.env = env
    return run


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "trip").mkdir()
    (root / "harbour.jpg").write_bytes(imagefactory.jpeg_bytes(900, 600, color=(200, 40, 40)))
    (root / "logo.png").write_bytes(imagefactory.png_bytes(300, 200))
    (root / "trip" / "hill.JPEG").write_bytes(imagefactory.jpeg_bytes(640, 480, color=(30, 160, 60)))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG at all" * 40)
    (root / "notes.txt").write_text("not an image: never sent")
    (root / ".hidden.jpg").write_bytes(imagefactory.jpeg_bytes(64, 64))
    return root


def run_in_terminal(args: list[str], env: dict) -> tuple[int, str]:
    """Run a command on a pseudo-terminal, as a person sees it: its status and what it drew."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, env={**env, "COLUMNS": "120", "TERM": "xterm-256color"},
                               stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    drawn = bytearray()
    while True:
        try:
            block = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not block:
            break
        drawn += block
    os.close(leader)
    return process.wait(timeout=180), ANSI.sub("", drawn.decode(errors="replace"))


def test_a_folder_uploads_with_a_bar_per_file_and_a_summary(client, folder):
    status, drawn = run_in_terminal(imageservice("client", "upload", str(folder), "--tag", "trip"), client.env)
    assert status == 1, drawn  # broken.jpg is rejected
    for name in ("harbour.jpg", "logo.png", "hill.JPEG", "broken.jpg"):
        assert re.search(rf"{re.escape(name)}\s.*━", drawn), (name, drawn)  # its own bar
    assert re.search(r"All 4 files\s.*━", drawn), drawn
    assert "3 uploaded, 0 skipped (already uploaded), 1 failed" in drawn
    assert re.search(r"failed \S*broken\.jpg: rejected", drawn), drawn
    assert "notes.txt" not in drawn and ".hidden.jpg" not in drawn

    status, out, _ = client("ls", "--json", "--tag", "trip")
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and sorted(r["filename"] for r in records) == ["broken.jpg", "harbour.jpg", "hill.JPEG", "logo.png"]
    assert sorted(r["status"] for r in records) == ["ready", "ready", "ready", "rejected"]


def test_a_rerun_skips_what_is_there(client, folder):
    status, _, err = client("upload", str(folder), "--tag", "trip")
    assert status == 1 and "0 uploaded, 3 skipped (already uploaded), 1 failed" in err, err
    (folder / "broken.jpg").rename(folder / "broken.skip")
    try:  # other tags, the same bytes: still skipped, and nothing fails now
        status, _, err = client("upload", str(folder), "--tag", "other", "--parallel", "2")
    finally:
        (folder / "broken.skip").rename(folder / "broken.jpg")
    assert status == 0 and "0 uploaded, 3 skipped (already uploaded), 0 failed" in err, err
    status, out, _ = client("ls", "--json")
    assert len(out.splitlines()) == 4  # no image twice


def test_download_convert_and_ls(client, folder, tmp_path):
    _, out, _ = client("ls", "--json", "--status", "ready", "--tag", "trip")
    harbour = next(json.loads(line) for line in out.splitlines() if json.loads(line)["filename"] == "harbour.jpg")

    status, out, err = client("download", harbour["image_id"], "-o", str(tmp_path))
    assert status == 0, err
    assert (tmp_path / "harbour.jpg").read_bytes() == (folder / "harbour.jpg").read_bytes()
    assert out.strip() == str(tmp_path / "harbour.jpg")
    status, out, err = client("download", harbour["image_id"], "--variant", "thumb", "-o", str(tmp_path))
    assert status == 0 and Image.open(out.strip()).format == "WEBP", err

    status, out, err = client("convert", harbour["image_id"], "--format", "png", "--width", "300", "-o", str(tmp_path))
    assert status == 0, err
    converted = Image.open(io.BytesIO(open(out.strip(), "rb").read()))
    assert converted.format == "PNG" and converted.size == (300, 200)

    status, out, _ = client("ls", "--tag", "trip", COLUMNS="160")
    assert status == 0 and harbour["image_id"] in out and "harbour.jpg" in out and "rejected" in out


def test_errors_are_said_plainly(client, tmp_path):
    status, _, err = client("ls", IMAGESERVICE_TOKEN="not-a-token")
    assert status == 1 and "invalid_token" in err, err
    status, _, err = client("download", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "-o", str(tmp_path))
    assert status == 1 and "image_not_found" in err, err
    status, _, err = client("ls", IMAGESERVICE_SERVER="http://127.0.0.1:9")  # nothing listens there
    assert status == 1 and "imageservice client:" in err, err
    status, _, err = client("upload", str(tmp_path))  # no image in it
    assert status == 1 and "No image files found" in err, err
    assert client("upload", str(tmp_path), IMAGESERVICE_TOKEN="")[0] == 2
