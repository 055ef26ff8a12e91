"""``imageservice client upload``: a folder of images, several files at a time, one progress bar
per file and one for the whole run.

Each file is named by its sha256, so that a rerun does not upload it twice:
- its upload request carries ``Idempotency-Key: sha256:<hex>``: a repeat within the key's life
  answers the same image, already uploaded (docs/API.md);
- before anything is sent, the owner's images are listed once, and a file whose sha256 a
  processed image already has is skipped whatever its age."""

from __future__ import annotations

import hashlib
import io
import mimetypes
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn
from rich.table import Column

from ..core.formats import EXTENSION_TYPES
from .api import Api, ApiError

# The image types the service takes, by file extension (core/formats.py).
CONTENT_TYPES = EXTENSION_TYPES
HASH_BLOCK = 1 << 20
WAIT_SECONDS = 300  # how long --wait waits for one image's processing
FINAL_STATUSES = ("ready", "rejected")


@dataclass(frozen=True)
class Outcome:
    path: Path
    result: str  # uploaded, skipped or failed
    image_id: str | None = None
    detail: str = ""


def image_files(sources: Iterable[Path]) -> list[Path]:
    """The image files among ``sources`` and under the folders among them (hidden ones left out),
    in a stable order."""
    found: list[Path] = []
    for source in sources:
        candidates = sorted(source.rglob("*")) if source.is_dir() else [source]
        found += [p for p in candidates if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower().lstrip(".") in CONTENT_TYPES]
    return list(dict.fromkeys(found))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class CountingReader(io.RawIOBase):
    """A file as a request body that reports each block sent; a rewind (a retried PUT) takes the
    count back too. ``len()`` gives requests the Content-Length the signed URL expects."""

    def __init__(self, path: Path, advance: Callable[[int], None]):
        self._file = path.open("rb")
        self._size = path.stat().st_size
        self._advance = advance

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        before = self._file.tell()
        after = self._file.seek(offset, whence)
        self._advance(after - before)
        return after

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(size)
        self._advance(len(block))
        return block

    def readinto(self, buffer) -> int:  # type: ignore[override]
        block = self.read(len(buffer))
        buffer[: len(block)] = block
        return len(block)

    def close(self) -> None:
        self._file.close()
        super().close()


class FolderUpload:
    def __init__(self, api: Api, tags: list[str], wait: bool, progress: Progress):
        self.api, self.tags, self.wait, self.progress = api, tags, wait, progress
        self.total = progress.add_task("[bold]All files", total=0, state="")
        self.known: dict[str, str] = {}  # sha256 -> image_id of what the owner already has

    def run(self, paths: list[Path], workers: int) -> list[Outcome]:
        sizes = {path: path.stat().st_size for path in paths}
        self.progress.update(self.total, total=sum(sizes.values()), description=f"[bold]All {len(paths)} files")
        self.known = {image["sha256"]: image["image_id"] for image in self.api.images() if image.get("sha256")}
        tasks = {path: self.progress.add_task(path.name, total=sizes[path], state="waiting") for path in paths}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda path: self._one(path, tasks[path]), paths))

    def _one(self, path: Path, task: TaskID) -> Outcome:
        try:
            outcome = self._upload(path, task)
        except (ApiError, OSError) as exc:  # this file failed; the others go on
            outcome = Outcome(path, "failed", detail=getattr(exc, "message", None) or str(exc))
        # Bytes not sent (a skipped or failed file) leave the total, so its speed stays true.
        size, sent = self.progress.tasks[task].total or 0, self.progress.tasks[task].completed
        self.progress.update(self.total, total=(self.progress.tasks[self.total].total or 0) - (size - sent))
        self.progress.update(task, completed=size, state=f"{outcome.result}: {outcome.detail}" if outcome.detail
                             else outcome.result)
        return outcome

    def _moved(self, task: TaskID) -> Callable[[int], None]:
        def advance(count: int) -> None:
            self.progress.advance(task, count)
            self.progress.advance(self.total, count)
        return advance

    def _upload(self, path: Path, task: TaskID) -> Outcome:
        self.progress.update(task, state="hashing")
        digest = sha256_of(path)
        if digest in self.known:
            return Outcome(path, "skipped", self.known[digest], "already there")
        body = {"size": path.stat().st_size, "filename": path.name, "tags": self.tags,
                "content_type": CONTENT_TYPES.get(path.suffix.lower().lstrip("."))
                or mimetypes.guess_type(path.name)[0]}
        try:
            ticket = self.api.create_upload(body, f"sha256:{digest}")
        except ApiError as exc:
            if exc.code == "idempotency_key_reused":  # the same bytes, sent before with other tags
                return Outcome(path, "skipped", None, "already there")
            raise
        if ticket["status"] != "pending":
            return self._settled(path, task, ticket["image_id"], "skipped", "already there")
        self.progress.update(task, state="uploading")
        with CountingReader(path, self._moved(task)) as reader:
            self.api.put(ticket, reader)
        self.api.complete(ticket["image_id"])
        return self._settled(path, task, ticket["image_id"], "uploaded", "")

    def _settled(self, path: Path, task: TaskID, image_id: str, result: str, detail: str) -> Outcome:
        """With --wait, the outcome once processing has decided: a rejection is a failure."""
        if not self.wait:
            return Outcome(path, result, image_id, detail)
        self.progress.update(task, state="processing")
        deadline = time.monotonic() + WAIT_SECONDS
        while (record := self.api.image(image_id))["status"] not in FINAL_STATUSES:
            if time.monotonic() > deadline:
                return Outcome(path, "failed", image_id, f"still {record['status']} after {WAIT_SECONDS} s")
            time.sleep(0.25)
        if record["status"] == "rejected":
            return Outcome(path, "failed", image_id, f"rejected: {(record.get('error') or {}).get('message', '')}")
        return Outcome(path, result, image_id, detail)


def progress_display(console: Console) -> Progress:
    """A line per file: its name, its bar, bytes sent, speed, and what it is doing."""
    return Progress(
        TextColumn("{task.description}", style="cyan", table_column=Column(width=26, no_wrap=True, overflow="ellipsis")),
        BarColumn(bar_width=24),
        DownloadColumn(table_column=Column(width=17, no_wrap=True, justify="right")),
        TransferSpeedColumn(table_column=Column(width=10, no_wrap=True, justify="right")),
        TextColumn("{task.fields[state]}", table_column=Column(width=24, no_wrap=True, overflow="ellipsis")),
        console=console)


def upload(api: Api, sources: list[Path], tags: list[str], workers: int, wait: bool, console: Console) -> int:
    """Upload, then print a summary; the exit status is 1 when any file failed."""
    paths = image_files(sources)
    if not paths:
        console.print("No image files found.")
        return 1
    with progress_display(console) as progress:
        outcomes = FolderUpload(api, tags, wait, progress).run(paths, workers)
    counts = {result: sum(o.result == result for o in outcomes) for result in ("uploaded", "skipped", "failed")}
    console.print(f"{counts['uploaded']} uploaded, {counts['skipped']} skipped (already uploaded), "
                  f"{counts['failed']} failed")
    for outcome in outcomes:
        if outcome.result == "failed":
            console.print(f"[red]failed[/red] {outcome.path}: {outcome.detail}", highlight=False)
    return 1 if counts["failed"] else 0
