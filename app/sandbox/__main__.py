"""Runs the sandbox: `python -m app.sandbox --host 127.0.0.1 --port 8100 [--sftp-port 8122] [--no-demo]`."""

import argparse
import asyncio
import logging
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from app.sandbox.app import create_sandbox_app
from app.sandbox.cards import cards_sandbox_of
from app.sandbox.demo import (
    DEMO_ACCOUNT,
    DEMO_CARDS_ACCOUNT,
    DEMO_TALEEZ_ACCOUNT,
    demo_cards_seed,
    demo_seed,
    demo_taleez_seed,
)
from app.sandbox.lucca_state import lucca_sandbox_of
from app.sandbox.sftp import DEFAULT_DIRECTORY, DEFAULT_PORT, SftpSandbox
from app.sandbox.taleez import taleez_sandbox_of

logger = logging.getLogger("app.sandbox")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: where to listen, the default rate limit, whether to seed the demo accounts."""
    parser = argparse.ArgumentParser(prog="python -m app.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--window-seconds", type=float, default=60.0, help="rate-limit window per account")
    parser.add_argument("--requests", type=int, default=50, help="calls accepted per window per account")
    parser.add_argument("--no-demo", action="store_true", help="start without the demo accounts")
    parser.add_argument("--sftp-port", type=int, default=DEFAULT_PORT, help="Elevo's SFTP server (0: a free port)")
    parser.add_argument(
        "--sftp-dir", type=Path, default=DEFAULT_DIRECTORY, help="its host key, and the files it receives under root/"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Builds the sandbox app, seeds the demo accounts unless told not to, and serves it."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_sandbox_app(window_seconds=args.window_seconds, requests_per_window=args.requests)
    base_url = f"http://{args.host}:{args.port}"
    if not args.no_demo:
        lucca_sandbox_of(app).replace_account(DEMO_ACCOUNT, demo_seed())
        logger.info("Demo Lucca account at %s/%s", base_url, DEMO_ACCOUNT)
        taleez_sandbox_of(app).replace_account(DEMO_TALEEZ_ACCOUNT, demo_taleez_seed())
        logger.info("Demo Taleez account at %s/taleez/%s", base_url, DEMO_TALEEZ_ACCOUNT)
        cards_sandbox_of(app).replace_account(DEMO_CARDS_ACCOUNT, demo_cards_seed())
        logger.info("Demo Cards space at %s/cards/%s/v1", base_url, DEMO_CARDS_ACCOUNT)
    logger.info("Sandbox control API at %s/_sandbox", base_url)
    asyncio.run(serve(app, args))


async def serve(app: FastAPI, args: argparse.Namespace) -> None:
    """The partner APIs and Elevo's SFTP server in one process, until the HTTP server stops (Ctrl-C)."""
    sftp = SftpSandbox(args.sftp_dir, host=args.host, port=args.sftp_port)
    await sftp.start()
    logger.info("Elevo SFTP server at %s:%d (user %s), files in %s", args.host, sftp.port, sftp.username, sftp.root)
    try:
        await uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info")).serve()
    finally:
        await sftp.stop()


if __name__ == "__main__":
    main()
