"""The ``imageservice client`` subcommands: upload, download, convert, ls. The server and token
come from ``--server``/``--token`` or IMAGESERVICE_SERVER/IMAGESERVICE_TOKEN (a token in the
environment stays out of the shell's history)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..commands import DOWNLOAD_VARIANTS
from ..core.conversions import CONVERT_FORMATS, FITS
from ..core.records import STATUSES

DEFAULT_SERVER = "http://127.0.0.1:8000"


def add_parser(commands: argparse._SubParsersAction) -> None:
    client = commands.add_parser("client", help="talk to a running service over its API: upload, download, convert, ls")
    client.add_argument("--server", default=os.environ.get("IMAGESERVICE_SERVER", DEFAULT_SERVER),
                        help=f"the service's base URL (default: IMAGESERVICE_SERVER, else {DEFAULT_SERVER})")
    client.add_argument("--token", default=os.environ.get("IMAGESERVICE_TOKEN"),
                        help="an API token (default: IMAGESERVICE_TOKEN)")
    sub = client.add_subparsers(dest="client_command", required=True)

    up = sub.add_parser("upload", help="upload image files and folders (recursively); a rerun skips what is there")
    up.add_argument("sources", nargs="+", type=Path, metavar="PATH")
    up.add_argument("--tag", action="append", default=[], help="a tag for every file (repeat for more)")
    up.add_argument("--parallel", type=int, default=4, help="files sent at once (default 4)")
    up.add_argument("--no-wait", dest="wait", action="store_false",
                    help="do not wait for processing (a rejection is then not reported)")
    up.set_defaults(client_action="upload")

    down = sub.add_parser("download", help="download images (the original, or a derivative)")
    down.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")
    down.add_argument("--variant", choices=DOWNLOAD_VARIANTS, default="original")
    down.add_argument("--output", "-o", type=Path, default=Path("."), help="a folder (default: here)")
    down.set_defaults(client_action="download")

    convert = sub.add_parser("convert", help="convert and resize an image, and download the result")
    convert.add_argument("image_id", metavar="IMAGE_ID")
    convert.add_argument("--format", required=True, choices=CONVERT_FORMATS)
    convert.add_argument("--width", type=int)
    convert.add_argument("--height", type=int)
    convert.add_argument("--fit", choices=FITS, default="contain")
    convert.add_argument("--quality", type=int)
    convert.add_argument("--output", "-o", type=Path, default=Path("."), help="a folder or a file name (default: here)")
    convert.set_defaults(client_action="convert")

    ls = sub.add_parser("ls", help="list your images, newest first")
    ls.add_argument("--tag")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--json", action="store_true", help="one JSON record per line")
    ls.set_defaults(client_action="ls")


def run(args: argparse.Namespace) -> int:
    from .actions import run as run_action  # requests and rich load only for the client

    return run_action(args)
