from dataclasses import fields
from pathlib import Path

import pytest

from imageservice.settings import PREFIX, Settings, SettingsError

LIMITS = {
    "max_upload_bytes": 50 * 1024 * 1024,
    "max_pixels": 100_000_000,
    "max_animation_pixels": 1_000_000_000,
    "max_frames": 1000,
    "upload_url_ttl": 600,
    "download_url_ttl": 300,
    "session_ttl": 86400,
    "quota_images": 1000,
    "quota_bytes": 2 * 1024**3,
    "thumb_edge": 256,
    "preview_edge": 1440,
    "derivative_quality": 80,
    "convert_max_edge": 8192,
}


def test_defaults_are_the_design_limits():
    settings = Settings.from_env({})
    for name, value in LIMITS.items():
        assert getattr(settings, name) == value, name
    assert settings.backend == "local"


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_every_limit_is_read_from_its_own_variable(name):
    settings = Settings.from_env({PREFIX + name.upper(): "7"})
    assert getattr(settings, name) == 7


def test_types_are_parsed():
    settings = Settings.from_env({
        "IMAGESERVICE_DATA_DIR": "/tmp/x", "IMAGESERVICE_SESSION_COOKIE_SECURE": "true",
        "IMAGESERVICE_WORKER_POLL_SECONDS": "0.5", "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    })
    assert settings.data_dir == Path("/tmp/x")
    assert settings.session_cookie_secure is True
    assert settings.worker_poll_seconds == 0.5
    assert settings.aws_region == "eu-west-1"
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize("env, message", [
    ({"IMAGESERVICE_MAX_PIXELS": "lots"}, "IMAGESERVICE_MAX_PIXELS"),
    ({"IMAGESERVICE_BACKEND": "gcp"}, "IMAGESERVICE_BACKEND"),
    ({"IMAGESERVICE_BACKEND": "aws"}, "IMAGESERVICE_BUCKET"),
    ({"IMAGESERVICE_SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE"),
    ({"IMAGESERVICE_THUMB_EDGE": "0"}, "THUMB_EDGE"),
    ({"IMAGESERVICE_MAX_TAGS": "49"}, "MAX_TAGS"),  # records.TAG_LIMIT: one transaction's worth
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_generated_secret_is_shared_through_the_data_dir(tmp_path):
    first = Settings.from_env({}, data_dir=tmp_path).resolved_secret_key()
    second = Settings.from_env({}, data_dir=tmp_path).resolved_secret_key()
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_every_field_has_an_environment_name():
    names = {PREFIX + f.name.upper() for f in fields(Settings)}
    assert "IMAGESERVICE_MAX_UPLOAD_BYTES" in names and "IMAGESERVICE_QUEUE_URL" in names


def test_a_section_copies_the_settings_of_its_fields_names():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Budget:
        max_jobs: int
        memory_bytes: int
        lease: int

    settings = Settings(imaging_max_jobs=3, imaging_memory_bytes=512)
    assert settings.section(Budget, prefix="imaging_", lease=9) == Budget(3, 512, 9)
    with pytest.raises(AttributeError):
        settings.section(Budget)  # no setting is called max_jobs: a misspelt field fails at start-up
