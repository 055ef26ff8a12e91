"""The ``imageservice`` command: serve, worker, token create, sweep, setup, and client (the API's
command-line client, which needs no server settings)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import threading

from ..settings import Settings, SettingsError


def _components(settings: Settings):
    from ..bootstrap import build_components

    return build_components(settings)


def address_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None: said plainly before anything starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
            probe.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def cmd_serve(args, settings: Settings) -> int:
    """Serve the app (and, in local mode, run the job threads) until SIGTERM or SIGINT."""
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    problem = address_in_use(host, port)
    if problem:
        print(f"cannot serve on {host}:{port}: {problem}", file=sys.stderr)
        return 2
    if not os.environ.get("IMAGESERVICE_PUBLIC_URL"):
        settings = dataclasses.replace(settings, public_url=f"http://{host}:{port}")
    from ..web.server import serve

    return serve(settings, host, port)


def cmd_worker(args, settings: Settings) -> int:
    components = _components(settings)
    stop = threading.Event()

    def request_stop(signum, frame):
        logging.getLogger(__name__).info("signal %s: finishing the current job, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if settings.backend == "aws":
        from .sqs_worker import build_sqs_worker

        build_sqs_worker(components, stop).run_forever()
    else:
        from .worker import Worker

        worker = Worker(components, stop)
        if args.once:
            worker.drain()
        else:
            worker.run_forever()
    return 0


def cmd_token_create(args, settings: Settings) -> int:
    token = _components(settings).service.create_token(args.user_id, admin=args.admin)
    kind = "admin token" if args.admin else "token"
    print(f"Created {kind} for {args.user_id}. Keep it secret; it is shown only once:")
    print(token)
    return 0


def cmd_sweep(args, settings: Settings) -> int:
    print(json.dumps(_components(settings).service.sweep()))
    return 0


def cmd_setup(args, settings: Settings) -> int:
    if settings.backend == "aws":
        from ..adapters.aws.setup import setup_resources

        for line in setup_resources(settings):
            print(line)
    else:
        components = _components(settings)
        for part in (components.blobs, components.catalog, components.queue):
            part.ping()
        print(f"local data ready in {settings.data_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imageservice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app: gunicorn worker processes, each waitress (local mode: plus job threads)")
    serve.add_argument("--host", default=None, help="default: IMAGESERVICE_HOST, else 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: 8000, or PORT / IMAGESERVICE_PORT")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="process jobs (local queue, or SQS in aws mode)")
    worker.add_argument("--once", action="store_true", help="local mode: process what is queued, then exit")
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="make a token for USER_ID; printed alone on the last line")
    create.add_argument("user_id")
    create.add_argument("--admin", action="store_true", help="the token may act for any user_id")
    create.set_defaults(func=cmd_token_create)

    sweep = sub.add_parser("sweep", help="remove expired session workspaces and abandoned uploads")
    sweep.set_defaults(func=cmd_sweep)

    setup = sub.add_parser("setup", help="create the bucket, table and queues when missing (aws mode)")
    setup.set_defaults(func=cmd_setup)

    from ..client.commands import add_parser as add_client_parser

    add_client_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "client":
        from ..client.commands import run as run_client

        return run_client(args)
    from .. import logs

    # JSON lines: on stdout for the long-running worker (what log shippers collect), on stderr
    # for one-shot commands whose stdout is their answer (a token, sweep's counts).
    logs.configure(os.environ.get("IMAGESERVICE_LOG_LEVEL", "INFO"),
                   sys.stdout if args.command == "worker" else sys.stderr)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"imageservice: {exc}", file=sys.stderr)
        return 2
    from ..core.errors import ServiceError

    try:
        return args.func(args, settings)
    except ServiceError as exc:
        print(f"imageservice: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
