"""`imageservice sweep`: expired session workspaces and abandoned pending uploads go, with their bytes."""

from datetime import timedelta
from pathlib import Path

import imagefactory
from imageservice.core.records import ListQuery
from imageservice.core.timeutil import utcnow
from imageservice.auth import Principal
from imageservice.commands import UploadCommand


def test_sweep_removes_expired_workspaces_and_abandoned_uploads(components, settings, worker):
    service = components.service
    blobs = Path(settings.data_dir) / "blobs"
    gone = Principal("anon-expired", expires_at="2000-01-01T00:00:00.000Z")
    live = Principal("anon-live", expires_at="2999-01-01T00:00:00.000Z")
    data = imagefactory.png_bytes(30, 30)
    for principal in (gone, live):
        ticket = service.create_upload(principal, UploadCommand(content_type="image/png", size=10))
        components.blobs.put(f"sessions/originals/{principal.user_id}/{ticket.image_id}", data, "image/png")
        service.upload_received(f"sessions/originals/{principal.user_id}/{ticket.image_id}")
    worker.drain()
    abandoned = service.create_upload(Principal("alice"), UploadCommand(content_type="image/png", size=10))
    service.clock = lambda: utcnow() + timedelta(seconds=settings.upload_url_ttl + settings.pending_grace + 5)

    assert service.sweep() == {"expired": 1, "abandoned": 1, "quarantined": 0, "batches": 0}
    assert service.catalog.list(ListQuery("anon-expired")).images == []
    assert len(service.catalog.list(ListQuery("anon-live")).images) == 1
    assert service.catalog.get("alice", abandoned.image_id) is None
    left = sorted(p.relative_to(blobs).as_posix() for p in blobs.rglob("*") if p.is_file())
    assert left and all("anon-live" in path for path in left)
    assert service.sweep() == {"expired": 0, "abandoned": 0, "quarantined": 0, "batches": 0}


def test_sweep_command_prints_counts(tmp_path):
    from servers import run_cli, service_env

    env = service_env(tmp_path / "data", 8000)
    result = run_cli(env, "sweep")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == '{"expired": 0, "abandoned": 0, "quarantined": 0, "batches": 0}'
