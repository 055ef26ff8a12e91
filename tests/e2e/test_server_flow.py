"""The README's walkthrough against the real server process: token by CLI, then plain HTTP."""

from __future__ import annotations

import time

import pytest
import requests

import imagefactory
from servers import run_cli, service_env, start_service


@pytest.fixture
def server(tmp_path):
    data_dir = tmp_path / "data"
    process, base = start_service(data_dir, tmp_path / "server.log")
    env = service_env(data_dir, int(base.rsplit(":", 1)[1]))
    yield base, env, process
    process.stop()


def wait_for_status(base, headers, image_id, statuses=("ready", "rejected"), timeout=15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = requests.get(f"{base}/api/images/{image_id}", headers=headers, timeout=5).json()
        if record["status"] in statuses:
            return record
        time.sleep(0.1)
    raise AssertionError(f"{image_id} still {record['status']} after {timeout}s")


def test_readme_walkthrough(server):
    base, env, _ = server
    created = run_cli(env, "token", "create", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    data = imagefactory.jpeg_bytes(2000, 1500, gps=(51.5, -0.12, 11.0))

    response = requests.post(
        f"{base}/api/images/upload",
        params={"content_type": "image/jpeg", "size": len(data), "filename": "london.jpg", "tags": "trip,uk"},
        headers=headers, timeout=5)
    assert response.status_code == 201, response.text
    ticket = response.json()
    started = time.monotonic()
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=10)
    assert put.status_code == 200, put.text
    record = wait_for_status(base, headers, ticket["image_id"])
    ready_after = time.monotonic() - started
    assert record["status"] == "ready" and ready_after < 5, ready_after
    assert record["gps"]["longitude"] < 0

    listed = requests.get(f"{base}/api/images", params={"tag": "uk"}, headers=headers, timeout=5).json()
    assert [r["image_id"] for r in listed["images"]] == [ticket["image_id"]]

    link = requests.get(f"{base}/api/images/{ticket['image_id']}/download", headers=headers, timeout=5).json()
    assert requests.get(link["download_url"], timeout=5).content == data

    converted = requests.post(f"{base}/api/images/{ticket['image_id']}/convert", headers=headers, timeout=30,
                              json={"format": "webp", "width": 400, "fit": "contain"}).json()
    assert (converted["width"], converted["height"]) == (400, 300)
    assert len(requests.get(converted["download_url"], timeout=5).content) == converted["bytes"]

    assert requests.delete(f"{base}/api/images/{ticket['image_id']}", headers=headers, timeout=5).status_code == 204
    gone = requests.get(f"{base}/api/images/{ticket['image_id']}", headers=headers, timeout=5)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "image_not_found"
    assert requests.get(link["download_url"], timeout=5).status_code == 404


def test_json_body_upload_and_complete(server):
    base, env, _ = server
    token = run_cli(env, "token", "create", "bob").stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    data = imagefactory.png_bytes(300, 300)
    ticket = requests.post(f"{base}/api/images/upload", headers=headers, timeout=5,
                           json={"content_type": "image/png", "size": len(data), "filename": "a.png",
                                 "tags": ["x"], "description": "square"}).json()
    requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=5)
    done = requests.post(f"{base}/api/images/{ticket['image_id']}/complete", headers=headers, timeout=5)
    assert done.status_code == 202
    assert wait_for_status(base, headers, ticket["image_id"])["status"] == "ready"


def test_admin_token_from_cli(server):
    base, env, _ = server
    result = run_cli(env, "token", "create", "root", "--admin")
    token = result.stdout.strip().splitlines()[-1]
    listed = requests.get(f"{base}/api/images", params={"user_id": "someone"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert listed.status_code == 200 and listed.json() == {"images": [], "next_cursor": None}
    bad = run_cli(env, "token", "create", "../etc")
    assert bad.returncode != 0 and "not a valid user id" in bad.stderr
