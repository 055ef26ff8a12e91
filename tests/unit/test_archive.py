"""core.archive: a batch's ZIP streamed into a sink (read back with zipfile), its entry names,
where ZIP64 records appear, and memory that stays flat however much goes through."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from datetime import datetime, timezone

import pytest
from fakes import FakeBlobStore

from imageservice.core.archive import ArchiveEntry, UniqueNames, write_zip
from imageservice.core.errors import PayloadTooLarge

MIB = 1024 * 1024
KEY = "batches/alice/b1/images.zip"
WHEN = datetime(2026, 5, 1, 12, 30, 44, tzinfo=timezone.utc)


def entry(filename: str, data: bytes, content_type: str = "image/jpeg", *, size: int | None = -1,
          piece: int = 1000) -> ArchiveEntry:
    """An entry whose bytes arrive in pieces; its size is declared unless ``size`` says None."""
    chunks = (data[i:i + piece] for i in range(0, len(data), piece))
    return ArchiveEntry(filename, content_type, chunks, size=len(data) if size == -1 else size)


def archive_bytes(entries, **options) -> tuple[bytes, list]:
    blobs = FakeBlobStore()
    with blobs.open_writer(KEY, "application/zip") as sink:
        written = write_zip(sink, entries, clock=lambda: WHEN, **options)
    return blobs.get(KEY), written


def test_entries_round_trip_through_zipfile():
    jpeg, webp, bmp = b"\xff\xd8" + bytes(range(256)) * 40, b"RIFF" + b"\x01" * 5000, b"BM" + b"\0" * 9000
    data, written = archive_bytes([entry("a.jpg", jpeg), entry("b.webp", webp, "image/webp", size=None),
                                   entry("c.bmp", bmp, "image/bmp")])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every CRC checks
        assert [(i.filename, archive.read(i)) for i in archive.infolist()] == [
            ("a.jpg", jpeg), ("b.webp", webp), ("c.bmp", bmp)]
        infos = archive.infolist()
    assert [(f.name, f.size) for f in written] == [("a.jpg", len(jpeg)), ("b.webp", len(webp)), ("c.bmp", len(bmp))]
    assert all(i.flag_bits & 0x08 for i in infos)  # streamed: sizes and CRC follow each entry's bytes
    assert [i.compress_type for i in infos] == [zipfile.ZIP_STORED, zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]
    assert infos[2].compress_size < len(bmp) // 10  # the raw bitmap shrinks; the others are stored as is
    assert all(i.external_attr >> 16 == 0o100644 for i in infos)
    assert infos[0].date_time == (2026, 5, 1, 12, 30, 44)


def test_entry_names_are_sanitised_with_the_types_extension_and_never_repeat():
    files = [("photo.jpg", "image/jpeg"), ("photo.jpeg", "image/jpeg"), ("PHOTO.JPG", "image/jpeg"),
             ("../../etc/passwd", "image/png"), ("C:\\Users\\me\\invoice.pdf.exe", "image/png"),
             ("holiday.heic", "image/webp"), ("", "image/gif"), ("sp\u202eoof.jpg", "image/jpeg"),
             ("photo (2).jpg", "image/jpeg")]
    data, written = archive_bytes([entry(name, b"x", kind) for name, kind in files])
    expected = ["photo.jpg", "photo (2).jpg", "PHOTO (3).jpg", "passwd.png", "invoice.pdf.png",
                "holiday.webp", "image.gif", "spoof.jpg", "photo (2) (2).jpg"]
    assert [f.name for f in written] == expected
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == expected


def test_unique_names_number_the_repeats():
    names = UniqueNames()
    assert [names.claim(n) for n in ["a.jpg", "a.jpg", "A.jpg", "README", "readme", "x.tar.gz", "x.tar.gz"]] == [
        "a.jpg", "a (2).jpg", "A (3).jpg", "README", "readme (2)", "x.tar.gz", "x.tar (2).gz"]


def test_non_ascii_names_are_flagged_utf8():
    data, _ = archive_bytes([entry("Ferien am Meer – Ünïcode.jpg", b"x")])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.infolist()[0]
    assert info.filename == "Ferien am Meer – Ünïcode.jpg" and info.flag_bits & 0x800


def local_entries(data: bytes) -> list[tuple[str, bytes, int]]:
    """Walk the local headers in order: (name, extra field, data descriptor length)."""
    found, offset = [], 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    for info in infos:
        assert info.header_offset == offset
        header = struct.unpack(zipfile.structFileHeader, data[offset:offset + zipfile.sizeFileHeader])
        name_length, extra_length = header[zipfile._FH_FILENAME_LENGTH], header[zipfile._FH_EXTRA_FIELD_LENGTH]
        start = offset + zipfile.sizeFileHeader
        extra = data[start + name_length:start + name_length + extra_length]
        after_data = start + name_length + extra_length + info.compress_size
        following = infos[infos.index(info) + 1].header_offset if info is not infos[-1] else None
        assert data[after_data:after_data + 4] == b"PK\x07\x08"  # the data descriptor's signature
        descriptor = (following or data.index(b"PK\x01\x02", after_data)) - after_data
        found.append((info.filename, extra, descriptor))
        offset = after_data + descriptor
    return found


def test_zip64_fields_only_in_entries_of_unknown_size():
    """An entry of declared size (every image of a batch) is plain ZIP: readers that know no
    ZIP64 open it. One of unknown size may pass 4 GiB, so zipfile is told to use ZIP64 for it
    (force_zip64): a ZIP64 extra field and a 24-byte data descriptor with 8-byte sizes."""
    data, _ = archive_bytes([entry("known.jpg", b"k" * 3000), entry("unknown.jpg", b"u" * 3000, size=None)])
    (_, known_extra, known_descriptor), (_, unknown_extra, unknown_descriptor) = local_entries(data)
    assert known_extra == b"" and known_descriptor == 16  # signature, CRC, two 4-byte sizes
    assert unknown_extra[:2] == struct.pack("<H", 0x0001) and unknown_descriptor == 24
    assert b"PK\x06\x06" not in data  # a small archive ends with the plain end record only


def test_an_archive_past_the_zip64_limit_ends_with_zip64_records(monkeypatch):
    """Past the limit (zipfile's is 2 GiB; lowered here, so the test writes kilobytes) offsets
    go into ZIP64 fields and the archive ends with the ZIP64 end record and its locator. A real
    4.4 GiB archive was read back by zipfile and `unzip -t` (docs/DESIGN.md "Batch archives")."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 4000)
    payloads = [bytes([n]) * 1500 for n in range(5)]
    data, _ = archive_bytes([entry(f"{n}.jpg", p, size=None) for n, p in enumerate(payloads)])
    assert b"PK\x06\x06" in data[-200:] and b"PK\x06\x07" in data[-100:]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert [archive.read(f"{n}.jpg") for n in range(5)] == payloads
        assert archive.infolist()[-1].header_offset > 4000


def test_a_failing_entry_publishes_nothing():
    blobs = FakeBlobStore()

    def chunks():
        yield b"first bytes"
        raise OSError("the original could not be read")

    with pytest.raises(OSError):
        with blobs.open_writer(KEY, "application/zip") as sink:
            write_zip(sink, [entry("a.jpg", b"a" * 100), ArchiveEntry("b.jpg", "image/jpeg", chunks())])
    assert blobs.size(KEY) is None


def test_the_archive_stops_at_max_bytes():
    entries = lambda: [entry(f"{n}.jpg", bytes([n]) * 4000) for n in range(3)]  # noqa: E731
    whole, _ = archive_bytes(entries())
    assert archive_bytes(entries(), max_bytes=len(whole))[0] == whole
    blobs = FakeBlobStore()
    with pytest.raises(PayloadTooLarge) as caught:
        with blobs.open_writer(KEY, "application/zip") as sink:
            write_zip(sink, entries(), max_bytes=len(whole) - 1)
    assert caught.value.code == "archive_too_large"
    assert blobs.size(KEY) is None


def test_entry_times():
    before_zip = datetime(1970, 1, 1, tzinfo=timezone.utc)
    data, _ = archive_bytes([ArchiveEntry("old.jpg", "image/jpeg", [b"x"], 1, modified=before_zip),
                             ArchiveEntry("new.jpg", "image/jpeg", [b"y"], 1,
                                          modified=datetime(2026, 1, 2, 3, 4, 6))])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert [i.date_time for i in archive.infolist()] == [(1980, 1, 1, 0, 0, 0), (2026, 1, 2, 3, 4, 6)]


class CountingSink:
    """A sink that keeps nothing: what the archive writer itself holds is all that is measured."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written


def test_memory_stays_flat_while_hundreds_of_megabytes_stream_through():
    chunk = bytes(range(256)) * (MIB // 256)  # made before measuring, then passed again and again
    count, per_entry = 100, 3  # 100 images of 3 MiB: 300 MiB

    def entries():
        for n in range(count):
            yield ArchiveEntry(f"photo{n % 7}.jpg", "image/jpeg", (chunk for _ in range(per_entry)),
                               size=per_entry * MIB)

    sink = CountingSink()
    tracemalloc.start()
    try:
        written = write_zip(sink, entries())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(written) == count and sink.written > count * per_entry * MIB
    # The central directory's records and the names are all that grows: well under a chunk.
    assert peak < MIB // 2, f"peak {peak / MIB:.2f} MiB for {sink.written / MIB:.0f} MiB written"


def test_one_entry_of_fetched_bytes_is_held_at_a_time():
    """Entries whose bytes are fetched when the archive reaches them (as a batch reads each
    original): the previous entry's bytes are let go before the next ones are fetched."""
    entry_size = 4 * MIB

    def fetched():
        yield bytes(entry_size)  # allocated here, under tracemalloc

    entries = (ArchiveEntry(f"{n}.jpg", "image/jpeg", fetched(), size=entry_size) for n in range(10))
    tracemalloc.start()
    try:
        write_zip(CountingSink(), entries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entry_size <= peak < 1.5 * entry_size, f"peak {peak / MIB:.2f} MiB for entries of 4 MiB"
