"""What the ``imageservice client`` subcommands do (their arguments: client/commands.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..core.filenames import download_name, with_extension
from .api import Api, ApiError
from .upload import progress_display, upload

DOWNLOAD_BLOCK = 1 << 16


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    if not args.token:
        console.print("imageservice client: a token is needed (--token or IMAGESERVICE_TOKEN); "
                      "make one with `imageservice token create USER_ID`")
        return 2
    try:
        return ACTIONS[args.client_action](Api(args.server, args.token), args, console)
    except ApiError as exc:
        console.print(f"imageservice client: {exc.message} ({exc.code})", highlight=False)
        return 1
    except OSError as exc:  # the server cannot be reached, or a file cannot be written
        console.print(f"imageservice client: {exc}", highlight=False)
        return 1


def _upload(api: Api, args: argparse.Namespace, console: Console) -> int:
    if args.parallel < 1:
        console.print("imageservice client: --parallel must be at least 1")
        return 2
    return upload(api, args.sources, args.tag, args.parallel, args.wait, console)


def _save(api: Api, url: str, target: Path, progress: Progress) -> None:
    """Stream ``url`` into ``target`` (through a temporary name: no half file is left)."""
    answer = api.fetch(url)
    task = progress.add_task(target.name, total=int(answer.headers.get("Content-Length") or 0) or None, state="")
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("wb") as out:
            for block in answer.iter_content(DOWNLOAD_BLOCK):
                out.write(block)
                progress.advance(task, len(block))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    progress.update(task, state="saved")


def _download(api: Api, args: argparse.Namespace, console: Console) -> int:
    args.output.mkdir(parents=True, exist_ok=True)
    with progress_display(console) as progress:
        for image_id in args.image_ids:
            record = api.image(image_id)
            link = api.download_link(image_id, args.variant)
            name = download_name(record.get("filename") or image_id, record.get("content_type"))
            if args.variant != "original":
                name = with_extension(name, "webp", f"-{args.variant}")
            _save(api, link["download_url"], args.output / name, progress)
            print(args.output / name)
    return 0


def _convert(api: Api, args: argparse.Namespace, console: Console) -> int:
    body = {"format": args.format, "fit": args.fit,
            **{k: v for k, v in (("width", args.width), ("height", args.height), ("quality", args.quality)) if v}}
    record = api.image(args.image_id)
    result = api.convert(args.image_id, body)
    target = args.output
    if target.is_dir():
        target = target / with_extension(record.get("filename") or args.image_id, result["format"],
                                          f"-{result['width']}x{result['height']}")
    with progress_display(console) as progress:
        _save(api, result["download_url"], target, progress)
    print(target)
    return 0


def _ls(api: Api, args: argparse.Namespace, console: Console) -> int:
    images = api.images(tag=args.tag, status=args.status)
    if args.json:
        for image in images:
            sys.stdout.write(json.dumps(image) + "\n")
        return 0
    table = Table("image_id", "filename", "status", "size", "created", "tags")
    for image in images:
        table.add_row(image["image_id"], image.get("filename") or "", image["status"], f"{image.get('size') or 0:,}",
                      (image.get("created_at") or "")[:19].replace("T", " "), ", ".join(image.get("tags") or []))
    Console().print(table)
    return 0


ACTIONS = {"upload": _upload, "download": _download, "convert": _convert, "ls": _ls}
