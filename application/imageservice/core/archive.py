"""A batch's ZIP, written forward-only into a blob store's sink, one entry at a time.

Memory stays bounded whatever the batch size: each entry's bytes pass through as they come, and
only the central directory (one small record per entry) is kept until the end. The standard
library's zipfile streams to a sink that cannot seek: it writes each entry's CRC and sizes in a
data descriptor after its bytes, and ZIP64 records only where the archive needs them (why
stdlib and not a streaming-ZIP package, with the measurements: docs/DESIGN.md "Batch archives").

Entries are stored, not deflated: JPEG, WebP, AVIF, HEIC, GIF and PNG are compressed already,
deflate wins about 1 % on them at 40x the CPU of storing. BMP, a raw bitmap, is the exception.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Protocol

from .errors import PayloadTooLarge
from .filenames import download_name

# Deflated: the formats whose files are raw pixels (the rest are compressed already).
DEFLATED_TYPES = frozenset({"image/bmp", "image/x-ms-bmp"})
ENTRY_MODE = 0o100644  # a regular file, rw-r--r--: unzip gives mode 0 to an entry without one
ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=timezone.utc)  # the earliest time a ZIP entry can carry
ZIP_CONTENT_TYPE = "application/zip"


class Sink(Protocol):
    """What the writer needs of ``ports.BlobSink`` (the core does not import the ports)."""

    def write(self, data: bytes) -> int: ...

    def tell(self) -> int: ...


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of the archive.

    ``filename`` is the image's name as uploaded; the entry is named with it, sanitised, and
    the extension of ``content_type`` (the type of these bytes: the original's, or the
    conversion's output). ``size``, when known, lets ZIP64 fields be left out of entries that
    do not need them; an entry of unknown size carries them (it may pass 4 GiB).
    """

    filename: str
    content_type: str
    chunks: Iterable[bytes]
    size: int | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    size: int


class UniqueNames:
    """Entry names of one archive, none repeated: the second ``photo.jpg`` becomes
    ``photo (2).jpg``. Compared case-insensitively, as Windows and macOS extract them."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        if not stem:  # no extension (a dotless name)
            stem, dot, ext = name, "", ""
        candidate, number = name, 1
        while candidate.casefold() in self._taken:
            number += 1
            candidate = f"{stem} ({number}){dot}{ext}"
        self._taken.add(candidate.casefold())
        return candidate


class _ForwardOnly:
    """The sink as zipfile sees it: write and tell, no seek, so zipfile streams (data
    descriptors) whether or not the store's sink could seek; refuses bytes past ``max_bytes``."""

    def __init__(self, sink: Sink, max_bytes: int | None):
        self._sink = sink
        self._max_bytes = max_bytes

    def write(self, data: bytes) -> int:
        if self._max_bytes is not None and self._sink.tell() + len(data) > self._max_bytes:
            raise PayloadTooLarge(f"The archive would be larger than {self._max_bytes} bytes.",
                                  code="archive_too_large")
        return self._sink.write(data)

    def tell(self) -> int:
        return self._sink.tell()

    def flush(self) -> None:
        """zipfile flushes after the central directory; the sink publishes on its own."""


def write_zip(
    sink: Sink,
    entries: Iterable[ArchiveEntry],
    *,
    max_bytes: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> list[ArchivedFile]:
    """Write ``entries`` as a ZIP into ``sink`` (``BlobStore.open_writer``'s), in order; returns what
    went in, under which names.

    ``entries`` is consumed lazily, one entry's chunks at a time, so a caller may yield each
    image as it fetches or converts it. Raises PayloadTooLarge (``archive_too_large``) before
    the archive passes ``max_bytes``, and whatever the chunks or the sink raise; the sink then
    holds a partial archive, which ``BlobStore.open_writer`` discards.
    """
    names = UniqueNames()
    written: list[ArchivedFile] = []
    now = clock()
    with zipfile.ZipFile(_ForwardOnly(sink, max_bytes), "w", zipfile.ZIP_STORED) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(names.claim(download_name(entry.filename, entry.content_type)),
                                   date_time=_zip_time(entry.modified or now))
            info.external_attr = ENTRY_MODE << 16
            if entry.content_type in DEFLATED_TYPES:
                info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = entry.size or 0  # zipfile decides ZIP64 from it
            with archive.open(info, "w", force_zip64=entry.size is None) as member:
                size = _copy(entry.chunks, member)
            written.append(ArchivedFile(info.filename, size))
    return written


def _copy(chunks: Iterable[bytes], member) -> int:
    # A function of its own so the last chunk is let go before the next entry's first is read.
    size = 0
    for chunk in chunks:
        member.write(chunk)
        size += len(chunk)
    return size


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    """ZIP's DOS time: no zone (UTC here; a naive time is taken as UTC), nothing before 1980."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = max(moment.astimezone(timezone.utc), ZIP_EPOCH)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
