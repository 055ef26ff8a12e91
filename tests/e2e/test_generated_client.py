"""A client generated from /api/openapi.json by a third-party generator (openapi-python-client)
is typed throughout and gets through the whole flow against a real ``imageservice serve``
(docs/API.md "Generated clients")."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import time
import typing
from pathlib import Path

import attrs
import pytest
import requests

import imagefactory
from servers import run_cli

PACKAGE = "cis_generated_client"
# The two answers that carry no body: the generator types those as Any (always None).
BODYLESS = {("delete_image", "204"), ("get_download_link", "302"), ("revoke_link", "204"), ("cancel_batch", "204")}


@pytest.fixture(scope="module")
def generated(service_process, tmp_path_factory):
    _, base = service_process
    folder = tmp_path_factory.mktemp("client")
    spec = requests.get(f"{base}/api/openapi.json", timeout=10).json()
    (folder / "spec.json").write_text(json.dumps(spec))
    bin_dir = str(Path(sys.executable).parent)  # the generator's formatter (ruff) is beside it
    run = subprocess.run(
        [f"{bin_dir}/openapi-python-client", "generate", "--path", str(folder / "spec.json"), "--meta", "none",
         "--output-path", str(folder / PACKAGE)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning" not in (run.stdout + run.stderr).lower(), run.stdout + run.stderr
    sys.path.insert(0, str(folder))
    try:
        yield spec, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))


def _operations(package) -> dict:
    api = importlib.import_module(f"{package.__name__}.api")
    found = {}
    for info in pkgutil.walk_packages(api.__path__, f"{api.__name__}."):
        module = importlib.import_module(info.name)
        if hasattr(module, "sync_detailed"):
            found[info.name.rsplit(".", 1)[1]] = (info.name.split(".")[-2], module)
    return found


def test_the_generated_client_has_no_untyped_part(generated):
    spec, package = generated
    models = importlib.import_module(f"{package.__name__}.models")
    untyped = [f"{name}.{field.name}: {field.type}" for name in models.__all__
               if attrs.has(cls := getattr(models, name)) for field in attrs.fields(cls) if "Any" in str(field.type)]
    assert untyped == []
    assert {"Image", "ImageList", "UploadRequest", "UploadTicket", "ConvertRequest", "Watermark", "WatermarkPosition", "Link",
            "DownloadLink", "Conversion", "Account", "Usage", "Limits", "Error"} <= set(models.__all__)

    operations = _operations(package)
    spec_operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert set(operations) == set(spec_operations)
    for operation_id, (tag, module) in operations.items():
        assert tag == spec_operations[operation_id]["tags"][0]
        signature = inspect.signature(module.sync_detailed)
        assert [p for p in signature.parameters.values() if "Any" in str(p.annotation)] == [], operation_id
        answer = typing.get_args(signature.return_annotation)[0]
        untyped_answers = {(operation_id, status) for status, response in spec_operations[operation_id]["responses"].items()
                           if "content" not in response and "$ref" not in response}
        assert untyped_answers <= BODYLESS
        assert ("Any" in str(answer)) == bool(untyped_answers), (operation_id, answer)
    assert {tag for tag, _ in operations.values()} == {"images", "batches", "sharing", "account", "service"}


def test_the_generated_client_gets_through_the_whole_flow(service_process, generated):
    process, base = service_process
    _, package = generated
    models = importlib.import_module(f"{package.__name__}.models")
    ops = {name: module for name, (_, module) in _operations(package).items()}
    token = run_cli(process.env, "token", "create", "carol").stdout.strip().splitlines()[-1]
    client = package.AuthenticatedClient(base_url=base, token=token)

    data = imagefactory.jpeg_bytes(640, 480, gps=(43.3, 5.37, 12.0))
    ticket = ops["create_upload"].sync(client=client, body=models.UploadRequest(
        size=len(data), content_type="image/jpeg", filename="port.jpg", tags=["sea"]), idempotency_key="port-1")
    assert isinstance(ticket, models.UploadTicket), ticket
    requests.put(ticket.upload_url, data=data, headers=ticket.upload_headers.additional_properties,
                 timeout=30).raise_for_status()
    assert isinstance(ops["complete_upload"].sync(ticket.image_id, client=client), models.Completion)
    deadline = time.monotonic() + 60
    while (image := ops["get_image"].sync(ticket.image_id, client=client)).status != models.ImageStatus.READY:
        assert time.monotonic() < deadline, process.log()
        time.sleep(0.1)
    assert image.width == 640 and image.gps.latitude == pytest.approx(43.3)
    assert image.derivatives.additional_properties["thumb"].format_.lower() == "webp"

    page = ops["list_images"].sync(client=client, status=models.ImageStatus.READY, tag="sea")
    assert [i.image_id for i in page.images] == [ticket.image_id]
    link = ops["get_download_link"].sync(ticket.image_id, client=client)
    assert requests.get(link.download_url, timeout=10).content == data
    converted = ops["convert_image"].sync(ticket.image_id, client=client, body=models.ConvertRequest(
        format_=models.ConvertFormat.PNG, width=200,
        watermark=models.Watermark(text="© carol", position=models.WatermarkPosition.CENTER)))
    assert isinstance(converted, models.Conversion) and converted.width == 200, converted
    changed = ops["update_image"].sync(ticket.image_id, client=client,
                                       body=models.UpdateRequest(tags=["sea", "port"]))
    assert changed.tags == ["sea", "port"]
    account = ops["get_account"].sync(client=client)
    assert account.user_id == "carol" and account.usage.images == 1 and account.limits.max_pixels > 0
    refused = ops["get_image"].sync("01JF3Q8ZQ7W9V6M2K4T5R8N1BX", client=client)
    assert isinstance(refused, models.Error) and refused.error.code == "image_not_found"
    assert ops["delete_image"].sync_detailed(ticket.image_id, client=client).status_code == 204
    assert ops["list_images"].sync(client=client).images == []
