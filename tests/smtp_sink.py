"""A real SMTP server (aiosmtpd) on a local port that keeps what it receives, for e-mail alerts in tests."""

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.sandbox_server import free_port


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        """The text of the `plain` or `html` part."""
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None and found.get_content_subtype() == subtype, f"no {subtype} part"
        return str(found.get_content())


class SmtpSink:
    """Accepts every mail (or answers `refuse_with`, e.g. "451 try later", to DATA) and keeps the accepted ones."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.received: list[ReceivedMail] = []
        self.refuse_with: str | None = None
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
        self.refuse_with = None

    async def wait_for(self, count: int, within: float = 15.0) -> list[ReceivedMail]:
        """The mails received once there are `count` of them (an assertion error if they do not come)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                break
            await asyncio.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} mails received, {count} expected"
        return list(self.received)
