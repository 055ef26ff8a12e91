"""Settings: parsed once from the environment, then passed around as an immutable value.

Every limit (docs/DESIGN.md "Limits") is a named field here; its environment variable is
``IMAGESERVICE_`` + the field name in upper case (``max_upload_bytes`` ->
``IMAGESERVICE_MAX_UPLOAD_BYTES``).  boto3 reads ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and
credentials itself; we only mirror region and endpoint so adapters can pass them explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, TypeVar

from .core.conversions import WATERMARK_TEXT_MAX
from .core.records import TAG_LIMIT

T = TypeVar("T")
PREFIX = "IMAGESERVICE_"
MIB = 1024 * 1024
GIB = 1024 * MIB


class SettingsError(ValueError):
    """A setting from the environment could not be parsed."""


@dataclass(frozen=True)
class Settings:
    backend: str = "local"
    data_dir: Path = Path("data")
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8000"

    # aws mode
    bucket: str = ""
    table: str = ""
    queue_url: str = ""
    dead_letter_queue_url: str = ""
    session_table: str = ""
    aws_region: str = ""
    aws_endpoint_url: str = ""
    s3_endpoint_url: str = ""  # S3 elsewhere than DynamoDB/SQS (e.g. SeaweedFS); else aws_endpoint_url

    # limits (docs/DESIGN.md "Limits")
    max_upload_bytes: int = 50 * MIB
    max_pixels: int = 100_000_000
    max_animation_pixels: int = 1_000_000_000
    max_frames: int = 1000
    upload_url_ttl: int = 600
    download_url_ttl: int = 300
    session_ttl: int = 24 * 3600
    quota_images: int = 1000
    quota_bytes: int = 2 * GIB
    thumb_edge: int = 256
    preview_edge: int = 1440
    derivative_quality: int = 80
    convert_max_edge: int = 8192
    max_tags: int = 20
    max_tag_length: int = 64
    max_description_length: int = 2000
    page_size_max: int = 100
    uploads_per_minute: int = 120

    # api: new conversion outputs per owner a minute (429 with Retry-After beyond);
    # cached answers to an equal request cost nothing
    conversions_per_minute: int = 30
    # how long an Idempotency-Key of POST /api/images/upload answers repeats
    idempotency_ttl: int = 24 * 3600

    # share links (docs/DESIGN.md "Share links"): live links an image may have at once, and
    # renditions a link may have made a minute (made once each; cached ones are never limited)
    share_links_per_image: int = 10
    rendition_misses_per_minute: int = 30
    # where public share URLs point (the CDN in aws mode); empty: public_url
    share_url: str = ""
    # batches (docs/DESIGN.md "Batches"): images one batch may name (413 beyond), batches an owner
    # may start an hour (429 beyond), and the most bytes one batch's archive may make (422 beyond)
    batch_max_images: int = 100
    batches_per_hour: int = 20
    batch_max_bytes: int = 1 * GIB
    # aws mode: the CloudFront distribution in front of /s/* (revocations invalidate it); empty: none
    cdn_distribution_id: str = ""

    # imaging budget (adapters/imaging_pool.py): every decode and encode runs in a
    # child process under an address-space ceiling (RLIMIT_AS) and a wall-clock limit, at most
    # imaging_max_jobs at once per process; a job that waited imaging_queue_seconds for a slot
    # gives up with 429 imaging_busy.
    imaging_max_jobs: int = 2
    imaging_memory_bytes: int = 1 * GIB
    imaging_timeout_seconds: float = 20.0
    imaging_queue_seconds: float = 5.0
    # spare imaging children kept started per process, so a job after a pause or after a heavy
    # job retired its child does not wait ~150 ms for a new one (0: start children on demand)
    imaging_warm_children: int = 1

    # jobs and housekeeping
    job_visibility_timeout: int = 120
    job_max_attempts: int = 5
    job_retry_delay: int = 5
    worker_poll_seconds: float = 0.2
    sweep_interval: int = 300
    embedded_worker: bool = True  # local mode: `serve` processes jobs in its own process too
    # ... with this many job threads (each runs one job at a time; imaging runs in child processes)
    embedded_worker_threads: int = 2
    pending_grace: int = 300

    # web
    session_cookie_secure: bool = False

    # web server (web/server.py; docs/SERVER.md)
    host: str = "127.0.0.1"  # `serve --host` overrides; the container's command says 0.0.0.0
    port: int = 8000  # also from PORT
    # Processes that serve the app (gunicorn's workers, each waitress: web/processes.py): the
    # app's Python work takes a core per process. 4 x 4 threads listed at 0.55 of a bare app's
    # rate on 2 cores, 2 x 8 at 0.48 (bench/README.md). The container: one per vCPU.
    web_workers: int = 4
    web_threads: int = 4  # threads per process that run the app; slow clients hold none of them
    # Open connections; past it new ones wait in the listen backlog. waitress watches its sockets
    # with select(), which handles descriptors below 1024, and a download holds a socket and a
    # file: 500 keeps both under it (its poll() loop measured 3-7x slower: docs/SERVER.md).
    web_connection_limit: int = 500
    # A connection with nothing to do (an idle keep-alive, or a client that stopped reading its
    # answer) is closed after this long; longer than the ALB's 60 s idle timeout, so that behind
    # it the ALB, not the app, closes idle connections (no request races a closing socket).
    web_idle_timeout: int = 75
    # A request's headers and body must arrive within web_request_seconds plus its length over
    # web_min_body_rate (bytes/s): a 50 MiB upload gets 20 s + 800 s; a client that dribbles is cut off.
    web_request_seconds: float = 20.0
    web_min_body_rate: int = 64 * 1024
    # The request line and headers together (a 9 KB cookie passes; the ALB allows 16 KB a line).
    web_max_header_bytes: int = 32 * 1024
    web_queue_warning_seconds: float = 1.0  # a request that waited longer for a thread is logged
    web_graceful_seconds: float = 25.0  # SIGTERM: in-flight requests get this long (ECS: 30 s)
    log_level: str = "INFO"

    # edge (requests, anonymous workspaces, notifications)
    # The longest request target (path + query) the app answers; longer is 414 in the JSON shape.
    # Kept below gunicorn's limit_request_line (4094), which answers 414 itself (in HTML) beyond it.
    max_url_length: int = 2048
    # Behind N proxies that append to X-Forwarded-For (the ALB: 1), the client is the Nth from the right.
    trusted_proxies: int = 0
    # Anonymous workspaces (admission.py): per client address per anon_client_window ...
    anon_workspaces_per_client: int = 30
    anon_bytes_per_client: int = 2 * GIB
    anon_client_window: int = 3600
    # ... and for all clients together: new workspaces per session_ttl window, and the most
    # anonymous bytes held at once.
    anon_workspaces_total: int = 10_000
    anon_storage_bytes: int = 50 * GIB
    # ... of which one address may take this fraction per session_ttl window (0.02: it takes 50
    # addresses to spend everyone's budget).
    anon_client_share: float = 0.02
    # A page's first writes run at once, each with the visitor cookie alone: those this many
    # seconds after the first join its new workspace; later, the visitor cookie reaches nothing.
    visitor_join_seconds: int = 10
    # Notifications (notifications.py): image.ready / image.rejected to SNS (aws) and a webhook.
    webhook_url: str = ""
    webhook_secret: str = ""  # required with webhook_url: every request is signed with it
    webhook_timeout: float = 5.0
    notify_retry_delay: int = 10  # seconds before the 2nd attempt, doubling after (local queue)

    # ops: values the templates pass to the app and the processor (the events and
    # scanner code read them)
    topic_arn: str = ""  # aws mode: SNS topic of image.ready / image.rejected events
    quarantine_days: int = 30  # days a denied file stays under quarantine/ (S3 lifecycle in aws)

    # imaging: a text watermark on every preview derivative; empty: none
    preview_watermark_text: str = ""

    # pipeline: malware scanning and content moderation (adapters/scanners.py). Every
    # original is scanned after sniffing and before any derivative is written; a scanner that
    # cannot be reached is a transient error (retried, then dead-lettered), never a pass.
    scanner: str = "none"  # none | clamav (clamd INSTREAM) | http (a moderation endpoint)
    clamd_address: str = "unix:/run/clamav/clamd.ctl"  # unix:/path or host:port
    moderation_url: str = ""  # http scanner: POST the bytes, answer {"verdict": "allow"|"deny", "reason"}
    scanner_timeout: float = 30.0  # seconds for one scan (connect, send, verdict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Read every ``IMAGESERVICE_*`` variable (plus AWS region/endpoint) into a Settings.

        Raises SettingsError naming the variable when a value does not parse.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f, raw)
        if "aws_region" not in values:
            region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            if region:
                values["aws_region"] = region
        if "aws_endpoint_url" not in values and env.get("AWS_ENDPOINT_URL"):
            values["aws_endpoint_url"] = env["AWS_ENDPOINT_URL"]
        if "port" not in values and env.get("PORT"):
            values["port"] = _parse(next(f for f in fields(cls) if f.name == "port"), env["PORT"])
        if "s3_endpoint_url" not in values and env.get("AWS_ENDPOINT_URL_S3"):
            values["s3_endpoint_url"] = env["AWS_ENDPOINT_URL_S3"]
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def section(self, config_cls: type[T], *, prefix: str = "", **values) -> T:
        """A component's config dataclass, each field copied from the setting named
        ``prefix`` + the field's name; ``values`` gives the fields that have no such setting.

        The one place settings become configs, so a new limit is a field in two dataclasses
        and nothing else (a misspelt field fails here, at start-up).
        """
        for field in fields(config_cls):  # type: ignore[arg-type]
            if field.name not in values:
                values[field.name] = getattr(self, prefix + field.name)
        return config_cls(**values)

    def validate(self) -> None:
        if self.scanner not in ("none", "clamav", "http"):
            raise SettingsError(f"{PREFIX}SCANNER must be 'none', 'clamav' or 'http', not {self.scanner!r}")
        if self.scanner == "http" and not self.moderation_url:
            raise SettingsError(f"{PREFIX}SCANNER=http needs {PREFIX}MODERATION_URL")
        if self.backend not in ("local", "aws"):
            raise SettingsError(f"{PREFIX}BACKEND must be 'local' or 'aws', not {self.backend!r}")
        if self.backend == "aws":
            missing = [n for n in ("bucket", "table", "queue_url") if not getattr(self, n)]
            if missing:
                names = ", ".join(PREFIX + n.upper() for n in missing)
                raise SettingsError(f"aws mode needs {names}")
        if self.webhook_url and not self.webhook_secret:
            raise SettingsError(f"{PREFIX}WEBHOOK_URL needs {PREFIX}WEBHOOK_SECRET (requests are signed with it)")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise SettingsError(f"{PREFIX}WEBHOOK_URL must be an http(s) URL")
        if len(self.preview_watermark_text) > WATERMARK_TEXT_MAX:
            raise SettingsError(f"{PREFIX}PREVIEW_WATERMARK_TEXT may have at most {WATERMARK_TEXT_MAX} characters")
        if not 0 <= self.max_tags <= TAG_LIMIT:
            raise SettingsError(f"{PREFIX}MAX_TAGS must be between 0 and {TAG_LIMIT} (tags are written in one transaction)")
        for name in ("web_workers", "web_threads", "web_connection_limit", "web_idle_timeout", "web_request_seconds",
                     "web_min_body_rate", "web_max_header_bytes", "port"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
        if not 0 < self.anon_client_share <= 1:
            raise SettingsError(f"{PREFIX}ANON_CLIENT_SHARE must be a fraction above 0, at most 1")
        for name in ("max_upload_bytes", "max_pixels", "max_frames", "thumb_edge", "preview_edge",
                     "imaging_max_jobs", "imaging_memory_bytes", "imaging_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    def resolved_secret_key(self) -> str:
        """The signing secret: the configured one, else one generated and kept in the data dir.

        A generated key is stored so that every process (gunicorn workers, the worker
        command, the CLI) signs and verifies with the same secret.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_path / "secret_key"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(candidate)
        return candidate


def _parse(f: dataclasses.Field, raw: str) -> object:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    name = PREFIX + f.name.upper()
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind}") from exc
