"""UTC moments as fixed-width ISO 8601 strings, so that strings sort like the moments."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(moment: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``; None stays None."""
    if moment is None:
        return None
    moment = moment.astimezone(timezone.utc)
    # glibc's %Y does not pad years before 1000 ("779-..."), which from_iso cannot read back.
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def from_iso(value: str) -> datetime:
    """Parse an ISO 8601 moment; a naive one is taken as UTC. Raises ValueError."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def epoch_to_iso(seconds: float) -> str:
    return to_iso(datetime.fromtimestamp(seconds, timezone.utc))  # type: ignore[return-value]


def iso_to_epoch(value: str) -> int:
    return int(from_iso(value).timestamp())


def iso_in(seconds: float, now: datetime | None = None) -> str:
    """The moment ``seconds`` from ``now`` as an ISO string."""
    return to_iso((now or utcnow()) + timedelta(seconds=seconds))  # type: ignore[return-value]
