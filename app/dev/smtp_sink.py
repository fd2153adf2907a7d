"""A local SMTP server that keeps every message it receives as a file, standing in for a mail server in the demo
(`scripts/run.sh`) and in tests: the alerts' e-mails go through real SMTP and can be read afterwards.

    python -m app.dev.smtp_sink --port 8025 [--dir DIR]   # serve until stopped
    python -m app.dev.smtp_sink --read [--dir DIR]        # print what it received, decoded
"""

import argparse
import asyncio
import email
import logging
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.policy import default
from pathlib import Path

from aiosmtpd.handlers import Message as MessageHandler
from aiosmtpd.smtp import SMTP

DEFAULT_PORT = 8025
DEFAULT_DIRECTORY = Path(tempfile.gettempdir()) / "lucca-connectors-sandbox" / "mail"

logger = logging.getLogger("app.dev.smtp_sink")


class MailFolder(MessageHandler):
    """aiosmtpd's handler that writes each message, as received, to `<directory>/<received at>-<id>.eml`."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def handle_message(self, message: Message) -> None:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%f}-{uuid.uuid4().hex[:8]}.eml"
        # Written aside, then renamed: a reader never sees half a message.
        partial = self.directory / f".{name}"
        partial.write_bytes(message.as_bytes())
        os.replace(partial, self.directory / name)
        subject = str(make_header(decode_header(message["Subject"] or "")))
        logger.info("mail to %s: %s (%s)", message["X-RcptTo"], subject, self.directory / name)


def received(directory: Path) -> list[EmailMessage]:
    """The messages in `directory`, oldest first."""
    messages = []
    for path in sorted(directory.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=default)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages


def text_of(message: EmailMessage) -> str:
    """The message's plain-text part, decoded."""
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


def describe(message: EmailMessage) -> str:
    """A message as a person reads it: who from and to, the subject, the text."""
    head = "".join(f"{name}: {message[name]}\n" for name in ("Date", "From", "To", "Subject") if message[name])
    return f"{head}\n{text_of(message).rstrip()}\n"


async def serve(directory: Path, host: str, port: int) -> None:
    """Serves until the process is stopped."""
    handler = MailFolder(directory)
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler), host, port)
    logger.info("SMTP sink at %s:%d, messages kept in %s", host, port, directory)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.dev.smtp_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIRECTORY, help="where the messages are kept")
    parser.add_argument("--read", action="store_true", help="print the messages received, oldest first, and exit")
    args = parser.parse_args(argv)
    if args.read:
        messages = received(args.dir) if args.dir.exists() else []
        sys.stdout.write(
            "\n---\n\n".join(describe(message) for message in messages) or f"No message in {args.dir} yet.\n"
        )
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's every SMTP command
    asyncio.run(serve(args.dir, args.host, args.port))


if __name__ == "__main__":
    main()
