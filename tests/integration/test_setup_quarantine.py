"""``imageservice setup`` (emulators) mirrors data.yaml's quarantine lifecycle rule."""

from __future__ import annotations

from imageservice.adapters.aws.setup import setup_resources
from imageservice.settings import Settings


def test_setup_expires_quarantine_after_quarantine_days(moto_server, aws_names, monkeypatch):
    """The emulator setup mirrors data.yaml's ExpireQuarantine rule (IMAGESERVICE_QUARANTINE_DAYS)."""
    settings = Settings.from_env({**aws_names.env(moto_server.endpoint), "IMAGESERVICE_QUARANTINE_DAYS": "9"})
    list(setup_resources(settings))
    rules = moto_server.client("s3").get_bucket_lifecycle_configuration(Bucket=settings.bucket)["Rules"]
    (rule,) = [r for r in rules if r["ID"] == "ExpireQuarantine"]
    assert (rule["Filter"]["Prefix"], rule["Expiration"]["Days"]) == ("quarantine/", 9)
