"""A real HTTP server on a local port that keeps the alert webhooks it accepts, and can be down (503) for a while."""

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.sandbox_server import free_port


@dataclass(frozen=True)
class ReceivedHook:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class WebhookReceiver:
    """POST /hook: 503 until `down_until` (a `time.monotonic()` value), then 204, keeping what it accepted;
    `delay_seconds` holds each answer back (a slow receiver)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[ReceivedHook] = []
        self.refused = 0
        self.down_until = 0.0
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        with self._lock:
            if time.monotonic() < self.down_until:
                self.refused += 1
                return Response(status_code=503)
            self.received.append(ReceivedHook(dict(request.headers), body))
        return Response(status_code=204)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the webhook receiver did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
        self.refused = 0
        self.down_until = 0.0
        self.delay_seconds = 0.0

    def events(self) -> list[tuple[str, str]]:
        """(type, title) of each webhook accepted, in order."""
        return [(hook.payload["type"], hook.payload["data"]["title"]) for hook in self.received]
